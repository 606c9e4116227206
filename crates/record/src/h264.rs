//! H.264 sequence parameter sets (ITU-T H.264 7.3.2.1.1, E.1.1) and the
//! AVC decoder configuration record (ISO/IEC 14496-15 5.3.3.1).

use crate::bits::{unescape, BitReader};
use crate::{MuxError, ParameterSets};

const WHAT: &str = "H.264 SPS";

/// What muxing needs from an SPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sps {
    pub profile_idc: u8,
    /// constraint_set0..5 flags and the two reserved bits, as in the SPS.
    pub constraints: u8,
    pub level_idc: u8,
    pub chroma_format_idc: u32,
    pub bit_depth_luma_minus8: u32,
    pub bit_depth_chroma_minus8: u32,
    /// Picture size after cropping.
    pub width: u32,
    pub height: u32,
    /// Frames the decoder may hold back for reordering, when the SPS says.
    pub reorder_frames: Option<u32>,
}

fn bad(reason: &'static str) -> MuxError {
    MuxError::BadParameterSet { what: WHAT, reason }
}

/// Profiles whose SPS carries chroma format, bit depths and scaling lists.
fn has_chroma_info(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Parses an SPS NAL unit (header byte included, emulation prevention not
/// yet removed).
pub(crate) fn parse_sps(nal: &[u8]) -> Result<Sps, MuxError> {
    let rbsp = unescape(nal);
    if rbsp.len() < 4 || rbsp[0] & 0x1f != 7 {
        return Err(bad("not an SPS"));
    }
    let profile_idc = rbsp[1];
    let constraints = rbsp[2];
    let level_idc = rbsp[3];
    let mut r = BitReader::new(&rbsp[4..], WHAT);
    r.ue_max(31, "seq_parameter_set_id over 31")?;
    let (mut chroma_format_idc, mut separate_colour_plane) = (1, false);
    let (mut depth_luma, mut depth_chroma) = (0, 0);
    if has_chroma_info(profile_idc) {
        chroma_format_idc = r.ue_max(3, "chroma_format_idc over 3")?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        depth_luma = r.ue_max(6, "bit_depth_luma_minus8 over 6")?;
        depth_chroma = r.ue_max(6, "bit_depth_chroma_minus8 over 6")?;
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            // seq_scaling_matrix_present_flag
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue_max(12, "log2_max_frame_num_minus4 over 12")?;
    let poc_type = r.ue_max(2, "pic_order_cnt_type over 2")?;
    match poc_type {
        0 => {
            r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4 over 12")?;
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle over 255")?;
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue_max(1 << 16, "picture too wide")?) + 1;
    let height_units = u64::from(r.ue_max(1 << 16, "picture too tall")?) + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let mut width = width_mbs * 16;
    let mut height = height_units * 16 * field_factor;
    if r.bit()? {
        // frame_cropping_flag: offsets in crop units (7-19..7-22).
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_w, sub_h) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let crop_x = sub_w;
        let crop_y = sub_h * field_factor;
        let left = u64::from(r.ue()?);
        let right = u64::from(r.ue()?);
        let top = u64::from(r.ue()?);
        let bottom = u64::from(r.ue()?);
        width = width
            .checked_sub((left + right) * crop_x)
            .filter(|w| *w > 0)
            .ok_or_else(|| bad("cropping wider than the picture"))?;
        height = height
            .checked_sub((top + bottom) * crop_y)
            .filter(|h| *h > 0)
            .ok_or_else(|| bad("cropping taller than the picture"))?;
    }
    let vui_present = r.bit()?;
    // A VUI is only read for the reorder depth; one that does not parse
    // (cameras do write broken ones) leaves it unknown, it is not an error.
    let vui_reorder = if vui_present {
        vui_reorder_frames(&mut r).ok().flatten()
    } else {
        None
    };
    // Without bitstream_restriction: pic_order_cnt_type 2 means output
    // order is decode order, and the Baseline profile has no B slices.
    let reorder_frames = vui_reorder.or_else(|| {
        (poc_type == 2 || profile_idc == 66 || (constraints & 0x10 != 0 && is_intra(profile_idc)))
            .then_some(0)
    });
    Ok(Sps {
        profile_idc,
        constraints,
        level_idc,
        chroma_format_idc,
        bit_depth_luma_minus8: depth_luma,
        bit_depth_chroma_minus8: depth_chroma,
        width: u32::try_from(width).map_err(|_| bad("picture too wide"))?,
        height: u32::try_from(height).map_err(|_| bad("picture too tall"))?,
        reorder_frames,
    })
}

/// The intra-only profiles (constraint_set3_flag set).
fn is_intra(profile_idc: u8) -> bool {
    matches!(profile_idc, 44 | 100 | 110 | 122 | 244)
}

/// 7.3.2.1.1.1 scaling_list(): only skipped.
fn skip_scaling_list(r: &mut BitReader, size: usize) -> Result<(), MuxError> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(bad("delta_scale out of range"));
            }
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// E.1.1 vui_parameters() up to max_num_reorder_frames.
fn vui_reorder_frames(r: &mut BitReader) -> Result<Option<u32>, MuxError> {
    if r.bit()? {
        // aspect_ratio_info_present_flag
        if r.bits(8)? == 255 {
            r.skip(32)?; // sar_width, sar_height
        }
    }
    if r.bit()? {
        r.bit()?; // overscan_appropriate_flag
    }
    if r.bit()? {
        // video_signal_type_present_flag
        r.skip(4)?;
        if r.bit()? {
            r.skip(24)?;
        }
    }
    if r.bit()? {
        r.ue()?;
        r.ue()?;
    }
    if r.bit()? {
        r.skip(65)?; // num_units_in_tick, time_scale, fixed_frame_rate_flag
    }
    let nal_hrd = r.bit()?;
    if nal_hrd {
        skip_hrd(r)?;
    }
    let vcl_hrd = r.bit()?;
    if vcl_hrd {
        skip_hrd(r)?;
    }
    if nal_hrd || vcl_hrd {
        r.bit()?; // low_delay_hrd_flag
    }
    r.bit()?; // pic_struct_present_flag
    if !r.bit()? {
        return Ok(None);
    }
    r.bit()?; // motion_vectors_over_pic_boundaries_flag
    for _ in 0..4 {
        r.ue()?; // max_bytes_per_pic_denom .. log2_max_mv_length_vertical
    }
    let reorder = r.ue_max(16, "max_num_reorder_frames over 16")?;
    Ok(Some(reorder))
}

fn skip_hrd(r: &mut BitReader) -> Result<(), MuxError> {
    let count = r.ue_max(31, "cpb_cnt_minus1 over 31")? + 1;
    r.skip(8)?;
    for _ in 0..count {
        r.ue()?;
        r.ue()?;
        r.bit()?;
    }
    r.skip(20)
}

/// The AVCDecoderConfigurationRecord (the payload of an `avcC` box).
pub(crate) fn avc_config(sps: &Sps, sets: &ParameterSets) -> Result<Vec<u8>, MuxError> {
    if sets.sps.len() > 31 {
        return Err(bad("more than 31 SPS"));
    }
    if sets.pps.len() > 255 {
        return Err(MuxError::BadParameterSet {
            what: "H.264 PPS",
            reason: "more than 255 PPS",
        });
    }
    let mut out = vec![
        1,
        sps.profile_idc,
        sps.constraints,
        sps.level_idc,
        0xfc | 3, // lengthSizeMinusOne = 3
        0xe0 | sets.sps.len() as u8,
    ];
    for nal in &sets.sps {
        put_nal(&mut out, nal)?;
    }
    out.push(sets.pps.len() as u8);
    for nal in &sets.pps {
        put_nal(&mut out, nal)?;
    }
    if !matches!(sps.profile_idc, 66 | 77 | 88) {
        out.push(0xfc | sps.chroma_format_idc as u8);
        out.push(0xf8 | sps.bit_depth_luma_minus8 as u8);
        out.push(0xf8 | sps.bit_depth_chroma_minus8 as u8);
        out.push(0); // numOfSequenceParameterSetExt
    }
    Ok(out)
}

pub(crate) fn put_nal(out: &mut Vec<u8>, nal: &[u8]) -> Result<(), MuxError> {
    let len = u16::try_from(nal.len()).map_err(|_| MuxError::BadParameterSet {
        what: "parameter set",
        reason: "longer than 65535 bytes",
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(nal);
    Ok(())
}

/// The RFC 6381 codec string: `avc1.PPCCLL`.
pub(crate) fn codec_string(sps: &Sps) -> String {
    format!(
        "avc1.{:02x}{:02x}{:02x}",
        sps.profile_idc, sps.constraints, sps.level_idc
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SPS of the D1 fixture (High, level 3.0, 704x576, no cropping).
    const D1_SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xb2, 0x01, 0x60, 0x24, 0xd0, 0x80, 0x00, 0x00, 0x03, 0x00,
        0x80, 0x00, 0x00, 0x19, 0x07, 0x8b, 0x17, 0x24,
    ];

    #[test]
    fn parses_the_d1_fixture_sps() {
        let sps = parse_sps(D1_SPS).unwrap();
        assert_eq!((sps.width, sps.height), (704, 576));
        assert_eq!((sps.profile_idc, sps.level_idc), (100, 30));
        assert_eq!(codec_string(&sps), "avc1.64001e");
        assert_eq!(sps.chroma_format_idc, 1);
        assert_eq!(sps.reorder_frames, Some(0));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for len in 0..D1_SPS.len() - 1 {
            let _ = parse_sps(&D1_SPS[..len]);
        }
    }
}
