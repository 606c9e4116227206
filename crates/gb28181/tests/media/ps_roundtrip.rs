//! The PS demuxer against real footage muxed the way devices mux it: the
//! same access units come back whatever the chunking, the RTP order within
//! the window, with or without a PSM, H.264 and H.265; lost packets drop
//! exactly the damaged units and the demuxer picks up at the next key frame.

use crate::common::*;
use proptest::prelude::*;
use std::time::{Duration, Instant};
use xueliang_core::VideoCodec;
use xueliang_gb28181::media::reorder::{ReorderBuffer, ReorderSettings};
use xueliang_gb28181::media::rtp::RtpPacket;
use xueliang_gb28181::media::testing::MuxOptions;
use xueliang_gb28181::media::{Counter, PsDemuxer};
use xueliang_ingest::AccessUnit;

fn codec_strategy() -> impl Strategy<Value = VideoCodec> {
    prop_oneof![Just(VideoCodec::H264), Just(VideoCodec::H265)]
}

/// The shapes devices send: Hikvision (PES per NAL, PTS on the first),
/// Dahua-like (PES cut by size, PTS on each, a pack per PES), with audio,
/// without a PSM, small PES.
fn options_strategy(codec: VideoCodec) -> impl Strategy<Value = MuxOptions> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(65_000usize), 200usize..5000],
        0u8..8,
    )
        .prop_map(
            move |(psm, pes_per_nal, pack_per_pes, pts_on_every_pes, audio, max, stuffing)| {
                MuxOptions {
                    codec,
                    psm,
                    pes_per_nal,
                    max_pes_payload: max,
                    pack_per_pes,
                    pts_on_every_pes,
                    audio,
                    pack_stuffing: stuffing,
                }
            },
        )
}

fn assert_clean(demux: &PsDemuxer) {
    let c = demux.counters();
    assert_eq!(c.get(Counter::PsErrors), 0, "ps errors");
    assert_eq!(c.get(Counter::UnitsDropped), 0, "dropped units");
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn any_chunking_gives_back_the_same_units(
        (codec, options) in codec_strategy().prop_flat_map(|c| (Just(c), options_strategy(c))),
        sizes in prop::collection::vec(1usize..4000, 1..64),
    ) {
        let footage = footage(codec);
        let ps = concat(&mux(footage, options));
        let (units, demux) = demux_chunked(&ps, &sizes);
        assert_same_units(footage, &units, codec);
        assert_clean(&demux);
    }

    #[test]
    fn reordering_within_the_window_is_repaired(
        codec in codec_strategy(),
        group in 2usize..48,
        seed in any::<u64>(),
    ) {
        let footage = footage(codec);
        let frames = mux(footage, MuxOptions::hikvision(codec));
        let (mut packets, _) = packetize(&frames, 65000);
        // The first packet arrives first: what comes before the first one
        // seen is late by definition.
        shuffle_in_groups(&mut packets[1..], group, seed);
        let (units, demux, reordered) = through_reorder(&packets, &[]);
        assert_same_units(footage, &units, codec);
        assert_clean(&demux);
        prop_assert!(reordered > 0);
    }

    #[test]
    fn lost_packets_drop_the_damaged_units_until_the_next_key_frame(
        (codec, options) in codec_strategy().prop_flat_map(|c| (Just(c), options_strategy(c))),
        losses in prop::collection::vec((0.0f64..1.0, 1usize..4), 1..5),
    ) {
        let footage = footage(codec);
        let frames = mux(footage, options);
        let (packets, owner) = packetize(&frames, 100);
        // Never lose the last two frames' packets: a trailing gap is never
        // noticed, there is no next packet.
        let lossy_end = owner.iter().position(|&f| f + 2 >= frames.len()).unwrap_or(packets.len());
        let mut lost = vec![false; packets.len()];
        for (at, run) in losses {
            let start = (at * lossy_end as f64) as usize;
            for flag in lost.iter_mut().take((start + run).min(lossy_end)).skip(start) {
                *flag = true;
            }
        }
        let (units, demux, _) = through_reorder(&packets, &lost);
        let expected = expected_after_loss(footage, &owner, &lost);
        let got: Vec<(usize, u32)> = units.iter().map(|u| (index_of(footage, u), u.lost_packets)).collect();
        prop_assert_eq!(&got, &expected);
        for u in &units {
            prop_assert_eq!(u.codec, codec);
        }
        prop_assert_eq!(demux.counters().get(Counter::PsErrors), 0);
    }
}

