//! Reading back the MP4 files [`crate::write_mp4`] writes (event clips
//! played back to a superior platform, GB/T 28181): the first video
//! track's samples as Annex B access units with the parameter sets of its
//! `avcC`/`hvcC` in-band before every key frame, as ingest yields them.
//! Nothing is decoded.
//!
//! It reads what a plain progressive MP4 has (`moov` anywhere at the top
//! level; `stts`, `ctts`, `stss`, `stsz`, `stsc`, `stco`/`co64`); fragmented
//! files and edit lists beyond "start later" are not needed for our clips.
//! Every length and offset is checked: a damaged file is a [`DemuxError`],
//! never a panic.

use crate::{Sample, TIMESCALE};
use xueliang_core::VideoCodec;

/// Why an MP4 cannot be read back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DemuxError {
    #[error("no {0} box")]
    Missing(&'static str),
    #[error("box {0} is truncated or inconsistent")]
    Bad(&'static str),
    #[error("the video track is {0}, not H.264 or H.265")]
    Codec(String),
}

/// The samples of the first H.264/H.265 track of `file`, in decode order,
/// PTS in 90 kHz ticks from the first presented frame.
pub fn read_mp4(file: &[u8]) -> Result<Vec<Sample>, DemuxError> {
    let moov = child(file, b"moov").ok_or(DemuxError::Missing("moov"))?;
    let mut found = None;
    for trak in children(moov).filter(|(kind, _)| kind == b"trak") {
        let stbl = path(trak.1, &[b"mdia", b"minf", b"stbl"]);
        let entry = stbl.and_then(|s| child(s, b"stsd")).and_then(sample_entry);
        if let (Some(stbl), Some(entry)) = (stbl, entry) {
            found = Some((trak.1, stbl, entry));
            break;
        }
    }
    let (trak, stbl, (codec, header)) = found.ok_or(DemuxError::Missing("video trak"))?;
    let mdhd = path(trak, &[b"mdia", b"mdhd"]).ok_or(DemuxError::Missing("mdhd"))?;
    let timescale = match mdhd.first() {
        Some(1) => be32(mdhd, 20),
        _ => be32(mdhd, 12),
    }
    .filter(|t| *t > 0)
    .ok_or(DemuxError::Bad("mdhd"))?;

    let sizes = sizes(stbl)?;
    let offsets = sample_offsets(stbl, &sizes)?;
    let durations = expand(table(stbl, "stts", 8)?, sizes.len(), "stts")?;
    let composition = match child(stbl, b"ctts") {
        Some(_) => expand(table(stbl, "ctts", 8)?, sizes.len(), "ctts")?,
        None => vec![0; sizes.len()],
    };
    let keys: Option<Vec<u32>> = match child(stbl, b"stss") {
        Some(_) => Some(
            table(stbl, "stss", 4)?
                .iter()
                .filter_map(|e| be32(e, 0))
                .collect(),
        ),
        None => None,
    };

    let mut dts = 0i64;
    let mut samples = Vec::with_capacity(sizes.len());
    for i in 0..sizes.len() {
        let (at, size) = (offsets[i], sizes[i]);
        let data = at
            .checked_add(size)
            .and_then(|end| file.get(at..end))
            .ok_or(DemuxError::Bad("mdat (sample beyond the file)"))?;
        // ctts version 0 offsets are unsigned; version 1 signed: read as i32.
        let pts = dts + i64::from(composition[i] as i32);
        let is_key = keys
            .as_ref()
            .is_none_or(|k| k.binary_search(&(i as u32 + 1)).is_ok());
        let mut annexb = Vec::with_capacity(data.len() + 64);
        if is_key {
            annexb.extend_from_slice(&header.parameter_sets);
        }
        to_annexb(data, header.length_size, &mut annexb)?;
        samples.push(Sample::new(codec, annexb, is_key, pts));
        dts += i64::from(durations[i]);
    }
    let first = samples.iter().map(|s| s.pts).min().unwrap_or(0);
    for s in &mut samples {
        let ticks = i128::from(s.pts - first) * i128::from(TIMESCALE) / i128::from(timescale);
        s.pts = ticks as i64;
    }
    Ok(samples)
}

/// What a sample entry says: parameter sets (Annex B) and NAL length size.
struct Header {
    parameter_sets: Vec<u8>,
    length_size: usize,
}

const START: [u8; 4] = [0, 0, 0, 1];

/// Length-prefixed NAL units to start-code ones.
fn to_annexb(mut data: &[u8], length_size: usize, out: &mut Vec<u8>) -> Result<(), DemuxError> {
    while !data.is_empty() {
        let len = data
            .get(..length_size)
            .ok_or(DemuxError::Bad("sample (NAL length)"))?
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b));
        let nal = data
            .get(length_size..length_size + len)
            .ok_or(DemuxError::Bad("sample (NAL beyond the sample)"))?;
        out.extend_from_slice(&START);
        out.extend_from_slice(nal);
        data = &data[length_size + len..];
    }
    Ok(())
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The boxes in `data`: (type, payload). Stops at the first bad header.
fn children(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let size = be32(data, 0)? as u64;
        let kind: [u8; 4] = data.get(4..8)?.try_into().ok()?;
        let (header, size) = match size {
            1 => (16, be64(data, 8)?),
            0 => (8, data.len() as u64),
            n => (8, n),
        };
        let size = usize::try_from(size).ok()?;
        let payload = data.get(header..size)?;
        data = &data[size..];
        Some((kind, payload))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(data).find(|(k, _)| k == kind).map(|(_, p)| p)
}

