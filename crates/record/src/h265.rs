//! H.265 sequence parameter sets (ITU-T H.265 7.3.2.2, 7.3.3
//! profile_tier_level) and the HEVC decoder configuration record
//! (ISO/IEC 14496-15 8.3.3.1).

use crate::bits::{unescape, BitReader};
use crate::h264::put_nal;
use crate::{MuxError, ParameterSets};
use bytes::Bytes;

const WHAT: &str = "H.265 SPS";

/// What muxing needs from an SPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sps {
    /// general_profile_space .. general_level_idc, the 12 bytes the hvcC
    /// repeats: [space(2) tier(1) profile_idc(5)], 4 bytes of compatibility
    /// flags, 6 bytes of constraint flags, level_idc.
    pub general_ptl: [u8; 12],
    pub max_sub_layers: u8,
    pub temporal_id_nesting: bool,
    pub chroma_format_idc: u32,
    pub bit_depth_luma_minus8: u32,
    pub bit_depth_chroma_minus8: u32,
    /// Picture size after the conformance window.
    pub width: u32,
    pub height: u32,
    /// sps_max_num_reorder_pics of the highest sub-layer.
    pub reorder_pics: u32,
}

fn bad(reason: &'static str) -> MuxError {
    MuxError::BadParameterSet { what: WHAT, reason }
}

/// Parses an SPS NAL unit (2-byte header included, emulation prevention
/// not yet removed).
pub(crate) fn parse_sps(nal: &[u8]) -> Result<Sps, MuxError> {
    let rbsp = unescape(nal);
    if rbsp.len() < 15 || (rbsp[0] >> 1) & 0x3f != 33 {
        return Err(bad("not an SPS"));
    }
    let mut r = BitReader::new(&rbsp[2..], WHAT);
    r.bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)?;
    if max_sub_layers_minus1 > 6 {
        return Err(bad("sps_max_sub_layers_minus1 over 6"));
    }
    let temporal_id_nesting = r.bit()?;
    let mut general_ptl = [0u8; 12];
    general_ptl.copy_from_slice(&rbsp[3..15]);
    r.skip(96)?;
    // Sub-layer profile/level presence flags, then their fields (skipped).
    let mut present = [(false, false); 7];
    for p in present.iter_mut().take(max_sub_layers_minus1 as usize) {
        *p = (r.bit()?, r.bit()?);
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1 as usize))?; // reserved_zero_2bits
    }
    for &(profile, level) in present.iter().take(max_sub_layers_minus1 as usize) {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    r.ue_max(15, "sps_seq_parameter_set_id over 15")?;
    let chroma_format_idc = r.ue_max(3, "chroma_format_idc over 3")?;
    let separate_colour_plane = chroma_format_idc == 3 && r.bit()?;
    let width = u64::from(r.ue_max(1 << 20, "picture too wide")?);
    let height = u64::from(r.ue_max(1 << 20, "picture too tall")?);
    if width == 0 || height == 0 {
        return Err(bad("empty picture"));
    }
    let (mut width, mut height) = (width, height);
    if r.bit()? {
        // conformance_window_flag: offsets in chroma sample units (7-2..7-3)
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
        let left = u64::from(r.ue()?);
        let right = u64::from(r.ue()?);
        let top = u64::from(r.ue()?);
        let bottom = u64::from(r.ue()?);
        width = width
            .checked_sub((left + right) * sub_w)
            .filter(|w| *w > 0)
            .ok_or_else(|| bad("conformance window wider than the picture"))?;
        height = height
            .checked_sub((top + bottom) * sub_h)
            .filter(|h| *h > 0)
            .ok_or_else(|| bad("conformance window taller than the picture"))?;
    }
    let depth_luma = r.ue_max(8, "bit_depth_luma_minus8 over 8")?;
    let depth_chroma = r.ue_max(8, "bit_depth_chroma_minus8 over 8")?;
    if depth_luma > 7 || depth_chroma > 7 {
        return Err(MuxError::Unsupported(
            "16-bit H.265 does not fit the hvcC's 3-bit depth fields".into(),
        ));
    }
    r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4 over 12")?;
    let ordering_info_for_all = r.bit()?;
    let first = if ordering_info_for_all {
        0
    } else {
        max_sub_layers_minus1
    };
    let mut reorder_pics = 0;
    for _ in first..=max_sub_layers_minus1 {
        r.ue_max(15, "sps_max_dec_pic_buffering_minus1 over 15")?;
        reorder_pics = r.ue_max(15, "sps_max_num_reorder_pics over 15")?;
        r.ue()?; // sps_max_latency_increase_plus1
    }
    Ok(Sps {
        general_ptl,
        max_sub_layers: max_sub_layers_minus1 as u8 + 1,
        temporal_id_nesting,
        chroma_format_idc,
        bit_depth_luma_minus8: depth_luma,
        bit_depth_chroma_minus8: depth_chroma,
        width: u32::try_from(width).map_err(|_| bad("picture too wide"))?,
        height: u32::try_from(height).map_err(|_| bad("picture too tall"))?,
        reorder_pics,
    })
}

