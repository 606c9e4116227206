//! Just enough of H.264 (ITU-T H.264 section 7.3.1) and H.265 (section
//! 7.3.1.2) NAL unit headers to find key frames, parameter sets and where a
//! picture starts, and to tell the two codecs apart without a PSM.

use xueliang_core::VideoCodec;

/// The NAL units of an Annex B byte stream, start codes and trailing zero
/// bytes removed. Bytes before the first start code are skipped.
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = match find_start_code(data, 0) {
        Some(at) => &data[at + 3..],
        None => &data[data.len()..],
    };
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (nal, next) = match find_start_code(rest, 0) {
            Some(at) => (&rest[..at], &rest[at + 3..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let end = nal.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        Some(&nal[..end])
    })
    .filter(|nal| !nal.is_empty())
}

/// The offset of the next `00 00 01` at or after `from`.
pub fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let hay = data.get(from..)?;
    hay.windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|at| at + from)
}

/// Whether `data` opens with a start code (three or four bytes).
pub fn starts_with_start_code(data: &[u8]) -> bool {
    data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1])
}

/// Parameter sets, kept per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Vps,
    Sps,
    Pps,
}

/// What a NAL unit is, as far as access-unit assembly cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NalKind {
    /// A coded slice. `random_access`: IDR (H.264) or IRAP 16-21 (H.265).
    /// `first_in_picture`: first_mb_in_slice == 0 (H.264) or
    /// first_slice_segment_in_pic_flag (H.265).
    Slice {
        random_access: bool,
        first_in_picture: bool,
    },
    Param(ParamKind),
    /// Units that may only come before a picture's first slice: access unit
    /// delimiter, prefix SEI and the like.
    Leading,
    Other,
}

impl NalKind {
    pub fn of(codec: VideoCodec, nal: &[u8]) -> NalKind {
        match codec {
            VideoCodec::H264 => h264_kind(nal),
            VideoCodec::H265 => h265_kind(nal),
        }
    }

    /// Whether this NAL unit begins a new access unit when the current one
    /// already has a slice (H.264 7.4.1.2.3, H.265 7.4.2.4.4, simplified).
    pub fn starts_access_unit(self) -> bool {
        match self {
            NalKind::Slice {
                first_in_picture, ..
            } => first_in_picture,
            NalKind::Param(_) | NalKind::Leading => true,
            NalKind::Other => false,
        }
    }
}

fn h264_kind(nal: &[u8]) -> NalKind {
    let Some(&header) = nal.first() else {
        return NalKind::Other;
    };
    let first_in_picture = nal.get(1).is_some_and(|b| b & 0x80 != 0);
    match header & 0x1f {
        1..=4 => NalKind::Slice {
            random_access: false,
            first_in_picture,
        },
        5 => NalKind::Slice {
            random_access: true,
            first_in_picture,
        },
        7 => NalKind::Param(ParamKind::Sps),
        8 => NalKind::Param(ParamKind::Pps),
        6 | 9 | 13..=18 => NalKind::Leading,
        _ => NalKind::Other,
    }
}

fn h265_kind(nal: &[u8]) -> NalKind {
    let Some(&header) = nal.first() else {
        return NalKind::Other;
    };
    let first_in_picture = nal.get(2).is_some_and(|b| b & 0x80 != 0);
    match (header >> 1) & 0x3f {
        t @ 0..=31 => NalKind::Slice {
            random_access: (16..=21).contains(&t),
            first_in_picture,
        },
        32 => NalKind::Param(ParamKind::Vps),
        33 => NalKind::Param(ParamKind::Sps),
        34 => NalKind::Param(ParamKind::Pps),
        35 | 39 | 41..=44 | 48..=55 => NalKind::Leading,
        _ => NalKind::Other,
    }
}

/// The codec a NAL unit header proves, if it is decisive: an H.265 VPS, SPS
/// or PPS (`40 01`, `42 01`, `44 01`: base layer, temporal id 1) or an
/// H.264 SPS or IDR slice (type 7 or 5 with nal_ref_idc set, which as an
/// H.265 header would name a reserved type or a non-base layer).
pub fn guess_codec(nal: &[u8]) -> Option<VideoCodec> {
    let (&b0, rest) = nal.split_first()?;
    if b0 & 0x80 != 0 {
        return None;
    }
    if b0 & 0x01 == 0 && rest.first() == Some(&0x01) && (32..=34).contains(&(b0 >> 1)) {
        return Some(VideoCodec::H265);
    }
    if b0 & 0x60 != 0 && matches!(b0 & 0x1f, 5 | 7) {
        return Some(VideoCodec::H264);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_annex_b_with_three_and_four_byte_start_codes() {
        let data = [
            9, 9, 0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 0, 0, 1, 0x65, 0x88,
        ];
        let nals: Vec<&[u8]> = nal_units(&data).collect();
        assert_eq!(nals, vec![&[0x67, 1][..], &[0x68, 2], &[0x65, 0x88]]);
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
    }

    #[test]
    fn kinds_of_real_headers() {
        use VideoCodec::*;
        assert_eq!(
            NalKind::of(H264, &[0x67, 0x64]),
            NalKind::Param(ParamKind::Sps)
        );
        assert_eq!(
            NalKind::of(H264, &[0x65, 0x88]),
            NalKind::Slice {
                random_access: true,
                first_in_picture: true
            }
        );
        assert_eq!(
            NalKind::of(H264, &[0x41, 0x20]),
            NalKind::Slice {
                random_access: false,
                first_in_picture: false
            }
        );
        assert_eq!(
            NalKind::of(H265, &[0x40, 0x01, 0x0c]),
            NalKind::Param(ParamKind::Vps)
        );
        assert_eq!(
            NalKind::of(H265, &[0x2a, 0x01, 0xaf]),
            NalKind::Slice {
                random_access: true,
                first_in_picture: true
            }
        );
        assert_eq!(NalKind::of(H265, &[0x4e, 0x01, 0x05]), NalKind::Leading);
    }

    #[test]
    fn codec_guesses_only_on_decisive_units() {
        for nal in [
            [0x67u8, 0x64, 0],
            [0x27, 0x42, 0],
            [0x65, 0x88, 0x84],
            [0x25, 0xb8, 0],
        ] {
            assert_eq!(guess_codec(&nal), Some(VideoCodec::H264), "{nal:02x?}");
        }
        for nal in [[0x40u8, 0x01, 0x0c], [0x42, 0x01, 0x01], [0x44, 0x01, 0xc1]] {
            assert_eq!(guess_codec(&nal), Some(VideoCodec::H265), "{nal:02x?}");
        }
        for nal in [
            [0x41u8, 0x9a, 0],
            [0x06, 0x05, 0],
            [0x02, 0x01, 0xd0],
            [0x26, 0x01, 0xaf],
        ] {
            assert_eq!(guess_codec(&nal), None, "{nal:02x?}");
        }
    }
}
