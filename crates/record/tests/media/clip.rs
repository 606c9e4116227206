//! Clip files (faststart MP4) from real camera-like streams, checked with
//! ffprobe and ffmpeg: H.264 with and without B-frames, H.265 with and
//! without, SPS cropping; the decoder configuration compared with the one
//! ffmpeg writes for the same stream.

use crate::common::*;
use anyhow::{ensure, Result};
use std::io::BufWriter;
use std::path::Path;
use xueliang_core::VideoCodec;
use xueliang_record::{read_mp4, write_mp4, ClipSummary, Frame, MuxError, Sample, TrackConfig};

/// [`read_mp4`] gives the samples back: same order, key flags, pictures,
/// presentation times (from 0), the file's parameter sets before each key
/// frame.
fn check_read_back(samples: &[Sample], summary: &ClipSummary, data: &[u8]) -> Result<()> {
    let back = read_mp4(data)?;
    ensure!(
        back.len() == samples.len(),
        "{} samples read back",
        back.len()
    );
    let min_in = samples.iter().map(|s| s.pts).min().unwrap();
    for (i, (s, b)) in samples.iter().zip(&back).enumerate() {
        ensure!(s.is_key == b.is_key, "sample {i}: key flag");
        ensure!(
            s.pts - min_in == b.pts,
            "sample {i}: pts {} read as {}",
            s.pts - min_in,
            b.pts
        );
        let (fs, fb) = (Frame::from_sample(s)?, Frame::from_sample(b)?);
        ensure!(fs.data == fb.data, "sample {i}: picture data differs");
        if b.is_key {
            ensure!(
                &fb.parameter_sets == summary.config.parameter_sets(),
                "sample {i}: parameter sets"
            );
        }
    }
    Ok(())
}

/// Writes `samples` as a clip and checks it with the real tools. Returns
/// the summary and the file's bytes.
fn check_clip(samples: &[Sample], source: &Path) -> Result<(ClipSummary, Vec<u8>)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("clip.mp4");
    let summary = write_mp4(samples, BufWriter::new(std::fs::File::create(&path)?))?;
    let data = std::fs::read(&path)?;
    ensure!(summary.file_bytes == data.len() as u64, "file_bytes");

    // Faststart: the index before the media.
    ensure!(
        top_level_boxes(&data)? == ["ftyp", "moov", "mdat"],
        "box order {:?}",
        top_level_boxes(&data)?
    );

    // Every sample, in decode order, with its key flag.
    let out = packets(&path)?;
    ensure!(out.len() == samples.len(), "{} packets", out.len());
    ensure!(summary.samples == samples.len() && summary.skipped == 0);
    let keys_in: Vec<bool> = samples.iter().map(|s| s.is_key).collect();
    let keys_out: Vec<bool> = out.iter().map(|p| p.key).collect();
    ensure!(keys_in == keys_out, "key flags differ");

    // Presentation times: the input's, moved to start at 0; ffmpeg sees the
    // edit list, so the first presented frame is at 0 too.
    let min_in = samples.iter().map(|s| s.pts).min().unwrap();
    let min_out = out.iter().map(|p| p.pts).min().unwrap();
    ensure!(min_out == 0, "first presented frame at {min_out}");
    for (s, p) in samples.iter().zip(&out) {
        ensure!(
            s.pts - min_in == p.pts - min_out,
            "pts {} became {}",
            s.pts - min_in,
            p.pts - min_out
        );
    }
    check_read_back(samples, &summary, &data)?;
    // Decode times monotonic, never after the presentation time.
    let dts: Vec<i64> = out.iter().map(|p| p.dts.unwrap()).collect();
    ensure!(dts.windows(2).all(|w| w[0] < w[1]), "dts not increasing");
    ensure!(out.iter().all(|p| p.dts.unwrap() <= p.pts), "dts after pts");
    check_dts_follow_sorted_pts(&out)?;

    // In presentation order: strictly increasing, a key frame first.
    let mut by_pts = out.clone();
    by_pts.sort_by_key(|p| p.pts);
    ensure!(by_pts[0].key, "first presented frame is not a key frame");
    ensure!(by_pts.windows(2).all(|w| w[0].pts < w[1].pts));

    // Duration: the samples' span plus one frame, within one frame.
    let mut pts_in: Vec<i64> = samples.iter().map(|s| s.pts).collect();
    pts_in.sort_unstable();
    let frame = pts_in[1] - pts_in[0];
    let expected = (pts_in[pts_in.len() - 1] - pts_in[0] + frame) as f64 / TICKS as f64;
    let got = format_duration(&path)?;
    let tolerance = frame as f64 / TICKS as f64;
    ensure!(
        (got - expected).abs() <= tolerance,
        "duration {got} s, expected {expected} s"
    );
    ensure!((summary.duration_seconds() - expected).abs() <= tolerance);

    // It decodes without a word from ffmpeg, every frame.
    ensure!(
        decode_check(&path)? == samples.len() as u64,
        "decoded frames"
    );

    // The size the source has, and the config says.
    let (src, info) = (stream_info(source)?, stream_info(&path)?);
    ensure!((info.width, info.height) == (src.width, src.height));
    ensure!((summary.config.width(), summary.config.height()) == (src.width, src.height));
    Ok((summary, data))
}

#[test]
fn d1_h264_clip_from_a_middle_key_frame() -> Result<()> {
    let source = fixture("vtest-d1-25fps.mp4");
    let samples = read_samples(&source)?;
    let from = nth_key(&samples, 2);
    let clip = gops(&samples, from, 3);
    ensure!(clip.len() == 150);
    let (summary, data) = check_clip(clip, &source)?;
    ensure!(summary.config.codec_string() == "avc1.64001e");
    ensure!(find_box(&data, b"ctts").is_none() && find_box(&data, b"elst").is_none());
    // The avcC is the one ffmpeg wrote for the fixture, byte for byte.
    let theirs = std::fs::read(&source)?;
    ensure!(
        find_box(&theirs, b"avcC") == Some(summary.config.decoder_config_record()),
        "avcC differs from ffmpeg's"
    );
    Ok(())
}

