//! Test helpers: real streams read from the repository's fixtures (and
//! variants encoded from them) with the ffmpeg CLI, and checks of what this
//! crate writes with ffprobe/ffmpeg.
#![allow(dead_code)]

use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use xueliang_core::VideoCodec;
use xueliang_record::Sample;

pub const TICKS: i64 = 90_000;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

pub fn run(tool: &str, args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .with_context(|| format!("running {tool}"))?;
    if !out.status.success() {
        bail!(
            "{tool} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// A variant encoded from a fixture with ffmpeg, made once and kept under
/// cargo's target tmp dir (test binaries share it; written atomically).
pub fn variant(name: &str, source: &str, args: &[&str]) -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xueliang-record");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    if path.exists() {
        return Ok(path);
    }
    let tmp = dir.join(format!("{}.{}.tmp.mp4", name, std::process::id()));
    let src = fixture(source);
    let mut all = vec!["-nostdin", "-v", "error", "-y", "-i", src.to_str().unwrap()];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-an", "-f", "mp4", tmp.to_str().unwrap()]);
    run("ffmpeg", &all)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// H.264 with B-frames (2, pyramid), D1, 8 s, GOP 50.
pub fn h264_bframes() -> Result<PathBuf> {
    variant(
        "h264-bf2.mp4",
        "vtest-d1-25fps.mp4",
        &[
            "-t",
            "8",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-threads",
            "1",
            "-bf",
            "2",
            "-x264-params",
            "keyint=50:min-keyint=50:scenecut=0:open-gop=0",
        ],
    )
}

/// H.265 with B-frames, 384x288, 8 s at 10 fps, GOP 20.
pub fn h265_bframes() -> Result<PathBuf> {
    variant(
        "h265-bf.mp4",
        "vtest-h265.mp4",
        &[
            "-t", "8", "-vf", "scale=384:288", "-c:v", "libx265", "-preset", "ultrafast",
            "-x265-params",
            "keyint=20:min-keyint=20:scenecut=0:bframes=3:open-gop=0:pools=1:frame-threads=1:log-level=error",
            "-tag:v", "hvc1",
        ],
    )
}

/// H.264 at 354x250 (coded 368x256: SPS cropping), 4 s at 25 fps.
pub fn h264_cropped() -> Result<PathBuf> {
    variant(
        "h264-354x250.mp4",
        "vtest-d1-25fps.mp4",
        &[
            "-t",
            "4",
            "-vf",
            "scale=354:250",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-threads",
            "1",
            "-x264-params",
            "keyint=25:min-keyint=25:scenecut=0",
        ],
    )
}

/// H.265 at 354x250 (conformance window), 3 s at 10 fps.
pub fn h265_cropped() -> Result<PathBuf> {
    variant(
        "h265-354x250.mp4",
        "vtest-h265.mp4",
        &[
            "-t",
            "3",
            "-vf",
            "scale=354:250",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "keyint=10:min-keyint=10:scenecut=0:pools=1:frame-threads=1:log-level=error",
            "-tag:v",
            "hvc1",
        ],
    )
}

/// `key=value|key=value` lines of `ffprobe -of compact=p=0`.
fn compact(text: &str) -> Vec<Vec<(String, String)>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split('|')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn field<'a>(row: &'a [(String, String)], key: &str) -> Option<&'a str> {
    row.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[derive(Clone, Debug)]
pub struct StreamInfo {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// (num, den)
    pub time_base: (i64, i64),
}

pub fn stream_info(path: &Path) -> Result<StreamInfo> {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,time_base",
            "-of",
            "compact=p=0",
            path.to_str().unwrap(),
        ],
    )?;
    let rows = compact(&String::from_utf8_lossy(&out));
    let row = rows.first().context("no video stream")?;
    let tb = field(row, "time_base").context("time_base")?;
    let (num, den) = tb.split_once('/').context("time_base")?;
    Ok(StreamInfo {
        codec: field(row, "codec_name").unwrap_or("").to_string(),
        width: field(row, "width").context("width")?.parse()?,
        height: field(row, "height").context("height")?.parse()?,
        time_base: (num.parse()?, den.parse()?),
    })
}

/// One packet as ffprobe sees it, times in 90 kHz ticks.
#[derive(Clone, Debug)]
pub struct Packet {
    pub pts: i64,
    pub dts: Option<i64>,
    pub duration: Option<i64>,
    pub size: usize,
    pub key: bool,
}

fn to_ticks(v: i64, tb: (i64, i64)) -> i64 {
    let n = i128::from(v) * i128::from(TICKS) * i128::from(tb.0);
    let d = i128::from(tb.1);
    ((2 * n + d).div_euclid(2 * d)) as i64
}