/// Every byte boundary of the stream's opening (pack, system header, PSM,
/// parameter sets, key frame start) and of the next frame's headers, as a
/// split in two pieces.
#[test]
fn a_split_at_every_byte_boundary_of_the_headers_gives_back_the_same_units() {
    for codec in [VideoCodec::H264, VideoCodec::H265] {
        let footage = footage(codec);
        let frames = mux(footage, MuxOptions::hikvision(codec));
        let short = &frames[..3];
        let ps = concat(short);
        let second = short[0].ps.len();
        let boundaries = (0..4096).chain(second - 64..second + 2048);
        for split in boundaries {
            let mut demux = demuxer();
            let mut units = Vec::new();
            for piece in [&ps[..split], &ps[split..]] {
                demux.push(piece);
                units.extend(std::iter::from_fn(|| demux.pop()));
            }
            demux.end_of_stream();
            units.extend(std::iter::from_fn(|| demux.pop()));
            assert_eq!(units.len(), 3, "{codec:?} split at {split}");
            for (i, u) in units.iter().enumerate() {
                assert!(
                    u.data == footage.clip.units[i],
                    "{codec:?} split at {split}, unit {i}"
                );
            }
        }
    }
}

/// One byte at a time: every byte boundary is a split.
#[test]
fn one_byte_at_a_time_gives_back_the_same_units() {
    for codec in [VideoCodec::H264, VideoCodec::H265] {
        let footage = footage(codec);
        for options in [
            MuxOptions::hikvision(codec),
            MuxOptions {
                psm: false,
                pes_per_nal: false,
                max_pes_payload: 2000,
                pack_per_pes: true,
                pts_on_every_pes: true,
                audio: true,
                ..MuxOptions::hikvision(codec)
            },
        ] {
            let ps = concat(&mux(footage, options));
            let (units, demux) = demux_chunked(&ps, &[1]);
            assert_same_units(footage, &units, codec);
            assert_clean(&demux);
        }
    }
}

/// Parameter sets only before the first key frame: later key frames get
/// them from the demuxer's cache; a changed SPS is flagged.
#[test]
fn parameter_sets_are_repeated_before_key_frames_and_changes_flagged() {
    let codec = VideoCodec::H264;
    let footage = footage(codec);
    let key_frames: Vec<usize> = (0..footage.keys.len())
        .filter(|&i| footage.keys[i])
        .collect();
    let strip_params = |unit: &[u8]| -> Vec<u8> {
        let sps_pps_end = find_nal(unit, 5).expect("IDR in a key frame");
        unit[sps_pps_end..].to_vec()
    };
    let muxer = xueliang_gb28181::media::testing::PsMuxer::new(MuxOptions::hikvision(codec));
    let mut ps = Vec::new();
    for (i, unit) in footage.clip.units.iter().enumerate() {
        let unit = if i == key_frames[1] {
            strip_params(unit)
        } else {
            unit.clone()
        };
        ps.extend(muxer.mux(&unit, footage.clip.pts(i), footage.keys[i]));
    }
    let (units, _) = demux_chunked(&ps, &[1400]);
    assert_eq!(units.len(), footage.clip.units.len());
    let k = key_frames[1];
    assert!(units[k].is_key);
    assert!(
        units[k].data.starts_with(&[0, 0, 0, 1, 0x67]),
        "SPS put back first"
    );
    assert!(units[k]
        .data
        .ends_with(&strip_params(&footage.clip.units[k])));
    assert!(units.iter().all(|u| !u.new_parameters));

    // The same stream with the second key frame's SPS changed (one more
    // byte of trailing data: a different SPS to compare, same decoding).
    let mut ps = Vec::new();
    for (i, unit) in footage.clip.units.iter().enumerate() {
        let mut unit = unit.clone();
        if i == key_frames[1] {
            let pps = find_nal(&unit, 8).expect("PPS") - 4;
            unit.insert(pps, 0x80);
        }
        ps.extend(muxer.mux(&unit, footage.clip.pts(i), footage.keys[i]));
    }
    let (units, _) = demux_chunked(&ps, &[1400]);
    let flagged: Vec<usize> = (0..units.len())
        .filter(|&i| units[i].new_parameters)
        .collect();
    assert_eq!(flagged, vec![key_frames[1], key_frames[2]]);
}

/// The offset of the start code of the first NAL unit of H.264 `nal_type`.
fn find_nal(unit: &[u8], nal_type: u8) -> Option<usize> {
    (0..unit.len().saturating_sub(4))
        .find(|&i| unit[i..i + 4] == [0, 0, 0, 1] && unit[i + 4] & 0x1f == nal_type)
        .or_else(|| {
            (0..unit.len().saturating_sub(3))
                .find(|&i| unit[i..i + 3] == [0, 0, 1] && unit[i + 3] & 0x1f == nal_type)
        })
}

fn shuffle_in_groups(packets: &mut [Vec<u8>], group: usize, seed: u64) {
    let mut state = seed | 1;
    for chunk in packets.chunks_mut(group) {
        for i in (1..chunk.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let j = (state % (i as u64 + 1)) as usize;
            chunk.swap(i, j);
        }
    }
}