/// The HEVCDecoderConfigurationRecord (the payload of an `hvcC` box), with
/// arrays of the VPS, SPS and PPS, each complete (no sets in-band: `hvc1`).
pub(crate) fn hevc_config(sps: &Sps, sets: &ParameterSets) -> Result<Vec<u8>, MuxError> {
    let mut out = Vec::with_capacity(64);
    out.push(1);
    out.extend_from_slice(&sps.general_ptl);
    out.extend_from_slice(&0xf000u16.to_be_bytes()); // min_spatial_segmentation_idc 0
    out.push(0xfc); // parallelismType 0: unknown
    out.push(0xfc | sps.chroma_format_idc as u8);
    out.push(0xf8 | sps.bit_depth_luma_minus8 as u8);
    out.push(0xf8 | sps.bit_depth_chroma_minus8 as u8);
    out.extend_from_slice(&0u16.to_be_bytes()); // avgFrameRate: unspecified
    out.push(
        // constantFrameRate 0, numTemporalLayers, temporalIdNested,
        // lengthSizeMinusOne 3
        (sps.max_sub_layers << 3) | (u8::from(sps.temporal_id_nesting) << 2) | 3,
    );
    let arrays: [(u8, &Vec<Bytes>); 3] = [(32, &sets.vps), (33, &sets.sps), (34, &sets.pps)];
    out.push(arrays.iter().filter(|(_, a)| !a.is_empty()).count() as u8);
    for (nal_type, nals) in arrays {
        if nals.is_empty() {
            continue;
        }
        out.push(0x80 | nal_type); // array_completeness 1
        let count = u16::try_from(nals.len()).map_err(|_| bad("too many parameter sets"))?;
        out.extend_from_slice(&count.to_be_bytes());
        for nal in nals {
            put_nal(&mut out, nal)?;
        }
    }
    Ok(out)
}

/// The codec string of ISO/IEC 14496-15 Annex E: `hvc1.` profile space
/// letter and profile_idc, compatibility flags bit-reversed in hex, tier
/// letter and level_idc, then the constraint bytes in hex with trailing
/// zero bytes left out (e.g. `hvc1.1.6.L93.B0`).
pub(crate) fn codec_string(sps: &Sps) -> String {
    let ptl = &sps.general_ptl;
    let space = ["", "A", "B", "C"][usize::from(ptl[0] >> 6)];
    let tier = if ptl[0] & 0x20 != 0 { 'H' } else { 'L' };
    let compat = u32::from_be_bytes([ptl[1], ptl[2], ptl[3], ptl[4]]).reverse_bits();
    let mut s = format!("hvc1.{space}{}.{compat:X}.{tier}{}", ptl[0] & 0x1f, ptl[11]);
    let constraints = &ptl[5..11];
    let used = constraints
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraints[..used] {
        s.push_str(&format!(".{b:X}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SPS of the H.265 fixture (Main, level 3, 768x576), from the
    /// hvcC ffmpeg wrote.
    const SPS: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x5a, 0xa0, 0x06, 0x02, 0x00, 0x90, 0x59, 0x64, 0xa9, 0x24, 0xca, 0xe6, 0x80,
        0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x05, 0x04,
    ];

    #[test]
    fn parses_the_fixture_sps() {
        let sps = parse_sps(SPS).unwrap();
        assert_eq!((sps.width, sps.height), (768, 576));
        assert_eq!(sps.general_ptl[0], 0x01);
        assert_eq!(sps.general_ptl[11], 90);
        assert_eq!(sps.max_sub_layers, 1);
        assert!(sps.temporal_id_nesting);
        assert_eq!(sps.chroma_format_idc, 1);
        assert_eq!(sps.reorder_pics, 0);
        assert_eq!(codec_string(&sps), "hvc1.1.6.L90.90");
    }

    #[test]
    fn codec_string_of_the_spec_example() {
        // Main 10, High tier, level 4 (120), progressive+non-packed+frame-only.
        let mut ptl = [0u8; 12];
        ptl[0] = 0x22; // space 0, tier 1, profile 2
        ptl[1..5].copy_from_slice(&0x2000_0000u32.to_be_bytes());
        ptl[5] = 0xb0;
        ptl[11] = 120;
        let sps = Sps {
            general_ptl: ptl,
            max_sub_layers: 1,
            temporal_id_nesting: true,
            chroma_format_idc: 1,
            bit_depth_luma_minus8: 2,
            bit_depth_chroma_minus8: 2,
            width: 1920,
            height: 1080,
            reorder_pics: 0,
        };
        assert_eq!(codec_string(&sps), "hvc1.2.4.H120.B0");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for len in 0..SPS.len() - 1 {
            let _ = parse_sps(&SPS[..len]);
        }
    }
}
