//! PS bytes into RTP packets, as GB/T 28181 devices send them: payload type
//! 96, a 90 kHz timestamp, each frame starting a new packet and the last
//! packet of a frame marked.

/// RTP packets of one stream (one SSRC, consecutive sequence numbers).
#[derive(Clone, Debug)]
pub struct RtpPacketizer {
    pub ssrc: u32,
    pub payload_type: u8,
    /// The largest payload per packet (1400 keeps UDP datagrams under a
    /// 1500-byte MTU).
    pub max_payload: usize,
    next_sequence: u16,
}

impl RtpPacketizer {
    pub fn new(ssrc: u32, first_sequence: u16) -> Self {
        RtpPacketizer {
            ssrc,
            payload_type: 96,
            max_payload: 1400,
            next_sequence: first_sequence,
        }
    }

    /// The packets carrying one frame's PS bytes.
    pub fn packetize(&mut self, ps: &[u8], timestamp: u32) -> Vec<Vec<u8>> {
        let chunks: Vec<&[u8]> = ps.chunks(self.max_payload.max(1)).collect();
        let last = chunks.len().saturating_sub(1);
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| {
                let mut packet = Vec::with_capacity(12 + chunk.len());
                packet.push(0x80);
                packet.push(self.payload_type & 0x7f | if i == last { 0x80 } else { 0 });
                packet.extend_from_slice(&self.next_sequence.to_be_bytes());
                packet.extend_from_slice(&timestamp.to_be_bytes());
                packet.extend_from_slice(&self.ssrc.to_be_bytes());
                packet.extend_from_slice(chunk);
                self.next_sequence = self.next_sequence.wrapping_add(1);
                packet
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::RtpPacket;

    #[test]
    fn packets_parse_back_with_marker_on_the_last() {
        let mut p = RtpPacketizer::new(0x0100_0001, 65535);
        p.max_payload = 4;
        let packets = p.packetize(b"0123456789", 3600);
        assert_eq!(packets.len(), 3);
        let parsed: Vec<_> = packets
            .iter()
            .map(|b| RtpPacket::parse(b).unwrap())
            .collect();
        assert_eq!(
            parsed.iter().map(|r| r.sequence).collect::<Vec<_>>(),
            vec![65535, 0, 1]
        );
        assert_eq!(
            parsed.iter().map(|r| r.marker).collect::<Vec<_>>(),
            vec![false, false, true]
        );
        let payload: Vec<u8> = parsed.iter().flat_map(|r| r.payload.to_vec()).collect();
        assert_eq!(payload, b"0123456789");
        assert!(parsed
            .iter()
            .all(|r| r.ssrc == 0x0100_0001 && r.timestamp == 3600));
    }
}
