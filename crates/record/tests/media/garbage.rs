//! Bad input never panics: random bytes as samples and as parameter sets,
//! real parameter sets and real streams with bytes flipped, inserted and cut,
//! random timestamps. Whatever the writers then produce is still well-formed
//! boxes.

use crate::common::*;
use proptest::prelude::*;
use std::sync::OnceLock;
use xueliang_core::VideoCodec;
use xueliang_record::{
    derive_timing, write_mp4, FragmentWriter, Frame, PacketRing, ParameterSets, Sample, Segment,
    TrackConfig,
};

/// The first two GOPs of the H.264 D1 fixture and of the H.265 fixture.
fn streams() -> &'static [Vec<Sample>; 2] {
    static STREAMS: OnceLock<[Vec<Sample>; 2]> = OnceLock::new();
    STREAMS.get_or_init(|| {
        let h264 = read_samples(&fixture("vtest-d1-25fps.mp4")).expect("D1 fixture");
        let h265 = read_samples(&fixture("vtest-h265.mp4")).expect("H.265 fixture");
        [h264[..100].to_vec(), h265[..40].to_vec()]
    })
}

#[derive(Clone, Debug)]
enum Edit {
    Flip(f64, u8),
    Insert(f64, Vec<u8>),
    Cut(f64, usize),
    Truncate(f64),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0.0f64..1.0, 1u8..=255).prop_map(|(at, x)| Edit::Flip(at, x)),
        (0.0f64..1.0, prop::collection::vec(any::<u8>(), 1..32))
            .prop_map(|(at, b)| Edit::Insert(at, b)),
        (0.0f64..1.0, 1usize..64).prop_map(|(at, n)| Edit::Cut(at, n)),
        (0.0f64..1.0).prop_map(Edit::Truncate),
    ]
}

fn apply(data: &mut Vec<u8>, edit: &Edit) {
    let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len.saturating_sub(1));
    if data.is_empty() {
        return;
    }
    match edit {
        Edit::Flip(f, x) => {
            let i = at(*f, data.len());
            data[i] ^= x;
        }
        Edit::Insert(f, bytes) => {
            let i = at(*f, data.len());
            data.splice(i..i, bytes.iter().copied());
        }
        Edit::Cut(f, n) => {
            let i = at(*f, data.len());
            let end = (i + n).min(data.len());
            data.drain(i..end);
        }
        Edit::Truncate(f) => data.truncate(at(*f, data.len())),
    }
}

fn codec(h265: bool) -> VideoCodec {
    if h265 {
        VideoCodec::H265
    } else {
        VideoCodec::H264
    }
}

