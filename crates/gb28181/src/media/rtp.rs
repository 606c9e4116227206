//! RTP packets (RFC 3550 section 5.1): the fixed header, CSRC list, header
//! extension and padding. Parsing borrows from the datagram; anything that
//! does not hold together is an [`RtpError`], never a panic.

/// The fixed RTP header is 12 bytes.
pub const HEADER_LEN: usize = 12;

/// One parsed RTP packet, borrowing from the bytes it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Contributing sources, 4 bytes each.
    pub csrc: &'a [u8],
    pub extension: Option<RtpExtension<'a>>,
    /// The payload, padding removed.
    pub payload: &'a [u8],
}

/// A header extension (RFC 3550 section 5.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    pub profile: u16,
    pub data: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("{len} bytes is shorter than an RTP header")]
    TooShort { len: usize },
    #[error("RTP version {0}, expected 2")]
    Version(u8),
    #[error("RTCP packet type {0} on the RTP port")]
    Rtcp(u8),
    #[error("the CSRC list ({count} entries) runs past the packet end")]
    TruncatedCsrc { count: u8 },
    #[error("the header extension runs past the packet end")]
    TruncatedExtension,
    #[error("padding of {padding} bytes but only {available} bytes after the header")]
    BadPadding { padding: usize, available: usize },
}

impl RtpError {
    /// RTCP multiplexed onto the RTP port is not an error, only not media.
    pub fn is_rtcp(&self) -> bool {
        matches!(self, RtpError::Rtcp(_))
    }
}

impl<'a> RtpPacket<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        if buf.len() < HEADER_LEN {
            return Err(RtpError::TooShort { len: buf.len() });
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        // RTCP sender/receiver reports, SDES, BYE, APP (RFC 5761 section 4).
        if (200..=204).contains(&buf[1]) {
            return Err(RtpError::Rtcp(buf[1]));
        }
        let has_padding = buf[0] & 0x20 != 0;
        let has_extension = buf[0] & 0x10 != 0;
        let csrc_count = buf[0] & 0x0f;
        let mut offset = HEADER_LEN;
        let csrc_end = offset + 4 * usize::from(csrc_count);
        let csrc = buf
            .get(offset..csrc_end)
            .ok_or(RtpError::TruncatedCsrc { count: csrc_count })?;
        offset = csrc_end;
        let extension = if has_extension {
            let head = buf
                .get(offset..offset + 4)
                .ok_or(RtpError::TruncatedExtension)?;
            let profile = u16::from_be_bytes([head[0], head[1]]);
            let words = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let data = buf
                .get(offset + 4..offset + 4 + 4 * words)
                .ok_or(RtpError::TruncatedExtension)?;
            offset += 4 + 4 * words;
            Some(RtpExtension { profile, data })
        } else {
            None
        };
        let mut end = buf.len();
        if has_padding {
            let padding = usize::from(buf[end - 1]);
            let available = end - offset;
            if padding == 0 || padding > available {
                return Err(RtpError::BadPadding { padding, available });
            }
            end -= padding;
        }
        Ok(RtpPacket {
            marker: buf[1] & 0x80 != 0,
            payload_type: buf[1] & 0x7f,
            sequence: u16::from_be_bytes([buf[2], buf[3]]),
            timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
            ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
            csrc,
            extension,
            payload: &buf[offset..end],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(first: u8, second: u8) -> Vec<u8> {
        vec![
            first, second, 0x12, 0x34, 0, 0, 0x0e, 0x10, 0xde, 0xad, 0xbe, 0xef,
        ]
    }

    #[test]
    fn plain_packet() {
        let mut p = header(0x80, 0x80 | 96);
        p.extend_from_slice(b"payload");
        let rtp = RtpPacket::parse(&p).unwrap();
        assert!(rtp.marker);
        assert_eq!(rtp.payload_type, 96);
        assert_eq!(rtp.sequence, 0x1234);
        assert_eq!(rtp.timestamp, 3600);
        assert_eq!(rtp.ssrc, 0xdeadbeef);
        assert_eq!(rtp.payload, b"payload");
        assert!(rtp.extension.is_none());
    }

    #[test]
    fn csrc_extension_and_padding() {
        // Two CSRCs, an extension of one word, three bytes of padding.
        let mut p = header(0x80 | 0x20 | 0x10 | 2, 96);
        p.extend_from_slice(&[1, 1, 1, 1, 2, 2, 2, 2]);
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]);
        p.extend_from_slice(b"ps");
        p.extend_from_slice(&[0, 0, 3]);
        let rtp = RtpPacket::parse(&p).unwrap();
        assert_eq!(rtp.csrc, &[1, 1, 1, 1, 2, 2, 2, 2]);
        let ext = rtp.extension.unwrap();
        assert_eq!(ext.profile, 0xbede);
        assert_eq!(ext.data, &[9, 9, 9, 9]);
        assert_eq!(rtp.payload, b"ps");
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(
            RtpPacket::parse(&[0x80; 5]),
            Err(RtpError::TooShort { len: 5 })
        );
        assert_eq!(
            RtpPacket::parse(&header(0x40, 96)),
            Err(RtpError::Version(1))
        );
        assert!(RtpPacket::parse(&header(0x80, 200)).unwrap_err().is_rtcp());
        assert_eq!(
            RtpPacket::parse(&header(0x83, 96)),
            Err(RtpError::TruncatedCsrc { count: 3 })
        );
        let mut ext = header(0x90, 96);
        ext.extend_from_slice(&[0, 0, 0, 9]);
        assert_eq!(RtpPacket::parse(&ext), Err(RtpError::TruncatedExtension));
        let mut pad = header(0xa0, 96);
        pad.extend_from_slice(&[1, 2, 0]);
        assert_eq!(
            RtpPacket::parse(&pad),
            Err(RtpError::BadPadding {
                padding: 0,
                available: 3
            })
        );
        let mut pad = header(0xa0, 96);
        pad.extend_from_slice(&[1, 9]);
        assert_eq!(
            RtpPacket::parse(&pad),
            Err(RtpError::BadPadding {
                padding: 9,
                available: 2
            })
        );
    }
}
