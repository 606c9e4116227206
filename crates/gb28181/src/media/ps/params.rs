//! What an access unit's NAL units say: whether it is a key frame, which
//! parameter sets it carries; and the latest parameter sets of the stream,
//! to put before key frames that come without them.

use crate::media::nal::{self, NalKind, ParamKind};
use xueliang_core::VideoCodec;

/// The latest parameter sets of the stream.
#[derive(Default)]
pub(super) struct ParamCache {
    vps: Option<Vec<u8>>,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl ParamCache {
    fn slot(&mut self, kind: ParamKind) -> &mut Option<Vec<u8>> {
        match kind {
            ParamKind::Vps => &mut self.vps,
            ParamKind::Sps => &mut self.sps,
            ParamKind::Pps => &mut self.pps,
        }
    }

    fn needed(codec: VideoCodec) -> &'static [ParamKind] {
        match codec {
            VideoCodec::H264 => &[ParamKind::Sps, ParamKind::Pps],
            VideoCodec::H265 => &[ParamKind::Vps, ParamKind::Sps, ParamKind::Pps],
        }
    }

    /// Annex B of all the parameter sets `codec` needs, if all are known.
    fn annex_b(&mut self, codec: VideoCodec) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for &kind in Self::needed(codec) {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(self.slot(kind).as_deref()?);
        }
        Some(out)
    }
}

/// One access unit as the decoder will get it.
pub(super) struct Picture {
    pub data: Vec<u8>,
    pub is_key: bool,
    /// The SPS differs from the one before.
    pub new_sps: bool,
    /// The unit opens with a start code and its first slice is the first of
    /// its picture: nothing of its start is missing.
    pub whole_start: bool,
    /// It carried every parameter set its codec needs (before any were
    /// added from the cache).
    pub carried_params: bool,
}

/// Reads a unit, remembers its parameter sets, and completes a key frame
/// that lacks them from `cache`. `None`: no slice in it (parameter sets or
/// SEI alone), nothing to decode.
pub(super) fn picture(codec: VideoCodec, data: Vec<u8>, cache: &mut ParamCache) -> Option<Picture> {
    let mut has_slice = false;
    let mut random_access = false;
    let mut first_slice_starts_picture = false;
    let mut carried = Vec::new();
    let mut new_sps = false;
    for unit in nal::nal_units(&data) {
        match NalKind::of(codec, unit) {
            NalKind::Slice {
                random_access: ra,
                first_in_picture,
            } => {
                if !has_slice {
                    first_slice_starts_picture = first_in_picture;
                }
                has_slice = true;
                random_access |= ra;
            }
            NalKind::Param(kind) => {
                let slot = cache.slot(kind);
                if slot.as_deref() != Some(unit) {
                    new_sps |= kind == ParamKind::Sps && slot.is_some();
                    *slot = Some(unit.to_vec());
                }
                carried.push(kind);
            }
            NalKind::Leading | NalKind::Other => {}
        }
    }
    if !has_slice {
        return None;
    }
    let whole_start = nal::starts_with_start_code(&data) && first_slice_starts_picture;
    let carries_all = ParamCache::needed(codec)
        .iter()
        .all(|k| carried.contains(k));
    let mut is_key = random_access || carries_all;
    let mut data = data;
    if is_key && !carries_all {
        match cache.annex_b(codec) {
            Some(mut prefix) => {
                let start = nal::find_start_code(&data, 0).unwrap_or(0);
                prefix.extend_from_slice(&data[start..]);
                data = prefix;
            }
            None => is_key = false,
        }
    }
    Some(Picture {
        data,
        is_key,
        new_sps,
        whole_start,
        carried_params: carries_all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0, 0, 0, 1, 0x67, 0x42, 0, 0x1e];
    const PPS: &[u8] = &[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80];
    const IDR: &[u8] = &[0, 0, 0, 1, 0x65, 0x88, 0x84];
    const P: &[u8] = &[0, 0, 0, 1, 0x41, 0x9a, 0x02];

    #[test]
    fn key_frames_get_the_parameter_sets_they_lack() {
        let mut cache = ParamCache::default();
        let first = picture(VideoCodec::H264, [SPS, PPS, IDR].concat(), &mut cache).unwrap();
        assert!(first.is_key && first.whole_start && !first.new_sps);
        let p = picture(VideoCodec::H264, P.to_vec(), &mut cache).unwrap();
        assert!(!p.is_key);
        let bare = picture(VideoCodec::H264, IDR.to_vec(), &mut cache).unwrap();
        assert!(bare.is_key);
        assert_eq!(bare.data, [SPS, PPS, &IDR[1..]].concat());
        let changed_sps = [0, 0, 0, 1, 0x67, 0x42, 0, 0x1f];
        let next = picture(
            VideoCodec::H264,
            [&changed_sps, PPS, IDR].concat(),
            &mut cache,
        )
        .unwrap();
        assert!(next.new_sps);
        assert!(picture(VideoCodec::H264, [SPS, PPS].concat(), &mut cache).is_none());
    }

    #[test]
    fn a_key_frame_without_any_parameter_sets_is_not_a_key_frame() {
        let mut cache = ParamCache::default();
        let idr = picture(VideoCodec::H264, IDR.to_vec(), &mut cache).unwrap();
        assert!(!idr.is_key);
        let cut = picture(VideoCodec::H264, IDR[2..].to_vec(), &mut cache);
        assert!(cut.is_none_or(|p| !p.whole_start));
    }
}
