//! Whole MP4 files for event clips: `ftyp`, `moov`, then `mdat`
//! ("faststart": a player or a Range request for the head gets the index
//! first).

use crate::boxes::BoxWriter;
use crate::timing::{clamp_i32, derive_timing};
use crate::{Frame, MuxError, Sample, TrackConfig, TIMESCALE};
use std::io::Write;

/// What [`write_mp4`] wrote.
#[derive(Clone, Debug)]
pub struct ClipSummary {
    pub config: TrackConfig,
    /// Samples in the file.
    pub samples: usize,
    /// Samples left out: ones that did not convert (no start code, nothing
    /// but parameter sets), and leading pictures of an open GOP (presented
    /// before the first key frame, referencing a GOP not in the clip).
    pub skipped: usize,
    /// PTS of the first presented frame, 90 kHz ticks, on the input
    /// timeline.
    pub first_pts: i64,
    /// Presentation duration, 90 kHz ticks: the sum of the sample
    /// durations (from the first presented frame to the end of the last).
    pub duration: u64,
    /// Bytes written.
    pub file_bytes: u64,
}

impl ClipSummary {
    pub fn duration_seconds(&self) -> f64 {
        self.duration as f64 / f64::from(TIMESCALE)
    }
}

/// One sample's place in the tables.
struct Row {
    size: u32,
    is_key: bool,
    duration: u32,
    /// Composition offset, never negative here (version 0 `ctts`).
    offset: u32,
}

/// Writes `samples` (decode order, the first a key frame carrying its
/// parameter sets) as one MP4 file with the index before the media.
///
/// Parameter sets are taken out of the samples into the `avcC`/`hvcC`; a
/// later key frame with different sets is an error
/// ([`MuxError::ParametersChanged`]: one file has one sample description;
/// [`crate::PacketRing::clip`] cuts there). Timing: DTS derived from the
/// PTS ([`crate::derive_timing`]), shifted so that every composition
/// offset is positive (`ctts` version 0, readable by every player), with an
/// edit list that starts presentation at the first frame when B-frames
/// delay it.
pub fn write_mp4<W: Write>(samples: &[Sample], mut out: W) -> Result<ClipSummary, MuxError> {
    let first = samples.first().ok_or(MuxError::NoSamples)?;
    if !first.is_key {
        return Err(MuxError::NotKeyFrame { pts: first.pts });
    }
    let codec = first.codec;
    let head = Frame::from_sample(first)?;
    let config = TrackConfig::new(codec, head.parameter_sets.clone())?;
    let mut frames = vec![head];
    let mut skipped = 0;
    let mut seen_second_key = false;
    for (index, sample) in samples.iter().enumerate().skip(1) {
        if sample.codec != codec {
            return Err(MuxError::CodecChanged {
                pts: sample.pts,
                track: codec.as_str(),
                found: sample.codec.as_str(),
            });
        }
        seen_second_key |= sample.is_key;
        if !seen_second_key && sample.pts < first.pts {
            skipped += 1; // leading picture of an open GOP
            continue;
        }
        let Ok(frame) = Frame::from_sample(sample) else {
            skipped += 1;
            continue;
        };
        if frame.is_key && !frame.parameter_sets.is_empty() {
            let sets = frame.parameter_sets.merged_over(config.parameter_sets());
            if &sets != config.parameter_sets() {
                return Err(MuxError::ParametersChanged {
                    index,
                    pts: sample.pts,
                });
            }
        }
        frames.push(frame);
    }

    let pts: Vec<i64> = frames.iter().map(|f| f.pts).collect();
    let timing = derive_timing(&pts, None);
    // Shift DTS down by the largest negative offset so that all offsets
    // are >= 0, and start the decode timeline at 0.
    let shift = timing
        .iter()
        .map(|t| -i64::from(t.composition_offset))
        .max()
        .unwrap_or(0)
        .max(0);
    let base = timing[0].dts;
    let first_pts = pts.iter().copied().min().unwrap_or(first.pts);
    // Composition time of the first presented frame on the file's timeline.
    let media_start = first_pts.saturating_sub(base).saturating_add(shift);
    let mut rows = Vec::with_capacity(frames.len());
    for (frame, t) in frames.iter().zip(&timing) {
        rows.push(Row {
            size: u32::try_from(frame.data.len())
                .map_err(|_| MuxError::SampleTooLarge { pts: frame.pts })?,
            is_key: frame.is_key,
            duration: t.duration,
            offset: (i64::from(t.composition_offset) + shift).clamp(0, i64::from(u32::MAX)) as u32,
        });
    }
    let duration: u64 = rows.iter().map(|r| u64::from(r.duration)).sum();

    // Chunks: one per GOP. Offsets relative to the start of mdat's payload.
    let mut chunks: Vec<(u64, u32)> = Vec::new(); // (offset, samples)
    let mut at = 0u64;
    for row in &rows {
        match chunks.last_mut() {
            Some(chunk) if !row.is_key => chunk.1 += 1,
            _ => chunks.push((at, 1)),
        }
        at += u64::from(row.size);
    }
    let payload = at;

    let mut ftyp = BoxWriter::default();
    let compatible: &[&[u8; 4]] = match codec {
        xueliang_core::VideoCodec::H264 => &[b"isom", b"iso2", b"avc1", b"mp41"],
        xueliang_core::VideoCodec::H265 => &[b"isom", b"iso2", b"mp41"],
    };
    ftyp.ftyp(b"isom", 0x200, compatible);
    let moov_for = |chunk_base: u64, co64: bool| {
        let mut w = BoxWriter::default();
        write_moov(
            &mut w,
            &config,
            &rows,
            &chunks,
            chunk_base,
            co64,
            duration,
            media_start,
        );
        w.buf
    };
    // Table sizes do not depend on offset values, only on stco vs co64.
    let probe = moov_for(0, false);
    let mdat_header = if payload + 8 > u64::from(u32::MAX) {
        16
    } else {
        8
    };
    let end = ftyp.buf.len() as u64 + probe.len() as u64 + mdat_header + payload;
    let co64 = end > u64::from(u32::MAX);
    let moov_len = if co64 {
        moov_for(0, true).len()
    } else {
        probe.len()
    };
    let chunk_base = ftyp.buf.len() as u64 + moov_len as u64 + mdat_header;
    let moov = moov_for(chunk_base, co64);

    out.write_all(&ftyp.buf)?;
    out.write_all(&moov)?;
    if mdat_header == 16 {
        out.write_all(&1u32.to_be_bytes())?;
        out.write_all(b"mdat")?;
        out.write_all(&(payload + 16).to_be_bytes())?;
    } else {
        out.write_all(&((payload + 8) as u32).to_be_bytes())?;
        out.write_all(b"mdat")?;
    }
    for frame in &frames {
        out.write_all(&frame.data)?;
    }
    out.flush()?;
    Ok(ClipSummary {
        config,
        samples: frames.len(),
        skipped,
        first_pts,
        duration,
        file_bytes: chunk_base + payload,
    })
}

