//! Annex B byte streams: NAL unit iteration, the role of each NAL unit, and
//! conversion to the 4-byte length-prefixed form MP4 samples use.

use crate::{MuxError, Sample};
use bytes::Bytes;
use xueliang_core::VideoCodec;

/// The NAL units of an Annex B access unit, start codes (`00 00 01` or
/// `00 00 00 01`) and trailing zero bytes removed. Bytes before the first
/// start code are skipped; empty NAL units are skipped.
pub fn nal_units(data: &[u8]) -> NalUnits<'_> {
    let pos = find_start_code(data, 0).map_or(data.len(), |at| at + 3);
    NalUnits { data, pos }
}

/// Iterator returned by [`nal_units`].
pub struct NalUnits<'a> {
    data: &'a [u8],
    /// Start of the next NAL unit's bytes (just after a start code).
    pos: usize,
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.pos < self.data.len() {
            let start = self.pos;
            let (end, next) = match find_start_code(self.data, start) {
                Some(at) => (at, at + 3),
                None => (self.data.len(), self.data.len()),
            };
            self.pos = next;
            let mut nal = &self.data[start..end];
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            if !nal.is_empty() {
                return Some(nal);
            }
        }
        None
    }
}

/// Position of the next `00 00 01` at or after `from`.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 2 < data.len() {
        // Skip fast: a start code needs data[i + 2] == 1 and two zeros
        // before it.
        match data[i + 2] {
            1 if data[i] == 0 && data[i + 1] == 0 => return Some(i),
            0 => i += 1,
            _ => i += 3,
        }
    }
    None
}

/// What a NAL unit is, as far as muxing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NalRole {
    Vps,
    Sps,
    Pps,
    /// Access unit delimiter, and (H.264) SPS extension: dropped from
    /// samples, not kept in the decoder configuration.
    Dropped,
    /// A coded slice: picture data.
    Vcl,
    /// SEI and everything else: kept in the sample.
    Other,
}

pub(crate) fn nal_role(codec: VideoCodec, nal: &[u8]) -> NalRole {
    let Some(&first) = nal.first() else {
        return NalRole::Other;
    };
    match codec {
        VideoCodec::H264 => match first & 0x1f {
            1..=5 => NalRole::Vcl,
            7 => NalRole::Sps,
            8 => NalRole::Pps,
            9 | 13 => NalRole::Dropped,
            _ => NalRole::Other,
        },
        VideoCodec::H265 => match (first >> 1) & 0x3f {
            0..=31 => NalRole::Vcl,
            32 => NalRole::Vps,
            33 => NalRole::Sps,
            34 => NalRole::Pps,
            35 => NalRole::Dropped,
            _ => NalRole::Other,
        },
    }
}

/// The parameter sets of a stream: what goes into the decoder configuration
/// record (avcC/hvcC) instead of the samples. Two values are equal when the
/// bytes of every set are: a camera repeats identical sets before every key
/// frame, and any difference needs a new sample description (a new init
/// segment for live view, a cut for clips).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ParameterSets {
    /// H.265 video parameter sets (empty for H.264).
    pub vps: Vec<Bytes>,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
}

impl ParameterSets {
    /// The parameter sets an access unit carries before its first slice
    /// (later ones are not looked for: the scan stops at the picture data).
    /// Repeated identical sets are kept once.
    pub fn from_annexb(codec: VideoCodec, data: &[u8]) -> ParameterSets {
        let mut sets = ParameterSets::default();
        for nal in nal_units(data) {
            let list = match nal_role(codec, nal) {
                NalRole::Vcl => break,
                NalRole::Vps => &mut sets.vps,
                NalRole::Sps => &mut sets.sps,
                NalRole::Pps => &mut sets.pps,
                NalRole::Dropped | NalRole::Other => continue,
            };
            if !list.iter().any(|have| have[..] == *nal) {
                list.push(Bytes::copy_from_slice(nal));
            }
        }
        sets
    }

    pub fn is_empty(&self) -> bool {
        self.vps.is_empty() && self.sps.is_empty() && self.pps.is_empty()
    }

    /// `self` over `older`: each kind of set `self` has replaces that kind,
    /// kinds it lacks are kept from `older` (for a camera that repeats only
    /// its SPS/PPS and sent the VPS once).
    pub fn merged_over(&self, older: &ParameterSets) -> ParameterSets {
        let pick = |new: &Vec<Bytes>, old: &Vec<Bytes>| {
            if new.is_empty() {
                old.clone()
            } else {
                new.clone()
            }
        };
        ParameterSets {
            vps: pick(&self.vps, &older.vps),
            sps: pick(&self.sps, &older.sps),
            pps: pick(&self.pps, &older.pps),
        }
    }
}

