//! RTP over TCP with RFC 4571 framing: each packet is preceded by its
//! length in two bytes, big endian. GB/T 28181 uses it for TCP media.
//!
//! A zero length, a length over the limit, or a frame that does not start
//! like RTP (version 2) means the framing was lost (a broken sender, or
//! garbage on the connection): the deframer reports it once, then looks for
//! the next place where a plausible frame starts, one byte at a time.

use bytes::{Buf, Bytes, BytesMut};

/// The largest frame the two-byte length can announce.
pub const MAX_FRAME_LEN: usize = 65535;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("RFC 4571 frame of length zero")]
    ZeroLength,
    #[error("RFC 4571 frame of {len} bytes, over the {max} byte limit")]
    Oversized { len: usize, max: usize },
    #[error("RFC 4571 frame that does not start with an RTP version 2 header")]
    NotRtp,
}

/// Splits a TCP byte stream into RTP packets.
#[derive(Debug)]
pub struct Rfc4571Deframer {
    buf: BytesMut,
    max_frame: usize,
    /// Looking for the framing again; the error was already reported.
    resyncing: bool,
}

impl Rfc4571Deframer {
    /// `max_frame`: the longest frame accepted (at most [`MAX_FRAME_LEN`]).
    pub fn new(max_frame: usize) -> Self {
        Rfc4571Deframer {
            buf: BytesMut::with_capacity(2 * MAX_FRAME_LEN),
            max_frame: max_frame.min(MAX_FRAME_LEN),
            resyncing: false,
        }
    }

    /// Where received bytes go (`AsyncReadExt::read_buf` is cancel-safe).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        if self.buf.capacity() - self.buf.len() < MAX_FRAME_LEN {
            self.buf.reserve(MAX_FRAME_LEN);
        }
        &mut self.buf
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, an error when the framing was just lost, or
    /// `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Bytes, FramingError>> {
        loop {
            if self.buf.len() < 3 {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
            let problem = if len == 0 {
                Some(FramingError::ZeroLength)
            } else if len > self.max_frame {
                Some(FramingError::Oversized {
                    len,
                    max: self.max_frame,
                })
            } else if self.buf[2] >> 6 != 2 {
                Some(FramingError::NotRtp)
            } else {
                None
            };
            if let Some(problem) = problem {
                self.buf.advance(1);
                if !std::mem::replace(&mut self.resyncing, true) {
                    return Some(Err(problem));
                }
                continue;
            }
            if self.buf.len() < 2 + len {
                return None;
            }
            self.resyncing = false;
            self.buf.advance(2);
            return Some(Ok(self.buf.split_to(len).freeze()));
        }
    }
}

/// Frames one packet for sending.
pub fn frame(packet: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(packet.len()).ok().filter(|&l| l > 0)?;
    let mut out = Vec::with_capacity(2 + packet.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(packet);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(n: usize) -> Vec<u8> {
        let mut p = vec![0x80u8; n];
        p[1] = 96;
        p
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let mut stream = Vec::new();
        for n in [12, 1400, 12] {
            stream.extend(frame(&rtp(n)).unwrap());
        }
        for split in 0..stream.len() {
            let mut d = Rfc4571Deframer::new(MAX_FRAME_LEN);
            let mut got = Vec::new();
            for part in [&stream[..split], &stream[split..]] {
                d.extend(part);
                while let Some(f) = d.next_frame() {
                    got.push(f.unwrap().len());
                }
            }
            assert_eq!(got, vec![12, 1400, 12], "split at {split}");
        }
    }

    #[test]
    fn bad_lengths_are_reported_once_then_the_stream_resyncs() {
        let mut d = Rfc4571Deframer::new(2000);
        d.extend(&[0, 0, 0x80]);
        d.extend(&[0xff, 0xff, 0x80, 0x99]);
        d.extend(&frame(&rtp(20)).unwrap());
        assert_eq!(d.next_frame(), Some(Err(FramingError::ZeroLength)));
        assert_eq!(d.next_frame().unwrap().unwrap().len(), 20);
        assert_eq!(d.next_frame(), None);

        let mut d = Rfc4571Deframer::new(2000);
        d.extend(&[0x0f, 0xff, 0x80]);
        assert_eq!(
            d.next_frame(),
            Some(Err(FramingError::Oversized {
                len: 4095,
                max: 2000
            }))
        );
        let mut d = Rfc4571Deframer::new(2000);
        d.extend(&[0, 5, 0x40, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Some(Err(FramingError::NotRtp)));
    }

    #[test]
    fn frame_refuses_what_two_bytes_cannot_say() {
        assert!(frame(&[]).is_none());
        assert!(frame(&vec![0; 65536]).is_none());
        assert_eq!(frame(&[1, 2]), Some(vec![0, 2, 1, 2]));
    }
}
