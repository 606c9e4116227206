//! The decoder on real H.264 (the walkway footage, 768x576, 10 fps, 2 s GOP):
//! an idle stream decodes key frames only after the idle delay (for the
//! picture checks, not the model), a busy one
//! never goes idle, and motion onset goes to the detector at once after
//! decoding the kept packets. Clips are made with the `ffmpeg` CLI as raw
//! Annex B (what retina hands the decoder), then fed packet by packet.

use crate::activity::ActivitySettings;
use crate::test_clips::{busy_clip, ffmpeg, packets, work_dir, Decoder, FPS, GOP};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use xueliang_core::CameraStats;

/// The footage's first frame held for `still` frames (with light sensor
/// noise, as a real still scene has), then the footage from its second frame
/// on; `frames` frames in all, encoded like the fixture (2 s GOP, no
/// B-frames, no scene-cut key frames: a camera's fixed GOP).
fn still_then_moving(name: &str, still: usize, frames: usize) -> PathBuf {
    let out = work_dir(name).join("clip.h264");
    let vf = format!(
        "loop=loop={}:size=1:start=0,setpts=N/({FPS}*TB),noise=alls=3:allf=t",
        still - 1
    );
    let frames = frames.to_string();
    ffmpeg(
        &[
            "-vf",
            &vf,
            "-frames:v",
            &frames,
            "-an",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-x264-params",
            "keyint=20:min-keyint=20:scenecut=0:bframes=0:open-gop=0:repeat-headers=1",
            "-f",
            "h264",
        ],
        &out,
    );
    out
}

#[test]
fn an_idle_stream_decodes_only_key_frames_after_the_idle_delay() {
    // A still scene with sensor noise: its P-frames (~1-2 KB, 2-3 % of a key
    // frame) read as motion against the first guess of the quiet level, which
    // then creeps up until the noise is learned as quiet.
    let packets = packets(&still_then_moving("idle", 1500, 1500));
    let n = packets.len();
    let mut d = Decoder::new(None);
    let mut idle_at = None;
    let mut pictures = 0;
    for (i, p) in packets.into_iter().enumerate() {
        let key = p.is_key;
        let before = d.decoded();
        let offered = d.push(p);
        match idle_at {
            None if d.stats.idle() => idle_at = Some(i),
            None => assert_eq!(d.decoded(), before + 1, "frame {i}: busy decodes all"),
            Some(_) => {
                assert!(d.stats.idle(), "frame {i}: busy again");
                // Idle: a key frame is decoded and handed on, nothing else...
                assert_eq!(d.decoded(), before + key as u64, "frame {i}");
                assert_eq!(offered.len(), key as usize, "frame {i}");
                // ...to the picture checks only, not to the model.
                for (_, model_input) in offered {
                    assert!(!model_input, "frame {i}");
                    pictures += 1;
                }
            }
        }
    }
    assert!(pictures >= 20, "{pictures} key frames while idle");
    let idle_at = idle_at.expect("never went idle");
    eprintln!("noisy still scene: idle from {:.1} s", idle_at as f64 / FPS);
    assert!(
        idle_at as f64 >= ActivitySettings::default().idle_after_s * FPS,
        "idle at frame {idle_at}"
    );
    assert!(idle_at <= 1000, "idle only at frame {idle_at}");
    // Decoded: everything before going idle, then the key frames only.
    let keys_after = (idle_at + 1..n).filter(|i| i % GOP == 0).count() as u64;
    let decoded_at_idle = idle_at as u64 + (idle_at % GOP == 0) as u64;
    assert_eq!(d.decoded(), decoded_at_idle + keys_after);
    // Each key frame after the first idle one dropped what was kept since.
    let skipped = CameraStats::get(&d.stats.frames_skipped_idle);
    assert!(
        skipped as usize >= (keys_after as usize - 1) * (GOP - 1),
        "{skipped}"
    );
}

#[test]
fn a_busy_stream_never_goes_idle() {
    let packets = packets(&busy_clip("busy"));
    let n = packets.len() as u64;
    let mut d = Decoder::new(None);
    let mut offered = 0;
    for p in packets {
        let frames = d.push(p);
        assert!(frames.iter().all(|(_, model_input)| *model_input));
        offered += frames.len();
        assert!(!d.stats.idle());
    }
    assert_eq!(d.decoded(), n);
    assert_eq!(CameraStats::get(&d.stats.frames_skipped_idle), 0);
    // Every other frame at 10 fps goes to a 5 det/s detector.
    assert!(
        (offered as i64 - n as i64 / 2).abs() <= 1,
        "{offered} of {n}"
    );
}

#[test]
fn motion_onset_is_detected_at_once_after_catching_up() {
    // Still for 21.3 s, then the pedestrians move: the onset (frame 213) is
    // 13 frames after a key frame.
    let onset = 213;
    let packets = packets(&still_then_moving("onset", onset, 400));
    let mut d = Decoder::new(None);
    let mut first_after = None;
    let mut catch_up = Duration::ZERO;
    for (i, p) in packets.into_iter().enumerate() {
        let t = p.stream_time;
        let was_idle = d.stats.idle();
        let before = d.decoded();
        let started = Instant::now();
        let offered = d.push(p);
        if was_idle && !d.stats.idle() {
            catch_up = started.elapsed();
            assert_eq!(i, onset, "woke at frame {i}");
            // The kept packets since the key frame at 200, then the onset.
            assert_eq!(d.decoded() - before, (onset - 200) as u64);
        }
        if i == onset - 1 {
            assert!(d.stats.idle(), "idle before the onset");
        }
        if i >= onset && first_after.is_none() {
            first_after = offered.first().map(|f| f.0);
            assert_eq!(
                offered.first().copied(),
                Some((t, true)),
                "frame {i}: the onset frame goes to the detector"
            );
        }
    }
    eprintln!(
        "onset at {:.1} s: first frame offered to the detector at {:.1} s (stream time), \
         catch-up decode of {} packets took {:.1} ms",
        onset as f64 / FPS,
        first_after.unwrap(),
        onset - 200,
        catch_up.as_secs_f64() * 1e3
    );
    assert!(!d.stats.idle(), "busy after the onset");
}