#[test]
fn h264_with_b_frames() -> Result<()> {
    let source = h264_bframes()?;
    let samples = read_samples(&source)?;
    // The variant does reorder: some sample is presented before an earlier one.
    ensure!(samples.windows(2).any(|w| w[1].pts < w[0].pts));
    let from = nth_key(&samples, 1);
    let (summary, data) = check_clip(gops(&samples, from, 2), &source)?;
    ensure!(find_box(&data, b"ctts").is_some() && find_box(&data, b"elst").is_some());
    let theirs = std::fs::read(&source)?;
    ensure!(find_box(&theirs, b"avcC") == Some(summary.config.decoder_config_record()));
    ensure!(summary.config.reorder_depth().is_some_and(|r| r >= 1));
    Ok(())
}

/// hvcC: the header fields (profile/tier/level, chroma, depths, layers,
/// length size) as ffmpeg writes them, and the same VPS/SPS/PPS.
fn same_hvcc(ours: &[u8], theirs: &[u8]) -> Result<()> {
    // Byte 22 is the number of arrays (ffmpeg keeps an SEI array too).
    ensure!(ours[..22] == theirs[..22], "hvcC header differs");
    let arrays = |record: &[u8]| -> Vec<(u8, Vec<Vec<u8>>)> {
        let mut out = Vec::new();
        let mut at = 23;
        for _ in 0..record[22] {
            let kind = record[at] & 0x3f;
            let n = u16::from_be_bytes([record[at + 1], record[at + 2]]);
            at += 3;
            let mut nals = Vec::new();
            for _ in 0..n {
                let len = u16::from_be_bytes([record[at], record[at + 1]]) as usize;
                nals.push(record[at + 2..at + 2 + len].to_vec());
                at += 2 + len;
            }
            out.push((kind, nals));
        }
        out
    };
    // ffmpeg also keeps x265's SEI (type 39) in its hvcC; compare the sets.
    let sets = |record: &[u8]| {
        let mut a = arrays(record);
        a.retain(|(k, _)| matches!(k, 32..=34));
        a
    };
    ensure!(sets(ours) == sets(theirs), "parameter set arrays differ");
    ensure!(sets(ours).len() == 3);
    Ok(())
}

#[test]
fn h265_clip() -> Result<()> {
    let source = fixture("vtest-h265.mp4");
    let samples = read_samples(&source)?;
    let from = nth_key(&samples, 1);
    let (summary, _) = check_clip(gops(&samples, from, 3), &source)?;
    ensure!(summary.config.codec() == VideoCodec::H265);
    ensure!(summary.config.codec_string() == "hvc1.1.6.L90.90");
    let theirs = std::fs::read(&source)?;
    same_hvcc(
        summary.config.decoder_config_record(),
        find_box(&theirs, b"hvcC").unwrap(),
    )
}

#[test]
fn h265_with_b_frames() -> Result<()> {
    let source = h265_bframes()?;
    let samples = read_samples(&source)?;
    ensure!(samples.windows(2).any(|w| w[1].pts < w[0].pts));
    let from = nth_key(&samples, 1);
    let (summary, data) = check_clip(gops(&samples, from, 2), &source)?;
    ensure!(find_box(&data, b"ctts").is_some());
    let theirs = std::fs::read(&source)?;
    same_hvcc(
        summary.config.decoder_config_record(),
        find_box(&theirs, b"hvcC").unwrap(),
    )
}

#[test]
fn cropped_sizes() -> Result<()> {
    for source in [h264_cropped()?, h265_cropped()?] {
        let samples = read_samples(&source)?;
        let config = TrackConfig::from_annexb(samples[0].codec, &samples[0].data)?;
        ensure!((config.width(), config.height()) == (354, 250));
        let (summary, _) = check_clip(gops(&samples, 0, 2), &source)?;
        ensure!(summary.config == config);
    }
    Ok(())
}

#[test]
fn a_clip_starts_at_a_key_frame_and_holds_one_configuration() -> Result<()> {
    let d1 = read_samples(&fixture("vtest-d1-25fps.mp4"))?;
    let err = write_mp4(&d1[1..10], Vec::new()).unwrap_err();
    ensure!(matches!(err, MuxError::NotKeyFrame { .. }), "{err}");
    ensure!(matches!(
        write_mp4(&[], Vec::new()),
        Err(MuxError::NoSamples)
    ));

    // A resolution change inside: refused, with where.
    let small = read_samples(&h264_cropped()?)?;
    let mut both = d1[..50].to_vec();
    let shift = d1[49].pts + 3600 - small[0].pts;
    both.extend(small[..25].iter().map(|s| Sample {
        pts: s.pts + shift,
        ..s.clone()
    }));
    match write_mp4(&both, Vec::new()) {
        Err(MuxError::ParametersChanged { index: 50, .. }) => {}
        other => anyhow::bail!("expected a parameter change at 50, got {other:?}"),
    }

    // An H.265 sample in an H.264 clip.
    let h265 = read_samples(&fixture("vtest-h265.mp4"))?;
    let mut mixed = d1[..5].to_vec();
    mixed.push(h265[1].clone());
    ensure!(matches!(
        write_mp4(&mixed, Vec::new()),
        Err(MuxError::CodecChanged { .. })
    ));
    Ok(())
}