/// RTP packets (minus the lost ones) through a reorder buffer into the
/// demuxer, one millisecond apart; returns the units, the demuxer and how
/// many packets arrived out of order.
fn through_reorder(packets: &[Vec<u8>], lost: &[bool]) -> (Vec<AccessUnit>, PsDemuxer, usize) {
    let mut reorder = ReorderBuffer::new(ReorderSettings {
        window: 512,
        max_bytes: 4 << 20,
        max_wait: Duration::from_millis(100),
    });
    let mut demux = demuxer();
    let mut units = Vec::new();
    let mut reordered = 0;
    let start = Instant::now();
    let feed = |d: xueliang_gb28181::media::reorder::Delivery<Vec<u8>>,
                demux: &mut PsDemuxer,
                units: &mut Vec<AccessUnit>| {
        if d.lost_before > 0 || d.restarted {
            demux.note_loss(d.lost_before);
        }
        let rtp = RtpPacket::parse(&d.item).expect("own packets parse");
        demux.push(rtp.payload);
        units.extend(std::iter::from_fn(|| demux.pop()));
    };
    for (i, packet) in packets.iter().enumerate() {
        if lost.get(i).copied().unwrap_or(false) {
            continue;
        }
        let now = start + Duration::from_millis(i as u64);
        let seq = RtpPacket::parse(packet)
            .expect("own packets parse")
            .sequence;
        if let xueliang_gb28181::media::reorder::Admission::Accepted { reordered: true } =
            reorder.push(seq, packet.len(), packet.clone(), now)
        {
            reordered += 1;
        }
        while let Some(d) = reorder.pop(now) {
            feed(d, &mut demux, &mut units);
        }
    }
    let end = start + Duration::from_secs(3600);
    while let Some(d) = reorder.pop(end) {
        feed(d, &mut demux, &mut units);
    }
    demux.end_of_stream();
    units.extend(std::iter::from_fn(|| demux.pop()));
    (units, demux, reordered)
}

/// What the demuxer must give after losing `lost` packets: a unit is
/// damaged if one of its packets is lost, or the first packet of the unit
/// after it (it was still open when the loss showed); after damage, units
/// resume at the next undamaged key frame, which carries the lost count.
fn expected_after_loss(footage: &Footage, owner: &[usize], lost: &[bool]) -> Vec<(usize, u32)> {
    let n = footage.clip.units.len();
    let mut damaged = vec![false; n];
    let mut first_packet = vec![usize::MAX; n];
    for (p, &unit) in owner.iter().enumerate() {
        first_packet[unit] = first_packet[unit].min(p);
        if lost[p] {
            damaged[unit] = true;
        }
    }
    for unit in 0..n - 1 {
        if lost[first_packet[unit + 1]] {
            damaged[unit] = true;
        }
    }
    let mut out = Vec::new();
    let mut synced = false;
    // Packets lost before the first one received are not known to exist.
    let mut counted_up_to = lost.iter().position(|l| !l).unwrap_or(lost.len());
    for unit in 0..n {
        if damaged[unit] {
            synced = false;
            continue;
        }
        if !synced && !footage.keys[unit] {
            continue;
        }
        synced = true;
        let lost_before = lost[counted_up_to..first_packet[unit]]
            .iter()
            .filter(|l| **l)
            .count();
        counted_up_to = first_packet[unit];
        out.push((unit, lost_before as u32));
    }
    out
}

fn index_of(footage: &Footage, unit: &AccessUnit) -> usize {
    footage
        .clip
        .units
        .iter()
        .position(|u| *u == unit.data)
        .unwrap_or(usize::MAX)
}

/// Joining a stream in the middle of a key frame: the rest of it is
/// dropped, the next key frame is the first unit.
#[test]
fn a_stream_joined_mid_unit_starts_at_the_next_key_frame() {
    for codec in [VideoCodec::H264, VideoCodec::H265] {
        for pes_per_nal in [true, false] {
            let footage = footage(codec);
            let options = MuxOptions {
                pes_per_nal,
                ..MuxOptions::hikvision(codec)
            };
            let (packets, owner) = packetize(&mux(footage, options), 0);
            let mut lost = vec![false; packets.len()];
            lost[0] = true;
            let (units, demux, _) = through_reorder(&packets, &lost);
            let got: Vec<(usize, u32)> = units
                .iter()
                .map(|u| (index_of(footage, u), u.lost_packets))
                .collect();
            assert_eq!(
                got,
                expected_after_loss(footage, &owner, &lost),
                "{codec:?} {pes_per_nal}"
            );
            assert_eq!(demux.counters().get(Counter::PsErrors), 0);
        }
    }
}