fn path<'a>(mut data: &'a [u8], kinds: &[&[u8; 4]]) -> Option<&'a [u8]> {
    for kind in kinds {
        data = child(data, kind)?;
    }
    Some(data)
}

/// A full box's entries of `width` bytes (after version/flags and count).
fn table<'a>(
    stbl: &'a [u8],
    name: &'static str,
    width: usize,
) -> Result<Vec<&'a [u8]>, DemuxError> {
    let kind: &[u8; 4] = name
        .as_bytes()
        .try_into()
        .map_err(|_| DemuxError::Bad(name))?;
    let body = child(stbl, kind).ok_or(DemuxError::Missing(name))?;
    let count = be32(body, 4).ok_or(DemuxError::Bad(name))? as usize;
    let entries = body.get(8..).ok_or(DemuxError::Bad(name))?;
    if entries.len() / width < count {
        return Err(DemuxError::Bad(name));
    }
    Ok(entries.chunks_exact(width).take(count).collect())
}

/// (count, value) runs expanded to one value per sample.
fn expand(runs: Vec<&[u8]>, samples: usize, what: &'static str) -> Result<Vec<u32>, DemuxError> {
    let mut out = Vec::with_capacity(samples);
    for run in runs {
        let (count, value) = (be32(run, 0).unwrap_or(0), be32(run, 4).unwrap_or(0));
        let count = (count as usize).min(samples - out.len());
        out.extend(std::iter::repeat_n(value, count));
    }
    if out.len() != samples {
        return Err(DemuxError::Bad(what));
    }
    Ok(out)
}

fn sizes(stbl: &[u8]) -> Result<Vec<usize>, DemuxError> {
    let stsz = child(stbl, b"stsz").ok_or(DemuxError::Missing("stsz"))?;
    let bad = || DemuxError::Bad("stsz");
    let fixed = be32(stsz, 4).ok_or_else(bad)? as usize;
    let count = be32(stsz, 8).ok_or_else(bad)? as usize;
    if fixed != 0 {
        // One size for all: a count beyond any clip is a damaged box.
        if count > 1 << 24 {
            return Err(bad());
        }
        return Ok(vec![fixed; count]);
    }
    let table = stsz.get(12..).ok_or_else(bad)?;
    if table.len() / 4 < count {
        return Err(bad());
    }
    Ok(table
        .chunks_exact(4)
        .take(count)
        .map(|e| be32(e, 0).unwrap_or(0) as usize)
        .collect())
}

