//! Fragmented MP4 for live view: samples pushed one at a time as ingest
//! would, the segments concatenated into a file and checked with ffprobe
//! and ffmpeg; a resolution change yields a new init segment.

use crate::common::*;
use anyhow::{ensure, Context, Result};
use std::path::Path;
use xueliang_record::{FragmentWriter, InitSegment, MediaSegment, Sample, Segment};

struct Live {
    segments: Vec<Segment>,
    /// Most samples held back at once.
    max_pending: usize,
}

fn live(samples: &[Sample]) -> Result<Live> {
    let mut writer = FragmentWriter::new();
    let mut segments = Vec::new();
    let mut max_pending = 0;
    for s in samples {
        segments.extend(writer.push(s)?);
        max_pending = max_pending.max(writer.pending());
    }
    segments.extend(writer.finish());
    ensure!(writer.pending() == 0 && writer.skipped() == 0);
    Ok(Live {
        segments,
        max_pending,
    })
}

fn media(segments: &[Segment]) -> Vec<&MediaSegment> {
    segments
        .iter()
        .filter_map(|s| match s {
            Segment::Media(m) => Some(m),
            Segment::Init(_) => None,
        })
        .collect()
}

fn inits(segments: &[Segment]) -> Vec<&InitSegment> {
    segments
        .iter()
        .filter_map(|s| match s {
            Segment::Init(i) => Some(i),
            Segment::Media(_) => None,
        })
        .collect()
}

/// Sequence numbers 1, 2, ... and decode times that run on without gaps.
fn check_continuity(media: &[&MediaSegment]) -> Result<()> {
    for (n, m) in (1..).zip(media) {
        ensure!(m.sequence == n, "sequence {} at {n}", m.sequence);
    }
    ensure!(media[0].base_decode_time == 0);
    for w in media.windows(2) {
        ensure!(
            w[1].base_decode_time == w[0].base_decode_time + w[0].duration,
            "decode time jumps from {} + {} to {}",
            w[0].base_decode_time,
            w[0].duration,
            w[1].base_decode_time
        );
    }
    Ok(())
}

/// `init` + `media` written as one file and checked against `samples`.
fn check_file(
    init: &InitSegment,
    media: &[&MediaSegment],
    samples: &[Sample],
    source: &Path,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("live.mp4");
    let mut bytes = init.data.to_vec();
    for m in media {
        bytes.extend_from_slice(&m.data);
    }
    std::fs::write(&path, &bytes)?;

    let boxes = top_level_boxes(&bytes)?;
    ensure!(boxes[..2] == ["ftyp", "moov"]);
    ensure!(boxes[2..].chunks(2).all(|p| p == ["moof", "mdat"]));
    ensure!(boxes.len() == 2 + 2 * media.len());
    ensure!(find_box(&init.data, b"mvex").is_some() && find_box(&init.data, b"trex").is_some());

    // A key frame starts a segment, and only segments with one say so.
    let keys = samples.iter().filter(|s| s.is_key).count();
    ensure!(media.iter().filter(|m| m.starts_with_key).count() == keys);
    ensure!(media.iter().map(|m| m.samples as usize).sum::<usize>() == samples.len());

    // The trun as a browser reads it: per-sample flags (ffmpeg ignores
    // them, Media Source Extensions do not), sizes, durations, offsets.
    let mut trun = Vec::new();
    for m in media {
        let samples = read_fragment(&m.data)?;
        ensure!(samples.len() == m.samples as usize);
        ensure!(m.duration == samples.iter().map(|s| u64::from(s.0)).sum::<u64>());
        trun.extend(samples);
    }
    for (i, (s, t)) in samples.iter().zip(&trun).enumerate() {
        let flags = if s.is_key { 0x0200_0000 } else { 0x0101_0000 };
        ensure!(t.2 == flags, "sample {i}: flags {:08x}", t.2);
    }
    // Durations: the next sample's DTS, the last one the previous duration.
    let n = trun.len();
    if n > 1 {
        ensure!(trun[n - 1].0 == trun[n - 2].0);
    }

    let out = packets(&path)?;
    ensure!(out.len() == samples.len(), "{} packets", out.len());
    let keys_in: Vec<bool> = samples.iter().map(|s| s.is_key).collect();
    let keys_out: Vec<bool> = out.iter().map(|p| p.key).collect();
    ensure!(keys_in == keys_out, "key flags differ");
    let min_in = samples.iter().map(|s| s.pts).min().unwrap();
    let min_out = out.iter().map(|p| p.pts).min().unwrap();
    for (s, p) in samples.iter().zip(&out) {
        ensure!(
            s.pts - min_in == p.pts - min_out,
            "pts {} became {}",
            s.pts - min_in,
            p.pts - min_out
        );
    }
    let dts: Vec<i64> = out
        .iter()
        .map(|p| p.dts.context("no dts"))
        .collect::<Result<_>>()?;
    ensure!(dts.windows(2).all(|w| w[0] < w[1]), "dts not increasing");
    check_dts_follow_sorted_pts(&out)?;
    let mut by_pts = out.clone();
    by_pts.sort_by_key(|p| p.pts);
    ensure!(by_pts[0].key, "first presented frame is not a key frame");
    ensure!(by_pts.windows(2).all(|w| w[0].pts < w[1].pts));

    ensure!(
        decode_check(&path)? == samples.len() as u64,
        "decoded frames"
    );
    let (src, info) = (stream_info(source)?, stream_info(&path)?);
    ensure!((info.width, info.height) == (src.width, src.height));
    ensure!((init.config.width(), init.config.height()) == (src.width, src.height));
    Ok(())
}