/// The video packets of a file in file (decode) order.
pub fn packets(path: &Path) -> Result<Vec<Packet>> {
    let info = stream_info(path)?;
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts,dts,duration,size,flags",
            "-of",
            "compact=p=0",
            path.to_str().unwrap(),
        ],
    )?;
    let tb = info.time_base;
    let num = |row: &[(String, String)], k: &str| {
        field(row, k)
            .and_then(|v| v.parse::<i64>().ok())
            .map(|v| to_ticks(v, tb))
    };
    compact(&String::from_utf8_lossy(&out))
        .iter()
        .map(|row| {
            Ok(Packet {
                pts: num(row, "pts").context("packet without pts")?,
                dts: num(row, "dts"),
                duration: num(row, "duration"),
                size: field(row, "size").context("size")?.parse()?,
                key: field(row, "flags").unwrap_or("").contains('K'),
            })
        })
        .collect()
}

/// A file's video as the samples ingest would yield: Annex B access units
/// (`*_mp4toannexb` puts the parameter sets before every key frame) with
/// ffprobe's PTS and key flags.
pub fn read_samples(path: &Path) -> Result<Vec<Sample>> {
    let info = stream_info(path)?;
    let (codec, format) = match info.codec.as_str() {
        "h264" => (VideoCodec::H264, "h264"),
        "hevc" => (VideoCodec::H265, "hevc"),
        other => bail!("codec {other}"),
    };
    let packets = packets(path)?;
    let bsf = format!("{format}_mp4toannexb");
    let stream = run(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-map",
            "0:v:0",
            "-c:v",
            "copy",
            "-bsf:v",
            &bsf,
            "-f",
            format,
            "-",
        ],
    )?;
    let units = split_access_units(codec, &stream);
    ensure!(
        units.len() == packets.len(),
        "{} access units, {} packets",
        units.len(),
        packets.len()
    );
    Ok(units
        .into_iter()
        .zip(packets)
        .map(|(unit, p)| Sample::new(codec, unit, p.key, p.pts))
        .collect())
}

/// Cuts a raw Annex B stream into access units (H.264 7.4.1.2.3, H.265
/// 7.4.2.4.4): a unit starts at a delimiter, parameter set, SEI or the
/// first slice of a picture that follows a slice. Written here, apart from
/// the crate's own NAL handling, so the tests do not check the crate
/// against itself.
pub fn split_access_units(codec: VideoCodec, stream: &[u8]) -> Vec<Vec<u8>> {
    // (start of the start code, start of the NAL unit)
    let mut nals = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            let code = if i > 0 && stream[i - 1] == 0 {
                i - 1
            } else {
                i
            };
            nals.push((code, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut starts = Vec::new();
    let mut has_slice = false;
    for &(code, at) in &nals {
        let Some(&b0) = stream.get(at) else { continue };
        let (is_slice, first_in_pic, opens_unit) = match codec {
            VideoCodec::H264 => {
                let t = b0 & 0x1f;
                let first = stream.get(at + 1).is_some_and(|b| b & 0x80 != 0);
                ((1..=5).contains(&t), first, matches!(t, 6..=9 | 14..=18))
            }
            VideoCodec::H265 => {
                let t = (b0 >> 1) & 0x3f;
                let first = stream.get(at + 2).is_some_and(|b| b & 0x80 != 0);
                (
                    t <= 31,
                    first,
                    matches!(t, 32..=35 | 39 | 41..=44 | 48..=55),
                )
            }
        };
        if starts.is_empty() || (has_slice && (opens_unit || (is_slice && first_in_pic))) {
            starts.push(code);
            has_slice = false;
        }
        has_slice |= is_slice;
    }
    let mut units = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let e = starts.get(k + 1).copied().unwrap_or(stream.len());
        units.push(stream[s..e].to_vec());
    }
    units
}

/// Top-level box types of an ISO BMFF file, in order.
pub fn top_level_boxes(data: &[u8]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        ensure!(at + 8 <= data.len(), "truncated box header at {at}");
        let mut size = u32::from_be_bytes(data[at..at + 4].try_into()?) as u64;
        let kind = String::from_utf8_lossy(&data[at + 4..at + 8]).to_string();
        if size == 1 {
            size = u64::from_be_bytes(data[at + 8..at + 16].try_into()?);
        }
        ensure!(size >= 8, "box {kind} of size {size}");
        out.push(kind);
        at += size as usize;
    }
    ensure!(at == data.len(), "boxes overrun the file");
    Ok(out)
}

/// Payload of the first box of type `kind` anywhere in `data` (found by
/// its type bytes; good enough for `avcC`/`hvcC` in a small file).
pub fn find_box<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    let at = data.windows(4).position(|w| w == kind)?;
    let size = u32::from_be_bytes(data.get(at - 4..at)?.try_into().ok()?) as usize;
    data.get(at + 4..at - 4 + size)
}

