//! Shared by the media tests: the test footage cut into access units (with
//! the real `ffmpeg`), muxed into PS and RTP by the crate's testing module,
//! and the truth about it from `ffprobe`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use xueliang_core::VideoCodec;
use xueliang_gb28181::media::testing::{Clip, MuxOptions, PsMuxer, RtpPacketizer};
use xueliang_gb28181::media::{MediaCounters, PsDemuxer};
use xueliang_ingest::AccessUnit;

/// Property test settings: `cases` random cases, nothing written to disk
/// (a failure prints its minimal input).
pub fn config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..Default::default()
    }
}

/// Seconds of footage the tests use: three key frames at a 2 s GOP.
pub const SECONDS: f64 = 5.0;

pub fn fixture(codec: VideoCodec) -> PathBuf {
    let name = match codec {
        VideoCodec::H264 => "vtest-h264.mp4",
        VideoCodec::H265 => "vtest-h265.mp4",
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh",
        path.display()
    );
    path
}

/// The first [`SECONDS`] of the fixture, and which units are key frames
/// according to ffprobe on the MP4.
pub struct Footage {
    pub clip: Clip,
    pub keys: Vec<bool>,
}

pub fn footage(codec: VideoCodec) -> &'static Footage {
    static H264: OnceLock<Footage> = OnceLock::new();
    static H265: OnceLock<Footage> = OnceLock::new();
    let cell = match codec {
        VideoCodec::H264 => &H264,
        VideoCodec::H265 => &H265,
    };
    cell.get_or_init(|| {
        let path = fixture(codec);
        let clip = Clip::from_file(&path, Some(SECONDS)).expect("reading the fixture with ffmpeg");
        let keys = ffprobe_key_flags(&path, clip.units.len());
        assert_eq!(clip.codec, codec);
        assert!(clip.units.len() >= 40, "{} units", clip.units.len());
        assert!(keys.iter().filter(|k| **k).count() >= 3);
        Footage { clip, keys }
    })
}

/// Key-frame flags of the first `n` video packets, as ffprobe reads the file.
pub fn ffprobe_key_flags(path: &Path, n: usize) -> Vec<bool> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "packet=flags", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("running ffprobe");
    assert!(out.status.success(), "ffprobe failed");
    let flags: Vec<bool> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .take(n)
        .map(|l| l.starts_with('K'))
        .collect();
    assert_eq!(flags.len(), n);
    flags
}

/// One frame's PS bytes.
pub struct MuxedFrame {
    pub ps: Vec<u8>,
    pub pts: u64,
}

/// PTS of the first frame: not zero, so wrap-around and offsets show.
pub const FIRST_PTS: u64 = (1 << 33) - 90_000;

pub fn mux(footage: &Footage, options: MuxOptions) -> Vec<MuxedFrame> {
    let muxer = PsMuxer::new(options);
    footage
        .clip
        .units
        .iter()
        .enumerate()
        .map(|(i, unit)| {
            let pts = (FIRST_PTS + footage.clip.pts(i)) & ((1 << 33) - 1);
            MuxedFrame {
                ps: muxer.mux(unit, pts, footage.keys[i]),
                pts,
            }
        })
        .collect()
}

pub fn concat(frames: &[MuxedFrame]) -> Vec<u8> {
    frames.iter().flat_map(|f| f.ps.iter().copied()).collect()
}

/// RTP packets of the frames, and for each packet the frame it carries.
pub fn packetize(frames: &[MuxedFrame], first_sequence: u16) -> (Vec<Vec<u8>>, Vec<usize>) {
    let mut packetizer = RtpPacketizer::new(0x0100_0001, first_sequence);
    let mut packets = Vec::new();
    let mut owner = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        for p in packetizer.packetize(&frame.ps, frame.pts as u32) {
            packets.push(p);
            owner.push(i);
        }
    }
    (packets, owner)
}

pub fn demuxer() -> PsDemuxer {
    PsDemuxer::new(Arc::new(MediaCounters::default()), 4 << 20)
}

/// Pushes `bytes` in chunks of the given sizes (cycled), popping after each.
pub fn demux_chunked(bytes: &[u8], sizes: &[usize]) -> (Vec<AccessUnit>, PsDemuxer) {
    let mut demux = demuxer();
    let mut units = Vec::new();
    let mut at = 0;
    for size in sizes.iter().cycle() {
        if at >= bytes.len() {
            break;
        }
        let end = (at + size.max(&1)).min(bytes.len());
        demux.push(&bytes[at..end]);
        at = end;
        units.extend(std::iter::from_fn(|| demux.pop()));
    }
    demux.end_of_stream();
    units.extend(std::iter::from_fn(|| demux.pop()));
    (units, demux)
}

/// Asserts the demuxed units are the footage's, byte for byte, with key
/// flags from ffprobe and times from the PTS.
pub fn assert_same_units(footage: &Footage, units: &[AccessUnit], codec: VideoCodec) {
    assert_eq!(units.len(), footage.clip.units.len(), "unit count");
    for (i, unit) in units.iter().enumerate() {
        assert_eq!(unit.codec, codec, "unit {i}");
        assert!(unit.data == footage.clip.units[i], "unit {i}: data differs");
        assert_eq!(unit.is_key, footage.keys[i], "unit {i}: key flag");
        assert!(!unit.new_parameters, "unit {i}");
        assert_eq!(unit.lost_packets, 0, "unit {i}");
        let expected = footage.clip.pts(i) as f64 / 90_000.0;
        assert!(
            (unit.stream_time - expected).abs() < 1e-9,
            "unit {i}: stream_time {} != {expected}",
            unit.stream_time
        );
    }
}