/// Each sample's offset in the file, from the chunk offsets and `stsc`.
fn sample_offsets(stbl: &[u8], sizes: &[usize]) -> Result<Vec<usize>, DemuxError> {
    let samples = sizes.len();
    let chunks: Vec<u64> = if child(stbl, b"co64").is_some() {
        table(stbl, "co64", 8)?
            .iter()
            .filter_map(|e| be64(e, 0))
            .collect()
    } else {
        table(stbl, "stco", 4)?
            .iter()
            .filter_map(|e| be32(e, 0).map(u64::from))
            .collect()
    };
    let stsc: Vec<(usize, usize)> = table(stbl, "stsc", 12)?
        .iter()
        .filter_map(|e| Some((be32(e, 0)? as usize, be32(e, 4)? as usize)))
        .collect();
    let mut offsets = Vec::with_capacity(samples);
    for (n, &chunk) in chunks.iter().enumerate() {
        let per_chunk = stsc
            .iter()
            .rev()
            .find(|(first, _)| *first <= n + 1)
            .map_or(0, |(_, count)| *count);
        let mut at = usize::try_from(chunk).map_err(|_| DemuxError::Bad("stco"))?;
        for _ in 0..per_chunk {
            if offsets.len() == samples {
                break;
            }
            offsets.push(at);
            at = at.saturating_add(sizes[offsets.len() - 1]);
        }
    }
    if offsets.len() != samples {
        return Err(DemuxError::Bad("stsc"));
    }
    Ok(offsets)
}

/// The codec and header of the first sample entry, if it is H.264/H.265.
fn sample_entry(stsd: &[u8]) -> Option<(VideoCodec, Header)> {
    // version/flags, entry count, then the first entry as a box.
    let (kind, entry) = children(stsd.get(8..)?).next()?;
    // The visual sample entry's fixed part is 78 bytes; its boxes follow.
    let boxes = entry.get(78..)?;
    match &kind {
        b"avc1" | b"avc3" => avcc(child(boxes, b"avcC")?).map(|h| (VideoCodec::H264, h)),
        b"hvc1" | b"hev1" => hvcc(child(boxes, b"hvcC")?).map(|h| (VideoCodec::H265, h)),
        _ => None,
    }
}

/// Appends `count` NAL units of 16-bit lengths at `at` to `out` (start
/// codes before each); returns where reading ended.
fn nal_array(b: &[u8], mut at: usize, count: usize, out: &mut Vec<u8>) -> Option<usize> {
    for _ in 0..count {
        let len = be16(b, at)?;
        out.extend_from_slice(&START);
        out.extend_from_slice(b.get(at + 2..at + 2 + len)?);
        at += 2 + len;
    }
    Some(at)
}

fn avcc(b: &[u8]) -> Option<Header> {
    let length_size = usize::from(*b.get(4)? & 3) + 1;
    let mut sets = Vec::new();
    let sps = usize::from(*b.get(5)? & 0x1f);
    let at = nal_array(b, 6, sps, &mut sets)?;
    let pps = usize::from(*b.get(at)?);
    nal_array(b, at + 1, pps, &mut sets)?;
    Some(Header {
        parameter_sets: sets,
        length_size,
    })
}

fn hvcc(b: &[u8]) -> Option<Header> {
    let length_size = usize::from(*b.get(21)? & 3) + 1;
    let arrays = usize::from(*b.get(22)?);
    let mut sets = Vec::new();
    let mut at = 23;
    for _ in 0..arrays {
        let count = be16(b, at + 1)?;
        at = nal_array(b, at + 3, count, &mut sets)?;
    }
    Some(Header {
        parameter_sets: sets,
        length_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(read_mp4(b""), Err(DemuxError::Missing("moov")));
        assert!(read_mp4(&[0, 0, 0, 9, b'm', b'o', b'o', b'v', 1]).is_err());
        let mut boxy = vec![0, 0, 0, 16, b'm', b'o', b'o', b'v'];
        boxy.extend_from_slice(&[0, 0, 0, 8, b't', b'r', b'a', b'k']);
        assert!(read_mp4(&boxy).is_err());
    }
}
