//! PES packet headers (ISO/IEC 13818-1 section 2.4.3.6, and the MPEG-1
//! system layer's form that some muxers still write).

use super::pack::Parsed;

/// What the demuxer needs from a PES header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PesHeader {
    /// 33-bit presentation time stamp, 90 kHz.
    pub pts: Option<u64>,
    /// Offset of the payload from the packet's start code.
    pub payload_start: usize,
}

/// Parses the header of the PES packet at the start of `data`. `complete`:
/// `data` is the whole packet, so a header that does not fit is broken
/// rather than waiting for more bytes.
pub(super) fn parse(data: &[u8], complete: bool) -> Parsed<PesHeader> {
    let short = if complete { Parsed::Bad } else { Parsed::Need };
    let Some(&first) = data.get(6) else {
        return short;
    };
    let header = if first >> 6 == 0b10 {
        mpeg2(data)
    } else {
        mpeg1(data)
    };
    match header {
        Some(Some(h)) if h.payload_start <= data.len() => Parsed::Done(h),
        Some(Some(_)) | None => short,
        Some(None) => Parsed::Bad,
    }
}

/// `None`: too short to tell; `Some(None)`: broken.
fn mpeg2(data: &[u8]) -> Option<Option<PesHeader>> {
    let flags = *data.get(7)?;
    let header_len = usize::from(*data.get(8)?);
    let payload_start = 9 + header_len;
    let pts = if flags & 0x80 != 0 {
        if header_len < 5 {
            return Some(None);
        }
        Some(timestamp(data.get(9..14)?))
    } else {
        None
    };
    Some(Some(PesHeader { pts, payload_start }))
}

fn mpeg1(data: &[u8]) -> Option<Option<PesHeader>> {
    let mut i = 6;
    while *data.get(i)? == 0xff {
        i += 1;
        if i > 6 + 16 {
            return Some(None);
        }
    }
    if data[i] >> 6 == 0b01 {
        i += 2;
    }
    let (pts, len) = match *data.get(i)? >> 4 {
        0b0010 => (Some(timestamp(data.get(i..i + 5)?)), 5),
        0b0011 => (Some(timestamp(data.get(i..i + 5)?)), 10),
        _ if data[i] == 0x0f => (None, 1),
        _ => return Some(None),
    };
    Some(Some(PesHeader {
        pts,
        payload_start: i + len,
    }))
}

/// 90 kHz PTS to seconds since the first one given, across the 33-bit
/// wrap (a camera's PTS wraps every 26.5 hours).
#[derive(Default)]
pub(super) struct PtsClock {
    last: Option<u64>,
    ticks: i64,
    seconds: f64,
}

impl PtsClock {
    /// Seconds at `pts`; without one, the time of the last.
    pub(super) fn seconds(&mut self, pts: Option<u64>) -> f64 {
        const WRAP: u64 = 1 << 33;
        let Some(pts) = pts else {
            return self.seconds;
        };
        if let Some(last) = self.last {
            let diff = pts.wrapping_sub(last) & (WRAP - 1);
            self.ticks += if diff >= WRAP / 2 {
                diff as i64 - WRAP as i64
            } else {
                diff as i64
            };
        }
        self.last = Some(pts);
        self.seconds = self.ticks as f64 / 90_000.0;
        self.seconds
    }
}

/// A 33-bit time stamp spread over 5 bytes with marker bits.
fn timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1) & 0x07) << 30
        | u64::from(b[1]) << 22
        | u64::from(b[2] >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4] >> 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hikvision_headers_with_and_without_pts() {
        // PTS 0x0e5d80aa with two stuffing bytes in the header data.
        let first = [
            0, 0, 1, 0xe0, 0, 0x26, 0x8c, 0x80, 0x07, 0x21, 0x00, 0x07, 0xb0, 0x55, 0xff, 0xfc, 0,
            0, 0, 1,
        ];
        let h = match parse(&first, false) {
            Parsed::Done(h) => h,
            other => panic!("{other:?}"),
        };
        assert_eq!(h.payload_start, 16);
        assert_eq!(h.pts, Some(0x1d82a));
        let next = [
            0, 0, 1, 0xe0, 0, 0x0e, 0x8c, 0, 3, 0xff, 0xff, 0xfc, 0, 0, 0, 1,
        ];
        assert_eq!(
            parse(&next, true),
            Parsed::Done(PesHeader {
                pts: None,
                payload_start: 12
            })
        );
        assert_eq!(parse(&next[..10], false), Parsed::Need);
        assert_eq!(parse(&next[..10], true), Parsed::Bad);
    }

    #[test]
    fn the_clock_unwraps_and_goes_back_for_b_frames() {
        let mut clock = PtsClock::default();
        let near_wrap = (1 << 33) - 3000;
        assert_eq!(clock.seconds(Some(near_wrap)), 0.0);
        assert_eq!(clock.seconds(None), 0.0);
        assert_eq!(clock.seconds(Some(6000)), 0.1);
        assert_eq!(clock.seconds(Some(3000)), 1.0 / 15.0);
    }

    #[test]
    fn mpeg1_headers() {
        let with_pts = [0, 0, 1, 0xe0, 0, 9, 0xff, 0x40, 0, 0x21, 0, 1, 0, 1, 9];
        assert_eq!(
            parse(&with_pts, true),
            Parsed::Done(PesHeader {
                pts: Some(0),
                payload_start: 14
            })
        );
        let bare = [0, 0, 1, 0xe0, 0, 2, 0x0f, 9];
        assert_eq!(
            parse(&bare, true),
            Parsed::Done(PesHeader {
                pts: None,
                payload_start: 7
            })
        );
        let junk = [0, 0, 1, 0xe0, 0, 2, 0x55, 9];
        assert_eq!(parse(&junk, true), Parsed::Bad);
    }
}