#[allow(clippy::too_many_arguments)]
fn write_moov(
    w: &mut BoxWriter,
    config: &TrackConfig,
    rows: &[Row],
    chunks: &[(u64, u32)],
    chunk_base: u64,
    co64: bool,
    duration: u64,
    media_start: i64,
) {
    let moov = w.begin(b"moov");
    w.mvhd(TIMESCALE, duration);
    let trak = w.begin(b"trak");
    w.tkhd(duration, config);
    if media_start > 0 {
        // Present from the first frame's composition time: one edit.
        let edts = w.begin(b"edts");
        let elst = w.begin_full(b"elst", 0, 0);
        w.u32(1);
        w.u32(u32::try_from(duration).unwrap_or(u32::MAX)); // segment_duration
        w.i32(clamp_i32(media_start)); // media_time
        w.u32(0x0001_0000); // media_rate 1.0
        w.end(elst);
        w.end(edts);
    }
    let (minf, mdia) = w.begin_mdia(TIMESCALE, duration);
    let stbl = w.begin(b"stbl");
    w.stsd(config);

    let stts = w.begin_full(b"stts", 0, 0);
    let runs = run_lengths(rows.iter().map(|r| r.duration));
    w.u32(runs.len() as u32);
    for (count, value) in runs {
        w.u32(count);
        w.u32(value);
    }
    w.end(stts);

    if rows.iter().any(|r| r.offset != 0) {
        let ctts = w.begin_full(b"ctts", 0, 0);
        let runs = run_lengths(rows.iter().map(|r| r.offset));
        w.u32(runs.len() as u32);
        for (count, value) in runs {
            w.u32(count);
            w.u32(value);
        }
        w.end(ctts);
    }

    if !rows.iter().all(|r| r.is_key) {
        let stss = w.begin_full(b"stss", 0, 0);
        let keys: Vec<u32> = (1..)
            .zip(rows)
            .filter(|(_, r)| r.is_key)
            .map(|(n, _)| n)
            .collect();
        w.u32(keys.len() as u32);
        for n in keys {
            w.u32(n);
        }
        w.end(stss);
    }

    let stsz = w.begin_full(b"stsz", 0, 0);
    w.u32(0); // sizes differ: a table
    w.u32(rows.len() as u32);
    for row in rows {
        w.u32(row.size);
    }
    w.end(stsz);

    let stsc = w.begin_full(b"stsc", 0, 0);
    let mut entries: Vec<(u32, u32)> = Vec::new(); // (first_chunk, samples_per_chunk)
    for (n, &(_, count)) in (1..).zip(chunks) {
        if entries.last().is_none_or(|&(_, c)| c != count) {
            entries.push((n, count));
        }
    }
    w.u32(entries.len() as u32);
    for (first_chunk, count) in entries {
        w.u32(first_chunk);
        w.u32(count);
        w.u32(1); // sample_description_index
    }
    w.end(stsc);

    if co64 {
        let co = w.begin_full(b"co64", 0, 0);
        w.u32(chunks.len() as u32);
        for &(offset, _) in chunks {
            w.u64(chunk_base + offset);
        }
        w.end(co);
    } else {
        let co = w.begin_full(b"stco", 0, 0);
        w.u32(chunks.len() as u32);
        for &(offset, _) in chunks {
            w.u32((chunk_base + offset) as u32);
        }
        w.end(co);
    }
    w.end(stbl);
    w.end(minf);
    w.end(mdia);
    w.end(trak);
    w.end(moov);
}

/// (count, value) runs.
fn run_lengths(values: impl Iterator<Item = u32>) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for v in values {
        match runs.last_mut() {
            Some((count, value)) if *value == v => *count += 1,
            _ => runs.push((1, v)),
        }
    }
    runs
}