/// Decodes the whole file with ffmpeg: its error output must be empty;
/// returns the number of frames ffprobe decodes.
pub fn decode_check(path: &Path) -> Result<u64> {
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && stderr.trim().is_empty(),
        "ffmpeg decoding {} said: {stderr}",
        path.display()
    );
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "compact=p=0",
            path.to_str().unwrap(),
        ],
    )?;
    let rows = compact(&String::from_utf8_lossy(&out));
    let n = rows
        .first()
        .and_then(|r| field(r, "nb_read_frames"))
        .context("nb_read_frames")?;
    Ok(n.parse()?)
}

/// The container's duration in seconds (ffprobe `format=duration`).
pub fn format_duration(path: &Path) -> Result<f64> {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "compact=p=0",
            path.to_str().unwrap(),
        ],
    )?;
    let rows = compact(&String::from_utf8_lossy(&out));
    Ok(rows
        .first()
        .and_then(|r| field(r, "duration"))
        .context("duration")?
        .parse()?)
}

/// Samples `from..` up to (not including) the key frame that starts GOP
/// number `gops` after `from` (which must be a key frame).
pub fn gops(samples: &[Sample], from: usize, gops: usize) -> &[Sample] {
    assert!(samples[from].is_key);
    let mut seen = 0;
    for (i, s) in samples.iter().enumerate().skip(from + 1) {
        if s.is_key {
            seen += 1;
            if seen == gops {
                return &samples[from..i];
            }
        }
    }
    &samples[from..]
}

/// Index of the n-th key frame (0-based).
pub fn nth_key(samples: &[Sample], n: usize) -> usize {
    samples
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_key)
        .nth(n)
        .map(|(i, _)| i)
        .expect("not that many key frames")
}

/// The children of a box's payload: (type, payload).
pub fn children(data: &[u8]) -> Result<Vec<([u8; 4], &[u8])>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        ensure!(at + 8 <= data.len(), "truncated box header");
        let size = u32::from_be_bytes(data[at..at + 4].try_into()?) as usize;
        ensure!(size >= 8 && at + size <= data.len(), "bad box size {size}");
        out.push((data[at + 4..at + 8].try_into()?, &data[at + 8..at + size]));
        at += size;
    }
    Ok(out)
}

/// One `trun` sample: (duration, size, flags, composition offset).
pub type TrunSample = (u32, u32, u32, i32);

/// A media segment read by the spec (ISO/IEC 14496-12 8.8): its `trun`
/// samples, after checking that `data_offset` points at the `mdat` payload
/// and that the sizes fill it exactly.
pub fn read_fragment(segment: &[u8]) -> Result<Vec<TrunSample>> {
    let top = children(segment)?;
    ensure!(top.len() == 2 && &top[0].0 == b"moof" && &top[1].0 == b"mdat");
    let moof_size = top[0].1.len() + 8;
    let traf = children(top[0].1)?
        .into_iter()
        .find(|(t, _)| t == b"traf")
        .context("no traf")?
        .1;
    let trun = children(traf)?
        .into_iter()
        .find(|(t, _)| t == b"trun")
        .context("no trun")?
        .1;
    let be = |at: usize| u32::from_be_bytes(trun[at..at + 4].try_into().unwrap());
    let (version, flags) = (trun[0], be(0) & 0xff_ffff);
    ensure!(
        version == 1 && flags == 0xf01,
        "trun version {version} flags {flags:x}"
    );
    let count = be(4) as usize;
    let data_offset = be(8) as usize;
    ensure!(data_offset == moof_size + 8, "data_offset {data_offset}");
    ensure!(trun.len() == 12 + 16 * count);
    let samples: Vec<TrunSample> = (0..count)
        .map(|i| {
            let at = 12 + 16 * i;
            (be(at), be(at + 4), be(at + 8), be(at + 12) as i32)
        })
        .collect();
    let sizes: usize = samples.iter().map(|s| s.1 as usize).sum();
    ensure!(
        sizes == top[1].1.len(),
        "sample sizes {sizes}, mdat {}",
        top[1].1.len()
    );
    Ok(samples)
}

/// Decode times as a reordering decoder needs them for a steady stream:
/// the i-th DTS is the i-th smallest PTS, less one constant (the reorder
/// delay).
pub fn check_dts_follow_sorted_pts(packets: &[Packet]) -> Result<()> {
    let mut pts: Vec<i64> = packets.iter().map(|p| p.pts).collect();
    pts.sort_unstable();
    let shift: Vec<i64> = packets
        .iter()
        .zip(&pts)
        .map(|(p, sorted)| sorted - p.dts.unwrap_or(i64::MIN))
        .collect();
    ensure!(
        shift.windows(2).all(|w| w[0] == w[1]),
        "DTS do not follow the sorted PTS: {:?}",
        &shift[..shift.len().min(20)]
    );
    Ok(())
}