/// Every segment is whole boxes; media sequence numbers increase.
fn well_formed(segments: &[Segment]) -> Result<(), TestCaseError> {
    let mut last = 0;
    for s in segments {
        match s {
            Segment::Init(i) => {
                let boxes =
                    top_level_boxes(&i.data).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(boxes, vec!["ftyp".to_string(), "moov".to_string()]);
                prop_assert!(i.config.width() > 0 && i.config.height() > 0);
            }
            Segment::Media(m) => {
                let boxes =
                    top_level_boxes(&m.data).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(boxes, vec!["moof".to_string(), "mdat".to_string()]);
                prop_assert!(m.sequence > last);
                last = m.sequence;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_as_samples(
        data in prop::collection::vec(any::<u8>(), 0..400),
        h265 in any::<bool>(),
        key in any::<bool>(),
        pts in any::<i64>(),
    ) {
        let sample = Sample::new(codec(h265), data.clone(), key, pts);
        let _ = Frame::from_sample(&sample);
        let _ = TrackConfig::from_annexb(codec(h265), &data);
        let mut writer = FragmentWriter::new();
        let mut out = Vec::new();
        if let Ok(s) = writer.push(&sample) { out.extend(s); }
        out.extend(writer.finish());
        well_formed(&out)?;
        let mut ring = PacketRing::new(1000);
        ring.push(sample.clone());
        prop_assert!(ring.bytes() <= 1000);
        let _ = write_mp4(&[sample], Vec::new());
    }

    #[test]
    fn random_bytes_behind_a_start_code_as_parameter_sets(
        body in prop::collection::vec(any::<u8>(), 0..80),
        h265 in any::<bool>(),
    ) {
        // Make the bytes an SPS/VPS/PPS so the parsers, not the NAL type
        // check, see them.
        let sets = if h265 {
            let nal = |t: u8| { let mut v = vec![t << 1, 1]; v.extend(&body); bytes::Bytes::from(v) };
            ParameterSets { vps: vec![nal(32)], sps: vec![nal(33)], pps: vec![nal(34)] }
        } else {
            let nal = |t: u8| { let mut v = vec![0x60 | t]; v.extend(&body); bytes::Bytes::from(v) };
            ParameterSets { vps: vec![], sps: vec![nal(7)], pps: vec![nal(8)] }
        };
        if let Ok(config) = TrackConfig::new(codec(h265), sets) {
            prop_assert!(config.width() > 0 && config.height() > 0);
            prop_assert!(!xueliang_record::init_segment(&config).is_empty());
        }
    }

    #[test]
    fn damaged_real_parameter_sets(
        h265 in any::<bool>(),
        edits in prop::collection::vec(edit_strategy(), 1..4),
    ) {
        let stream = &streams()[usize::from(h265)];
        let mut sets = ParameterSets::from_annexb(stream[0].codec, &stream[0].data);
        let mut sps = sets.sps[0].to_vec();
        for e in &edits { apply(&mut sps, e); }
        sets.sps[0] = sps.into();
        if let Ok(config) = TrackConfig::new(stream[0].codec, sets) {
            prop_assert!(config.width() > 0 && config.height() > 0);
            prop_assert!(!config.codec_string().is_empty());
        }
    }

    #[test]
    fn damaged_real_streams_through_every_writer(
        h265 in any::<bool>(),
        damage in prop::collection::vec((0usize..100, edit_strategy()), 1..6),
        jitter in prop::collection::vec(-200_000i64..200_000, 0..6),
    ) {
        let mut samples = streams()[usize::from(h265)].clone();
        let n = samples.len();
        for (i, e) in &damage {
            let mut data = samples[i % n].data.to_vec();
            apply(&mut data, e);
            samples[i % n].data = data.into();
        }
        for (k, j) in jitter.iter().enumerate() {
            let i = (k * 37 + 11) % n;
            samples[i].pts = samples[i].pts.saturating_add(*j);
        }
        let mut writer = FragmentWriter::new();
        let mut out = Vec::new();
        for s in &samples {
            if let Ok(segments) = writer.push(s) { out.extend(segments); }
        }
        out.extend(writer.finish());
        well_formed(&out)?;

        let mut ring = PacketRing::new(200_000);
        for s in &samples {
            ring.push(s.clone());
            prop_assert!(ring.bytes() <= 200_000);
        }
        if let Some(clip) = ring.clip(i64::MIN, i64::MAX) {
            prop_assert!(clip.samples[0].is_key);
            let mut file = Vec::new();
            if write_mp4(&clip.samples, &mut file).is_ok() {
                let boxes = top_level_boxes(&file).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(boxes, vec!["ftyp".to_string(), "moov".to_string(), "mdat".to_string()]);
            }
        }
    }

    #[test]
    fn timing_of_random_timestamps(pts in prop::collection::vec(-(1i64 << 40)..(1i64 << 40), 0..60)) {
        let t = derive_timing(&pts, None);
        prop_assert_eq!(t.len(), pts.len());
        for w in t.windows(2) {
            prop_assert!(w[0].dts < w[1].dts);
            prop_assert_eq!(i64::from(w[0].duration), (w[1].dts - w[0].dts).min(i64::from(u32::MAX)));
        }
    }

    #[test]
    fn timing_of_reordered_frames_is_exact(
        frames in 2usize..60,
        perm_seed in any::<u64>(),
        depth in 0usize..4,
    ) {
        // A steady 25 fps stream whose decode order moves each frame at most
        // `depth` places back (as B-frames do).
        let mut order: Vec<i64> = (0..frames as i64).collect();
        let mut seed = perm_seed;
        let mut i = 0;
        while i + 1 < order.len() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let k = (seed >> 33) as usize % (depth + 1);
            let j = (i + k).min(order.len() - 1);
            order[i..=j].rotate_right(1);
            i = j + 1;
        }
        let pts: Vec<i64> = order.iter().map(|f| f * 3600).collect();
        let t = derive_timing(&pts, None);
        for (s, p) in t.iter().zip(&pts) {
            prop_assert_eq!(s.dts + i64::from(s.composition_offset), *p);
            prop_assert_eq!(s.duration, 3600);
        }
    }
}