fn check_stream(source: &Path, gops_n: usize) -> Result<Live> {
    let samples = read_samples(source)?;
    // Start mid-stream, as a viewer does.
    let from = nth_key(&samples, 1);
    let samples = gops(&samples, from, gops_n);
    let live = live(samples)?;
    let inits = inits(&live.segments);
    ensure!(inits.len() == 1, "{} init segments", inits.len());
    ensure!(matches!(live.segments[0], Segment::Init(_)));
    let media = media(&live.segments);
    check_continuity(&media)?;
    check_file(inits[0], &media, samples, source)?;
    // The init's codec configuration is the one ffmpeg wrote for the source.
    let theirs = std::fs::read(source)?;
    let record = inits[0].config.decoder_config_record();
    match samples[0].codec {
        xueliang_core::VideoCodec::H264 => ensure!(find_box(&theirs, b"avcC") == Some(record)),
        xueliang_core::VideoCodec::H265 => {
            ensure!(find_box(&theirs, b"hvcC").unwrap()[..22] == record[..22])
        }
    }
    Ok(live)
}

#[test]
fn d1_h264_live() -> Result<()> {
    let live = check_stream(&fixture("vtest-d1-25fps.mp4"), 3)?;
    // No B-frames: each sample waits only for the next one.
    ensure!(live.max_pending <= 1, "held {} samples", live.max_pending);
    Ok(())
}

#[test]
fn h264_b_frames_live() -> Result<()> {
    let live = check_stream(&h264_bframes()?, 2)?;
    ensure!(live.max_pending <= 4, "held {} samples", live.max_pending);
    Ok(())
}

#[test]
fn h265_live() -> Result<()> {
    let live = check_stream(&fixture("vtest-h265.mp4"), 3)?;
    ensure!(live.max_pending <= 1, "held {} samples", live.max_pending);
    Ok(())
}

#[test]
fn h265_b_frames_live() -> Result<()> {
    check_stream(&h265_bframes()?, 2)?;
    Ok(())
}

#[test]
fn resolution_change_yields_a_new_init_segment() -> Result<()> {
    let d1_path = fixture("vtest-d1-25fps.mp4");
    let small_path = h264_cropped()?;
    let d1 = read_samples(&d1_path)?;
    let small = read_samples(&small_path)?;
    let first = d1[..100].to_vec();
    let shift = first[99].pts + 3600 - small[0].pts;
    let second: Vec<Sample> = small
        .iter()
        .map(|s| Sample {
            pts: s.pts + shift,
            ..s.clone()
        })
        .collect();
    let mut all = first.clone();
    all.extend(second.iter().cloned());

    let live = live(&all)?;
    let init_at: Vec<usize> = live
        .segments
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Segment::Init(_)))
        .map(|(i, _)| i)
        .collect();
    ensure!(
        init_at.len() == 2 && init_at[0] == 0,
        "inits at {init_at:?}"
    );
    let inits = inits(&live.segments);
    ensure!((inits[0].config.width(), inits[0].config.height()) == (704, 576));
    ensure!((inits[1].config.width(), inits[1].config.height()) == (354, 250));
    ensure!(inits[0].config.codec_string() != inits[1].config.codec_string());

    // One sequence and one decode timeline across the change.
    check_continuity(&media(&live.segments))?;

    // Each part plays on its own init segment.
    let before = media(&live.segments[..init_at[1]]);
    let after = media(&live.segments[init_at[1]..]);
    check_file(inits[0], &before, &first, &d1_path)?;
    check_file(inits[1], &after, &second, &small_path)?;
    Ok(())
}

#[test]
fn a_viewer_joins_at_a_key_frame_and_a_restarted_session_continues() -> Result<()> {
    let d1 = read_samples(&fixture("vtest-d1-25fps.mp4"))?;
    let mut writer = FragmentWriter::new();
    // Non-key frames before the first key frame are skipped.
    for s in &d1[10..50] {
        ensure!(writer.push(s)?.is_empty());
    }
    ensure!(writer.skipped() == 40 && writer.init().is_none());
    let mut segments = Vec::new();
    for s in &d1[50..150] {
        segments.extend(writer.push(s)?);
    }
    // The camera's session restarts: its clock starts over.
    for s in &d1[..100] {
        segments.extend(writer.push(s)?);
    }
    segments.extend(writer.finish());
    ensure!(writer.discontinuities() == 1);
    ensure!(inits(&segments).len() == 1, "same parameters: no new init");
    check_continuity(&media(&segments))?;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("joined.mp4");
    let mut bytes = inits(&segments)[0].data.to_vec();
    for m in media(&segments) {
        bytes.extend_from_slice(&m.data);
    }
    std::fs::write(&path, &bytes)?;
    ensure!(decode_check(&path)? == 200);
    let out = packets(&path)?;
    ensure!(
        out.windows(2).all(|w| w[0].pts < w[1].pts),
        "timeline restarts"
    );
    ensure!(out[100].pts == out[99].pts + 3600);
    Ok(())
}

#[test]
fn a_key_frame_always_starts_a_media_segment() -> Result<()> {
    // With B-frames, samples wait; the end of the stream sends what waits
    // in one go, a key frame among them when it came last.
    let samples = read_samples(&h264_bframes()?)?;
    let key = nth_key(&samples, 2);
    for end in key - 2..key + 4 {
        let live = live(&samples[..=end])?;
        let mut keys = 0;
        for m in media(&live.segments) {
            let trun = read_fragment(&m.data)?;
            let is_key: Vec<bool> = trun.iter().map(|s| s.2 == 0x0200_0000).collect();
            ensure!(
                !is_key[1..].contains(&true),
                "a key frame inside a segment (end {end})"
            );
            ensure!(m.starts_with_key == is_key[0]);
            keys += usize::from(is_key[0]);
        }
        ensure!(keys == samples[..=end].iter().filter(|s| s.is_key).count());
    }
    Ok(())
}
