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

/// How a test clip looks and how its encoder spends bits.
#[derive(Clone, Copy, Debug)]
struct Encoding {
    /// Night: mono, dark, low contrast and noisy (a camera on IR at high gain).
    night: bool,
    /// Constant bitrate (with filler, as `nal-hrd=cbr`): every P-frame about
    /// the same size whatever moves. Else quality-constant VBR (crf 23).
    cbr: bool,
    /// Half the footage's size each way (quicker to encode and decode).
    half: bool,
}

const DAY_VBR: Encoding = Encoding {
    night: false,
    cbr: false,
    half: false,
};

/// The footage's first frame held for `still` frames (with sensor noise, as
/// a real still scene has), then the footage from its second frame on;
/// `frames` frames in all, encoded as `enc` says with the fixture's GOP (2 s,
/// no B-frames, no scene-cut key frames: a camera's fixed GOP).
fn still_then_moving(name: &str, still: usize, frames: usize, enc: Encoding) -> PathBuf {
    let out = work_dir(name).join("clip.h264");
    let mut vf = format!("loop=loop={}:size=1:start=0,setpts=N/({FPS}*TB)", still - 1);
    if enc.half {
        vf += ",scale=384:288";
    }
    vf += if enc.night {
        ",format=gray,eq=brightness=-0.2:contrast=0.6,noise=alls=24:allf=t,format=yuv420p"
    } else {
        ",noise=alls=3:allf=t"
    };
    let mut x264 =
        String::from("keyint=20:min-keyint=20:scenecut=0:bframes=0:open-gop=0:repeat-headers=1");
    let mut args = vec![
        "-vf", &vf, "-an", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "veryfast",
    ];
    let rate = if enc.half { "192k" } else { "768k" };
    if enc.cbr {
        x264 += ":nal-hrd=cbr";
        args.extend([
            "-b:v", rate, "-minrate", rate, "-maxrate", rate, "-bufsize", rate,
        ]);
    } else {
        args.extend(["-crf", "23"]);
    }
    let frames = frames.to_string();
    args.extend(["-frames:v", &frames, "-x264-params", &x264, "-f", "h264"]);
    ffmpeg(&args, &out);
    out
}

#[test]
fn an_idle_stream_decodes_only_key_frames_after_the_idle_delay() {
    // A still scene with sensor noise: its P-frames (~1-2 KB, 2-3 % of a key
    // frame) read as motion against the first guess of the quiet level, which
    // then creeps up until the noise is learned as quiet.
    let packets = packets(&still_then_moving("idle", 1500, 1500, DAY_VBR));
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
    let packets = packets(&still_then_moving("onset", onset, 400, DAY_VBR));
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

/// An idle camera wakes within one GOP of motion whatever its encoder does:
/// with constant bitrate (P-frame sizes set by the rate control) and on a
/// noisy night picture (sizes all noise) the sizes show nothing, and the next
/// key frame, compared with the previous one, wakes it. Key frames of a still
/// scene never wake it. Returns whether the camera was idle at the onset.
fn wakes_within_one_gop(name: &str, enc: Encoding) -> bool {
    // Still for 300 s (noisy P-frames may be read as motion at first, then
    // are learned as quiet), then the pedestrians move: the onset is 7 frames
    // after a key frame, the next key frame 13 frames later.
    let onset: usize = 3007;
    let next_key = onset.next_multiple_of(GOP);
    let packets = packets(&still_then_moving(name, onset, onset + 200, enc));
    let mut d = Decoder::new(None);
    let (mut idle_at, mut idle_at_onset) = (None, false);
    for (i, p) in packets.into_iter().enumerate() {
        let offered = d.push(p);
        let idle = d.stats.idle();
        if idle && idle_at.is_none() {
            idle_at = Some(i);
        }
        if i + 1 == onset {
            idle_at_onset = idle;
            let wakes = CameraStats::get(&d.stats.key_frame_wakes);
            assert_eq!(
                wakes, 0,
                "{enc:?}: woken by the key frames of a still scene"
            );
        }
        if i == next_key {
            assert!(
                !idle,
                "{enc:?}: still idle at the first key frame after the onset"
            );
        }
        if (next_key + 1..next_key + 10).contains(&i) {
            assert!(
                offered.iter().all(|(_, model)| *model),
                "{enc:?}: frame {i} not to the model"
            );
        }
    }
    eprintln!(
        "{enc:?}: idle from {}, idle at the onset ({:.1} s): {idle_at_onset}, woken by key frames {} times",
        idle_at.map_or("never".into(), |i| format!("{:.1} s", i as f64 / FPS)),
        onset as f64 / FPS,
        CameraStats::get(&d.stats.key_frame_wakes)
    );
    idle_at_onset
}

#[test]
fn a_constant_bitrate_day_scene_wakes_within_one_gop() {
    let enc = Encoding {
        night: false,
        cbr: true,
        half: true,
    };
    // Its P-frame sizes swing with the rate control's buffer (2400-byte
    // frames after 30-byte ones), which the size hint may take for motion:
    // it is then busy at the onset, which misses nothing either.
    wakes_within_one_gop("cbr-day", enc);
}

#[test]
fn a_constant_bitrate_night_scene_wakes_within_one_gop() {
    let enc = Encoding {
        night: true,
        cbr: true,
        half: true,
    };
    assert!(wakes_within_one_gop("cbr-night", enc), "idle at the onset");
}

#[test]
fn a_variable_bitrate_night_scene_wakes_within_one_gop() {
    let enc = Encoding {
        night: true,
        cbr: false,
        half: true,
    };
    // Noise makes its P-frames large: it may not have learned them as quiet
    // in 300 s and be busy at the onset (the safe failure), or wake as above.
    wakes_within_one_gop("vbr-night", enc);
}
