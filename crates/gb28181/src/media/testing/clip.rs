//! A clip's video as access units, read with the `ffmpeg` and `ffprobe`
//! commands (blocking: for tests and tools, never for async code).

use crate::media::nal::{self, NalKind};
use std::path::Path;
use std::process::Command;
use xueliang_core::VideoCodec;

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("running {tool}: {source}")]
    Spawn {
        tool: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} failed ({status}): {stderr}")]
    Failed {
        tool: &'static str,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("the clip's video is {0}, not H.264 or H.265")]
    Unsupported(String),
    #[error("the clip's frame rate {0:?} is not usable")]
    FrameRate(String),
    #[error("the clip has no video access units")]
    Empty,
}

/// A clip's video stream as Annex B access units, parameter sets in band.
#[derive(Clone, Debug)]
pub struct Clip {
    pub codec: VideoCodec,
    pub fps: f64,
    pub units: Vec<Vec<u8>>,
}

impl Clip {
    /// The first video stream of `path`, the first `seconds` of it if given.
    pub fn from_file(path: &Path, seconds: Option<f64>) -> Result<Clip, ClipError> {
        let probe = run(
            "ffprobe",
            Command::new("ffprobe")
                .args(["-v", "error", "-select_streams", "v:0"])
                .args(["-show_entries", "stream=codec_name,avg_frame_rate"])
                .args(["-of", "default=noprint_wrappers=1"])
                .arg(path),
        )?;
        let probe = String::from_utf8_lossy(&probe);
        let field = |name: &str| {
            probe
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or("")
                .to_string()
        };
        let (codec, format) = match field("codec_name").as_str() {
            "h264" => (VideoCodec::H264, "h264"),
            "hevc" => (VideoCodec::H265, "hevc"),
            other => return Err(ClipError::Unsupported(other.to_string())),
        };
        let rate = field("avg_frame_rate");
        let fps = parse_rate(&rate).ok_or(ClipError::FrameRate(rate))?;
        let mut ffmpeg = Command::new("ffmpeg");
        ffmpeg.args(["-v", "error", "-nostdin", "-i"]).arg(path);
        if let Some(seconds) = seconds {
            ffmpeg.args(["-t", &format!("{seconds}")]);
        }
        ffmpeg.args(["-map", "0:v:0", "-c:v", "copy"]).args([
            "-bsf:v",
            &format!("{format}_mp4toannexb"),
            "-f",
            format,
            "-",
        ]);
        let stream = run("ffmpeg", &mut ffmpeg)?;
        let units = split_access_units(codec, &stream);
        if units.is_empty() {
            return Err(ClipError::Empty);
        }
        Ok(Clip { codec, fps, units })
    }

    /// Whether unit `index` is a key frame (IDR/IRAP slice, or parameter
    /// sets): where a device puts the PSM.
    pub fn is_key(&self, index: usize) -> bool {
        self.units.get(index).is_some_and(|unit| {
            nal::nal_units(unit).any(|nal| match NalKind::of(self.codec, nal) {
                NalKind::Slice { random_access, .. } => random_access,
                NalKind::Param(_) => true,
                _ => false,
            })
        })
    }

    /// The 90 kHz PTS of frame `index` at the clip's frame rate.
    pub fn pts(&self, index: usize) -> u64 {
        (index as f64 * 90_000.0 / self.fps).round() as u64
    }
}

fn run(tool: &'static str, command: &mut Command) -> Result<Vec<u8>, ClipError> {
    let output = command
        .output()
        .map_err(|source| ClipError::Spawn { tool, source })?;
    if !output.status.success() {
        return Err(ClipError::Failed {
            tool,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(output.stdout)
}

fn parse_rate(rate: &str) -> Option<f64> {
    let (num, den) = rate.split_once('/').unwrap_or((rate, "1"));
    let fps = num.trim().parse::<f64>().ok()? / den.trim().parse::<f64>().ok()?;
    (fps.is_finite() && fps > 0.0).then_some(fps)
}

/// A raw Annex B stream cut into access units: a unit ends before a NAL
/// unit that starts a new one (first slice of a picture, parameter set,
/// delimiter, SEI) once it has a slice. Units concatenate back to `stream`
/// (bytes before the first start code aside).
pub fn split_access_units(codec: VideoCodec, stream: &[u8]) -> Vec<Vec<u8>> {
    let mut units = Vec::new();
    let mut unit_start = None;
    let mut has_slice = false;
    let mut from = 0;
    while let Some(at) = nal::find_start_code(stream, from) {
        from = at + 3;
        let cut = if at > 0 && stream[at - 1] == 0 {
            at - 1
        } else {
            at
        };
        let Some(header) = stream.get(at + 3..).filter(|h| !h.is_empty()) else {
            break;
        };
        let kind = NalKind::of(codec, header);
        match unit_start {
            None => unit_start = Some(cut),
            Some(start) if has_slice && kind.starts_access_unit() => {
                units.push(stream[start..cut].to_vec());
                unit_start = Some(cut);
                has_slice = false;
            }
            Some(_) => {}
        }
        has_slice |= matches!(kind, NalKind::Slice { .. });
    }
    if let Some(start) = unit_start {
        units.push(stream[start..].to_vec());
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_cut_at_picture_starts() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 1, 0x65, 0x88, 0, 0, 1, 0x65, 0x08, 0,
            0, 0, 1, 0x41, 0x9a, 0, 0, 1, 0x41, 0x1a, 0, 0, 0, 1, 0x06, 5, 0, 0, 1, 0x41, 0x9a,
        ];
        let units = split_access_units(VideoCodec::H264, &stream);
        assert_eq!(units.len(), 3);
        assert_eq!(units.concat(), stream);
        assert_eq!(units[1], [0, 0, 0, 1, 0x41, 0x9a, 0, 0, 1, 0x41, 0x1a]);
        assert_eq!(parse_rate("10/1"), Some(10.0));
        assert_eq!(parse_rate("0/0"), None);
    }
}
