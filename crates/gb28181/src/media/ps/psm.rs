//! The program stream map (ISO/IEC 13818-1 section 2.5.4): which stream id
//! carries which stream type. GB/T 28181 devices send it before key frames.

/// H.264 (ISO/IEC 14496-10).
pub(super) const STREAM_TYPE_H264: u8 = 0x1b;
/// H.265 (ISO/IEC 23008-2).
pub(super) const STREAM_TYPE_H265: u8 = 0x24;

/// The (stream id, stream type) entries of the map in `packet`, which is
/// a whole PSM packet from its start code. The CRC is not checked: devices
/// get it wrong and the lengths already bound what is read.
pub(super) fn parse(packet: &[u8]) -> Option<Vec<(u8, u8)>> {
    let body = packet.get(6..)?;
    let info_len = usize::from(u16::from_be_bytes([*body.get(2)?, *body.get(3)?]));
    let at = 4 + info_len;
    let map_len = usize::from(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]));
    let map = body.get(at + 2..at + 2 + map_len)?;
    let mut entries = Vec::new();
    let mut i = 0;
    while i < map.len() {
        let entry = map.get(i..i + 4)?;
        let es_info_len = usize::from(u16::from_be_bytes([entry[2], entry[3]]));
        entries.push((entry[1], entry[0]));
        i += 4 + es_info_len;
    }
    (i == map.len()).then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hikvision_like_map_with_descriptors() {
        let mut psm = vec![0, 0, 1, 0xbc, 0, 0, 0xe0, 0xff, 0, 4, 0x0a, 2, 0x48, 0x4b];
        psm.extend_from_slice(&[0, 14]);
        psm.extend_from_slice(&[0x1b, 0xe0, 0, 2, 0x28, 0]);
        psm.extend_from_slice(&[0x90, 0xc0, 0, 0]);
        psm.extend_from_slice(&[0x24, 0xe1, 0, 0]);
        psm.extend_from_slice(&[1, 2, 3, 4]);
        let len = (psm.len() - 6) as u16;
        psm[4..6].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            parse(&psm),
            Some(vec![(0xe0, 0x1b), (0xc0, 0x90), (0xe1, 0x24)])
        );
        let broken = &psm[..psm.len() - 8];
        assert_eq!(parse(broken), None);
    }
}
