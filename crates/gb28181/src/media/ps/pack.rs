//! The framing of a program stream (ISO/IEC 13818-1 section 2.5.3): where a
//! packet starts, how long a pack header is, how long a packet is.

/// The outcome of looking at the bytes at a packet start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Parsed<T> {
    /// More bytes are needed to tell.
    Need,
    /// Not a valid header: resynchronise.
    Bad,
    Done(T),
}

pub(super) const PACK_START: u8 = 0xba;
pub(super) const PROGRAM_END: u8 = 0xb9;
pub(super) const STREAM_MAP: u8 = 0xbc;

/// Stream ids and the pack, system header and end codes are all >= 0xB9;
/// NAL unit headers in the video payload are < 0x80, so an Annex B start
/// code inside a PES payload is never mistaken for one.
pub(super) fn is_packet_start(code: u8) -> bool {
    code >= PROGRAM_END
}

pub(super) fn is_video_stream(id: u8) -> bool {
    (0xe0..=0xef).contains(&id)
}

/// The offset of the next `00 00 01 xx` with `xx` a packet start, at or
/// after `from`.
pub(super) fn find_packet_start(data: &[u8], from: usize) -> Option<usize> {
    let hay = data.get(from..)?;
    hay.windows(4)
        .position(|w| w[0] == 0 && w[1] == 0 && w[2] == 1 && is_packet_start(w[3]))
        .map(|at| at + from)
}

/// The length of the pack header at the start of `data` (which begins with
/// `00 00 01 BA`): 14 bytes plus stuffing for MPEG-2, 12 for MPEG-1. The
/// stuffing is not checked: Hikvision carries its own data there.
pub(super) fn pack_header_len(data: &[u8]) -> Parsed<usize> {
    let Some(&mark) = data.get(4) else {
        return Parsed::Need;
    };
    if mark >> 6 == 0b01 {
        match data.get(13) {
            Some(&stuffing) => Parsed::Done(14 + usize::from(stuffing & 0x07)),
            None => Parsed::Need,
        }
    } else if mark >> 4 == 0b0010 {
        Parsed::Done(12)
    } else {
        Parsed::Bad
    }
}

/// The whole length of a packet with a 16-bit length field (everything but
/// pack headers and the end code); `Done(6)` for a zero length.
pub(super) fn packet_len(data: &[u8]) -> Parsed<usize> {
    match data.get(4..6) {
        Some(len) => Parsed::Done(6 + usize::from(u16::from_be_bytes([len[0], len[1]]))),
        None => Parsed::Need,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_headers_of_both_generations() {
        // A Hikvision pack header with 6 bytes of stuffing.
        let hik = [0, 0, 1, 0xba, 0x44, 0, 4, 0, 4, 1, 0, 0x5f, 0x6b, 0xfe];
        assert_eq!(pack_header_len(&hik), Parsed::Done(20));
        assert_eq!(pack_header_len(&hik[..13]), Parsed::Need);
        let mpeg1 = [0, 0, 1, 0xba, 0x21, 0, 1, 0, 1, 0x80, 0x14, 0x6b];
        assert_eq!(pack_header_len(&mpeg1), Parsed::Done(12));
        assert_eq!(pack_header_len(&[0, 0, 1, 0xba, 0xff]), Parsed::Bad);
    }

    #[test]
    fn packet_starts_skip_nal_start_codes() {
        let data = [0, 0, 1, 0x65, 0, 0, 1, 0x09, 0, 0, 0, 1, 0xe0, 0];
        assert_eq!(find_packet_start(&data, 0), Some(9));
        assert_eq!(find_packet_start(&data, 10), None);
        assert_eq!(find_packet_start(&data, 100), None);
    }
}
