//! A track's configuration: the parameter sets, what was read from them,
//! and the MP4 sample entry built from them.

use crate::boxes::BoxWriter;
use crate::{h264, h265, MuxError, ParameterSets};
use xueliang_core::VideoCodec;

/// One video track's configuration, from its parameter sets: picture size,
/// MSE codec string and the decoder configuration record. Equal configs have
/// equal parameter sets; when a camera's sets change, a new config (a new
/// init segment, a new clip) is needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackConfig {
    codec: VideoCodec,
    sets: ParameterSets,
    width: u32,
    height: u32,
    codec_string: String,
    /// avcC/hvcC payload.
    record: Vec<u8>,
    reorder: Option<u32>,
}

impl TrackConfig {
    /// Reads the first SPS of `sets`. H.264 needs an SPS and a PPS; H.265
    /// a VPS, an SPS and a PPS.
    pub fn new(codec: VideoCodec, sets: ParameterSets) -> Result<TrackConfig, MuxError> {
        let missing = sets.sps.is_empty()
            || sets.pps.is_empty()
            || (codec == VideoCodec::H265 && sets.vps.is_empty());
        if missing {
            return Err(MuxError::NoParameterSets {
                h265: codec == VideoCodec::H265,
            });
        }
        let (width, height, codec_string, record, reorder) = match codec {
            VideoCodec::H264 => {
                let sps = h264::parse_sps(&sets.sps[0])?;
                let record = h264::avc_config(&sps, &sets)?;
                (
                    sps.width,
                    sps.height,
                    h264::codec_string(&sps),
                    record,
                    sps.reorder_frames,
                )
            }
            VideoCodec::H265 => {
                let sps = h265::parse_sps(&sets.sps[0])?;
                let record = h265::hevc_config(&sps, &sets)?;
                (
                    sps.width,
                    sps.height,
                    h265::codec_string(&sps),
                    record,
                    Some(sps.reorder_pics),
                )
            }
        };
        if width > u32::from(u16::MAX) || height > u32::from(u16::MAX) {
            return Err(MuxError::Unsupported(format!(
                "{width}x{height} does not fit a sample entry's 16-bit size"
            )));
        }
        Ok(TrackConfig {
            codec,
            sets,
            width,
            height,
            codec_string,
            record,
            reorder,
        })
    }

    /// The config of the parameter sets an Annex B access unit carries.
    pub fn from_annexb(codec: VideoCodec, data: &[u8]) -> Result<TrackConfig, MuxError> {
        TrackConfig::new(codec, ParameterSets::from_annexb(codec, data))
    }

    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    pub fn parameter_sets(&self) -> &ParameterSets {
        &self.sets
    }

    /// Displayed width in pixels (after SPS cropping).
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Displayed height in pixels (after SPS cropping).
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The RFC 6381 codec string for `MediaSource.isTypeSupported` and
    /// `SourceBuffer.changeType`: `avc1.64001e`, `hvc1.1.6.L90.90`.
    pub fn codec_string(&self) -> &str {
        &self.codec_string
    }

    /// `video/mp4; codecs="..."`.
    pub fn mime_type(&self) -> String {
        format!("video/mp4; codecs=\"{}\"", self.codec_string)
    }

    /// How many frames the decoder may hold back to reorder (B-frames), as
    /// the SPS says: H.265 always says (sps_max_num_reorder_pics); H.264
    /// says in its VUI's bitstream restriction, or implies 0 (Baseline,
    /// pic_order_cnt_type 2). `None`: unknown.
    pub fn reorder_depth(&self) -> Option<u32> {
        self.reorder
    }

    /// The decoder configuration record: the payload of the `avcC`/`hvcC`
    /// box.
    pub fn decoder_config_record(&self) -> &[u8] {
        &self.record
    }

    /// The `avc1`/`hvc1` visual sample entry (ISO/IEC 14496-12 12.1.3).
    pub(crate) fn write_sample_entry(&self, w: &mut BoxWriter) {
        let (entry, record) = match self.codec {
            VideoCodec::H264 => (b"avc1", b"avcC"),
            VideoCodec::H265 => (b"hvc1", b"hvcC"),
        };
        let start = w.begin(entry);
        w.bytes(&[0; 6]); // reserved
        w.u16(1); // data_reference_index
        w.bytes(&[0; 16]); // pre_defined, reserved
        w.u16(self.width as u16);
        w.u16(self.height as u16);
        w.u32(0x0048_0000); // 72 dpi
        w.u32(0x0048_0000);
        w.u32(0); // reserved
        w.u16(1); // frame_count
        w.bytes(&[0; 32]); // compressorname
        w.u16(0x0018); // depth
        w.u16(0xffff); // pre_defined = -1
        let inner = w.begin(record);
        w.bytes(&self.record);
        w.end(inner);
        w.end(start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn missing_sets_are_reported() {
        let sets = ParameterSets {
            sps: vec![Bytes::from_static(&[0x67, 0x64, 0, 0x1e])],
            ..ParameterSets::default()
        };
        let err = TrackConfig::new(VideoCodec::H264, sets).unwrap_err();
        assert!(matches!(err, MuxError::NoParameterSets { h265: false }));
        assert!(err.is_transient());
    }
}
