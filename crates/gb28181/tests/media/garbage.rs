//! Bad input never panics and never wedges: random bytes through RTP
//! parsing, RFC 4571 deframing and the PS demuxer; real PS with bytes
//! flipped, inserted and cut; random sequence numbers through the reorder
//! buffer. After garbage, a real stream comes out whole again.

use crate::common::*;
use proptest::prelude::*;
use std::time::{Duration, Instant};
use xueliang_core::VideoCodec;
use xueliang_gb28181::media::reorder::{ReorderBuffer, ReorderSettings};
use xueliang_gb28181::media::rtp::RtpPacket;
use xueliang_gb28181::media::tcp_framing::Rfc4571Deframer;
use xueliang_gb28181::media::testing::MuxOptions;
use xueliang_gb28181::media::Counter;

/// An edit of a real stream: at a fraction of its length, flip a byte,
/// insert random bytes, or cut some out.
#[derive(Clone, Debug)]
enum Edit {
    Flip(f64, u8),
    Insert(f64, Vec<u8>),
    Cut(f64, usize),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0.0f64..1.0, 1u8..=255).prop_map(|(at, x)| Edit::Flip(at, x)),
        (0.0f64..1.0, prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(at, b)| Edit::Insert(at, b)),
        (0.0f64..1.0, 1usize..3000).prop_map(|(at, n)| Edit::Cut(at, n)),
    ]
}

fn apply(stream: &mut Vec<u8>, edit: &Edit) {
    let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len.saturating_sub(1));
    match edit {
        Edit::Flip(f, x) => {
            let i = at(*f, stream.len());
            stream[i] ^= x;
        }
        Edit::Insert(f, bytes) => {
            let i = at(*f, stream.len());
            stream.splice(i..i, bytes.iter().copied());
        }
        Edit::Cut(f, n) => {
            let i = at(*f, stream.len());
            let end = (i + n).min(stream.len());
            stream.drain(i..end);
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn random_bytes_through_rtp_parsing(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = RtpPacket::parse(&bytes) {
            prop_assert!(12 + p.csrc.len() + p.payload.len() <= bytes.len());
        }
    }

    #[test]
    fn random_bytes_through_tcp_framing(
        bytes in prop::collection::vec(any::<u8>(), 0..5000),
        chunk in 1usize..700,
        max in 12usize..2000,
    ) {
        let mut deframer = Rfc4571Deframer::new(max);
        let mut consumed = 0;
        for piece in bytes.chunks(chunk) {
            deframer.extend(piece);
            while let Some(frame) = deframer.next_frame() {
                if let Ok(frame) = frame {
                    prop_assert!(!frame.is_empty() && frame.len() <= max);
                    consumed += frame.len() + 2;
                }
            }
        }
        prop_assert!(consumed <= bytes.len());
    }

    #[test]
    fn random_bytes_through_the_demuxer(
        bytes in prop::collection::vec(any::<u8>(), 0..20000),
        sizes in prop::collection::vec(1usize..3000, 1..8),
    ) {
        let (units, demux) = demux_chunked(&bytes, &sizes);
        prop_assert_eq!(demux.counters().get(Counter::Units), units.len() as u64);
    }

    #[test]
    fn random_bytes_with_start_codes_through_the_demuxer(
        pieces in prop::collection::vec(
            (prop::sample::select(vec![0xbau8, 0xbb, 0xbc, 0xbd, 0xc0, 0xe0, 0xe1, 0xb9]),
             prop::collection::vec(any::<u8>(), 0..300)),
            0..100),
    ) {
        // Start codes followed by random headers reach every parser branch.
        let mut bytes = Vec::new();
        for (code, body) in pieces {
            bytes.extend_from_slice(&[0, 0, 1, code]);
            bytes.extend(body);
        }
        let (units, demux) = demux_chunked(&bytes, &[1, 17, 1400]);
        prop_assert_eq!(demux.counters().get(Counter::Units), units.len() as u64);
    }

    #[test]
    fn random_sequences_through_the_reorder_buffer(
        seqs in prop::collection::vec((any::<u16>(), 0u64..300), 0..400),
    ) {
        let settings = ReorderSettings { window: 64, max_bytes: 10_000, max_wait: Duration::from_millis(50) };
        let mut buffer = ReorderBuffer::new(settings);
        let start = Instant::now();
        let mut out = 0;
        let mut now = start;
        for (i, (seq, dt)) in seqs.iter().enumerate() {
            now += Duration::from_millis(*dt);
            buffer.push(*seq, 200, i, now);
            while buffer.pop(now).is_some() {
                out += 1;
            }
        }
        out += buffer.drain().len();
        prop_assert!(out <= seqs.len());
    }
}

proptest! {
    #![proptest_config(config(32))]

    /// Garbage in a real stream (as a device with a broken muxer or a
    /// corrupting network would give): no panic, and once the real stream
    /// goes on, its units come out whole from the next key frame but one.
    #[test]
    fn a_real_stream_recovers_from_edits(
        codec in prop_oneof![Just(VideoCodec::H264), Just(VideoCodec::H265)],
        edits in prop::collection::vec(edit_strategy(), 1..12),
        sizes in prop::collection::vec(1usize..3000, 1..8),
    ) {
        let footage = footage(codec);
        let frames = mux(footage, MuxOptions::hikvision(codec));
        let keys: Vec<usize> = (0..footage.keys.len()).filter(|&i| footage.keys[i]).collect();
        // Garbage in the first GOP; the stream from the second key frame on
        // is clean, so everything from the third must come out.
        let (damaged, clean) = frames.split_at(keys[1]);
        let mut stream = concat(damaged);
        for edit in &edits {
            apply(&mut stream, edit);
        }
        stream.extend(concat(clean));
        let (units, _) = demux_chunked(&stream, &sizes);
        let tail = footage.clip.units.len() - keys[2];
        prop_assert!(units.len() >= tail);
        for (got, want) in units[units.len() - tail..].iter().zip(&footage.clip.units[keys[2]..]) {
            prop_assert!(got.data == *want);
            prop_assert_eq!(got.codec, codec);
        }
    }
}
