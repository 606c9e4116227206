//! Hardware decoding where no device is present (this machine and CI have
//! no GPU): asking for CUDA then VA-API says why neither started and
//! decodes in software, the same frames as software alone. On a machine
//! with a device the same tests compare its frames with software's.

use crate::hardware::{HardwarePlan, HwDevice};
use crate::test_clips::{busy_clip, packets, Decoder};
use crate::{ActivitySettings, CameraDecodeSpec, DecodePool};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xueliang_core::{
    CameraRef, CameraStats, DecodedFrame, HwAccel, InputGeometry, LatestFrameSlots, PushOutcome,
    ResizeMode,
};

/// Whether this machine could have a CUDA or VA-API device at all.
fn gpu_here() -> bool {
    Path::new("/dev/nvidia0").exists() || Path::new("/dev/dri").exists()
}

fn cuda_then_vaapi() -> HardwarePlan {
    HardwarePlan::new(vec![HwAccel::Cuda, HwAccel::Vaapi], None)
}

fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let sum: u64 = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y) as u64).sum();
    sum as f64 / a.len().max(1) as f64
}

/// The two decoders offered the same pictures to the detector.
fn assert_same_pictures(want: &DecodedFrame, got: &DecodedFrame) {
    assert_eq!(want.stream_time, got.stream_time);
    assert_eq!((want.width, want.height), (got.width, got.height));
    let t = want.stream_time;
    let y = mean_difference(&want.y, &got.y);
    assert!(y < 0.5, "{t} s: Y differs by {y} on average");
    let (Some(want_input), Some(got_input)) = (&want.model_input, &got.model_input) else {
        panic!("{t} s: a busy camera's pictures go to the model");
    };
    let rgb = mean_difference(&want_input.rgb, &got_input.rgb);
    assert!(rgb < 1.0, "{t} s: model input differs by {rgb} on average");
}

#[test]
fn cuda_then_vaapi_fall_back_to_software_here_and_decode_the_same_frames() {
    crate::init().unwrap();
    let choice = cuda_then_vaapi().choose();
    for (kind, why) in &choice.passed_over {
        eprintln!("{} did not start: {why}", kind.as_str());
        assert!(why.len() > 10, "{why:?}");
    }
    eprintln!(
        "decoding on: {}",
        choice.hwaccel().map_or("software", HwAccel::as_str)
    );
    if !gpu_here() {
        assert!(choice.device.is_none(), "a device opened without a GPU");
        let tried: Vec<HwAccel> = choice.passed_over.iter().map(|(k, _)| *k).collect();
        assert_eq!(tried, [HwAccel::Cuda, HwAccel::Vaapi]);
    }

    let packets = packets(&busy_clip("hardware"));
    let n = packets.len() as u64;
    let mut software = Decoder::new(None);
    let mut chosen = Decoder::new(choice.device.as_ref().and_then(HwDevice::new_ref));
    let mut offered = 0;
    for p in packets {
        let want = software.push_frames(p.clone());
        let got = chosen.push_frames(p);
        assert_eq!(want.len(), got.len());
        for (w, g) in want.iter().zip(&got) {
            assert_same_pictures(w, g);
        }
        offered += got.len();
    }
    assert_eq!(software.decoded(), n);
    assert_eq!(chosen.decoded(), n);
    assert!(offered as u64 >= n / 2 - 1, "{offered} of {n} offered");
    assert_eq!(CameraStats::get(&chosen.stats.decode_errors), 0);
    assert_eq!(chosen.stats.hardware_decoding(), choice.hwaccel());
}

#[test]
fn a_pool_asked_for_devices_it_lacks_decodes_every_frame_in_software() {
    crate::init().unwrap();
    let packets = packets(&busy_clip("hardware-pool"));
    let n = packets.len() as u64;
    let geometry = InputGeometry {
        width: 300,
        height: 300,
        resize: ResizeMode::Stretch,
    };
    let (slots, _frames) = LatestFrameSlots::<DecodedFrame, ()>::new(4);
    let pool = DecodePool::start(1, geometry, cuda_then_vaapi(), slots).unwrap();
    let stats = Arc::new(CameraStats::default());
    let camera = CameraRef {
        index: 0,
        id: Arc::from("walkway"),
    };
    let spec = CameraDecodeSpec {
        camera,
        stats: stats.clone(),
        detect_fps: 5.0,
        reduced_fps: 5.0,
        activity: ActivitySettings {
            idle_key_frames_only: false,
            ..Default::default()
        },
        regions: Default::default(),
    };
    let sink = pool.add(spec, ());
    let deadline = Instant::now() + Duration::from_secs(60);
    let wait_for = |decoded: u64| {
        while CameraStats::get(&stats.frames_decoded) < decoded {
            assert!(Instant::now() < deadline, "decoded {stats:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    // Never more packets in flight than the thread's queue holds.
    for (i, p) in packets.into_iter().enumerate() {
        if i % 100 == 0 {
            wait_for(i as u64);
        }
        assert_eq!(sink.push(p), PushOutcome::Accepted, "packet {i}");
    }
    wait_for(n);
    drop(sink);
    pool.remove(0);
    pool.shutdown();
    assert_eq!(CameraStats::get(&stats.frames_decoded), n);
    assert_eq!(CameraStats::get(&stats.decode_errors), 0);
    if !gpu_here() {
        assert_eq!(stats.hardware_decoding(), None);
    }
}