/// A sample ready for MP4: NAL units with 4-byte big-endian length
/// prefixes, parameter sets and access unit delimiters taken out (the
/// parameter sets are returned beside it).
#[derive(Clone, Debug)]
pub struct Frame {
    /// Length-prefixed NAL units.
    pub data: Bytes,
    pub is_key: bool,
    /// Presentation time, 90 kHz ticks.
    pub pts: i64,
    /// The parameter sets the access unit carried (often empty for
    /// non-key frames).
    pub parameter_sets: ParameterSets,
}

impl Frame {
    /// Converts an Annex B sample. Errors: no start code, no NAL unit left
    /// once parameter sets and delimiters are dropped, a NAL unit too large
    /// for a 32-bit length.
    pub fn from_sample(sample: &Sample) -> Result<Frame, MuxError> {
        let pts = sample.pts;
        if find_start_code(&sample.data, 0).is_none() {
            return Err(MuxError::NotAnnexB { pts });
        }
        let mut data = Vec::with_capacity(sample.data.len() + 16);
        let mut sets = ParameterSets::default();
        let mut seen_vcl = false;
        for nal in nal_units(&sample.data) {
            let role = nal_role(sample.codec, nal);
            let list = match role {
                NalRole::Vps => &mut sets.vps,
                NalRole::Sps => &mut sets.sps,
                NalRole::Pps => &mut sets.pps,
                NalRole::Dropped => continue,
                NalRole::Vcl | NalRole::Other => {
                    seen_vcl |= role == NalRole::Vcl;
                    let len =
                        u32::try_from(nal.len()).map_err(|_| MuxError::SampleTooLarge { pts })?;
                    data.extend_from_slice(&len.to_be_bytes());
                    data.extend_from_slice(nal);
                    continue;
                }
            };
            // Only the sets before the picture data describe this stream's
            // configuration; the rare set after a slice is dropped too.
            if !seen_vcl && !list.iter().any(|have| have[..] == *nal) {
                list.push(Bytes::copy_from_slice(nal));
            }
        }
        if !seen_vcl {
            return Err(MuxError::EmptySample { pts });
        }
        Ok(Frame {
            data: data.into(),
            is_key: sample.is_key,
            pts,
            parameter_sets: sets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_three_and_four_byte_start_codes() {
        let data = [
            9, 9, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 4, 0, 0,
        ];
        let nals: Vec<&[u8]> = nal_units(&data).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4]]);
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
        assert_eq!(nal_units(&[0, 0, 1]).count(), 0);
        assert_eq!(nal_units(&[0, 0, 1, 0, 0, 1]).count(), 0);
    }

    #[test]
    fn converts_to_length_prefixed_and_keeps_sets() {
        let data = [
            0, 0, 0, 1, 0x09, 0xf0, // AUD
            0, 0, 0, 1, 0x67, 1, 2, // SPS
            0, 0, 1, 0x68, 3, // PPS
            0, 0, 1, 0x06, 5, // SEI
            0, 0, 1, 0x65, 4, 4, // IDR slice
        ];
        let sample = Sample::new(VideoCodec::H264, data.to_vec(), true, 7);
        let frame = Frame::from_sample(&sample).unwrap();
        assert_eq!(
            &frame.data[..],
            &[0, 0, 0, 2, 0x06, 5, 0, 0, 0, 3, 0x65, 4, 4]
        );
        assert_eq!(
            frame.parameter_sets.sps,
            vec![Bytes::from_static(&[0x67, 1, 2])]
        );
        assert_eq!(
            frame.parameter_sets.pps,
            vec![Bytes::from_static(&[0x68, 3])]
        );
        let only_sets = Sample::new(VideoCodec::H264, data[..19].to_vec(), true, 7);
        assert!(matches!(
            Frame::from_sample(&only_sets),
            Err(MuxError::EmptySample { pts: 7 })
        ));
        let raw = Sample::new(VideoCodec::H264, vec![0x65, 1, 2], true, 8);
        assert!(matches!(
            Frame::from_sample(&raw),
            Err(MuxError::NotAnnexB { pts: 8 })
        ));
    }

    #[test]
    fn h265_roles() {
        let nal = |t: u8| [t << 1, 1];
        assert_eq!(nal_role(VideoCodec::H265, &nal(32)), NalRole::Vps);
        assert_eq!(nal_role(VideoCodec::H265, &nal(33)), NalRole::Sps);
        assert_eq!(nal_role(VideoCodec::H265, &nal(34)), NalRole::Pps);
        assert_eq!(nal_role(VideoCodec::H265, &nal(35)), NalRole::Dropped);
        assert_eq!(nal_role(VideoCodec::H265, &nal(19)), NalRole::Vcl);
        assert_eq!(nal_role(VideoCodec::H265, &nal(39)), NalRole::Other);
    }
}
