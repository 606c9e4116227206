//! The demuxer against ffmpeg's own MPEG-PS code, both ways: ffprobe reads
//! the PS bytes our muxer writes and must agree with our demuxer on codec,
//! frame count, key frames and time stamps; and our demuxer reads what
//! ffmpeg's PS muxers write (MPEG-2 `vob` with 2 kB packs, MPEG-1 `mpeg`,
//! no GB-style PSM) and must give back the clip's access units.

use crate::common::*;
use std::path::Path;
use std::process::Command;
use xueliang_core::VideoCodec;
use xueliang_gb28181::media::testing::MuxOptions;
use xueliang_gb28181::media::Counter;

/// Per video packet: PTS (90 kHz) and key flag, with the codec name.
fn ffprobe_packets(path: &Path) -> (String, Vec<(i64, bool)>) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-f", "mpeg", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=codec_name:packet=pts,flags"])
        .args(["-of", "compact=p=1:nk=0"])
        .arg(path)
        .output()
        .expect("running ffprobe");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut codec = String::new();
    let mut packets = Vec::new();
    for line in text.lines() {
        let field = |name: &str| {
            line.split('|')
                .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or("")
        };
        if line.starts_with("stream") {
            codec = field("codec_name").to_string();
        } else if line.starts_with("packet") {
            let pts = field("pts")
                .parse()
                .expect("ffprobe gives every packet a PTS");
            packets.push((pts, field("flags").starts_with('K')));
        }
    }
    (codec, packets)
}

#[test]
fn ffprobe_reads_the_same_frames_from_our_ps() {
    for codec in [VideoCodec::H264, VideoCodec::H265] {
        let footage = footage(codec);
        let options = MuxOptions {
            audio: true,
            ..MuxOptions::hikvision(codec)
        };
        let ps = concat(&mux(footage, options));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.ps");
        std::fs::write(&path, &ps).unwrap();
        let (probe_codec, packets) = ffprobe_packets(&path);

        let (units, _) = demux_chunked(&ps, &[1400]);
        let ours = match units[0].codec {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "hevc",
        };
        assert_eq!(probe_codec, ours, "{codec:?}");
        assert_eq!(packets.len(), units.len(), "{codec:?}: frame count");
        let first = packets[0].0;
        for (i, (unit, (pts, key))) in units.iter().zip(&packets).enumerate() {
            assert_eq!(unit.is_key, *key, "{codec:?} frame {i}: key flag");
            let probe_time = (pts - first) as f64 / 90_000.0;
            assert!(
                (unit.stream_time - probe_time).abs() < 1e-9,
                "{codec:?} frame {i}: {} vs ffprobe {probe_time}",
                unit.stream_time
            );
        }
    }
}

#[test]
fn our_demuxer_reads_what_ffmpeg_muxes() {
    for codec in [VideoCodec::H264, VideoCodec::H265] {
        let footage = footage(codec);
        let name = match codec {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "hevc",
        };
        for format in ["vob", "mpeg"] {
            let out = Command::new("ffmpeg")
                .args(["-v", "error", "-nostdin", "-i"])
                .arg(fixture(codec))
                .args(["-t", &SECONDS.to_string(), "-map", "0:v:0", "-c:v", "copy"])
                .args(["-bsf:v", &format!("{name}_mp4toannexb"), "-f", format, "-"])
                .output()
                .expect("running ffmpeg");
            assert!(out.status.success(), "ffmpeg -f {format}");
            let ps = out.stdout;
            let (units, demux) = demux_chunked(&ps, &[1400, 7, 3000]);
            assert_eq!(units.len(), footage.clip.units.len(), "{codec:?} {format}");
            for (i, unit) in units.iter().enumerate() {
                assert_eq!(unit.codec, codec, "{codec:?} {format} unit {i}");
                assert!(
                    unit.data == footage.clip.units[i],
                    "{codec:?} {format} unit {i} differs"
                );
                assert_eq!(unit.is_key, footage.keys[i], "{codec:?} {format} unit {i}");
            }
            assert_eq!(
                demux.counters().get(Counter::PsErrors),
                0,
                "{codec:?} {format}"
            );
        }
    }
}
