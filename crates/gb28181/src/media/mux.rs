//! A program stream muxer shaped like the devices': a pack header per
//! frame, the system header and PSM before key frames, PES packets of at
//! most 64 kB (one per NAL unit, like Hikvision, or cut by size), the PTS
//! on a frame's first PES, optionally a G.711 audio PES per frame.

use crate::media::nal;
use xueliang_core::VideoCodec;

const VIDEO_STREAM: u8 = 0xe0;
const AUDIO_STREAM: u8 = 0xc0;
/// G.711 A-law, as Hikvision's PSM names it.
const STREAM_TYPE_G711A: u8 = 0x90;

#[derive(Clone, Debug)]
pub struct MuxOptions {
    pub codec: VideoCodec,
    /// System header and PSM before every key frame.
    pub psm: bool,
    /// One PES per NAL unit (Hikvision); otherwise the frame is cut by size.
    pub pes_per_nal: bool,
    /// The largest PES payload (at most 65535 - 8).
    pub max_pes_payload: usize,
    /// A pack header before every PES rather than once per frame.
    pub pack_per_pes: bool,
    /// The PTS on every PES of a frame rather than only the first.
    pub pts_on_every_pes: bool,
    /// A 20 ms G.711 audio PES after each frame.
    pub audio: bool,
    /// Stuffing bytes in pack headers (0-7).
    pub pack_stuffing: u8,
}

impl MuxOptions {
    /// What a Hikvision camera sends.
    pub fn hikvision(codec: VideoCodec) -> Self {
        MuxOptions {
            codec,
            psm: true,
            pes_per_nal: true,
            max_pes_payload: 65_000,
            pack_per_pes: false,
            pts_on_every_pes: false,
            audio: false,
            pack_stuffing: 6,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PsMuxer {
    pub options: MuxOptions,
}

impl PsMuxer {
    pub fn new(options: MuxOptions) -> Self {
        PsMuxer { options }
    }

    /// The PS bytes of one access unit (Annex B) with its 90 kHz PTS.
    pub fn mux(&self, unit: &[u8], pts: u64, is_key: bool) -> Vec<u8> {
        let o = &self.options;
        let scr = pts.wrapping_sub(3600) & ((1 << 33) - 1);
        let mut out = Vec::with_capacity(unit.len() + 256);
        pack_header(&mut out, scr, o.pack_stuffing);
        if is_key && o.psm {
            system_header(&mut out, o.audio);
            stream_map(&mut out, o.codec, o.audio);
        }
        let max = o.max_pes_payload.clamp(1, 65535 - 8);
        let pieces = if o.pes_per_nal {
            nal_pieces(unit)
        } else {
            vec![unit]
        };
        let mut first = true;
        for piece in pieces {
            for chunk in piece.chunks(max) {
                if o.pack_per_pes && !first {
                    pack_header(&mut out, scr, o.pack_stuffing);
                }
                let pts = (first || o.pts_on_every_pes).then_some(pts);
                pes(&mut out, VIDEO_STREAM, pts, chunk);
                first = false;
            }
        }
        if o.audio {
            pes(&mut out, AUDIO_STREAM, Some(pts), &[0xd5; 160]);
        }
        out
    }
}

/// `unit` cut before each start code (a four-byte one's leading zero
/// included), so the pieces concatenate back to `unit`.
fn nal_pieces(unit: &[u8]) -> Vec<&[u8]> {
    let mut cuts = vec![0];
    let mut from = 1;
    while let Some(at) = nal::find_start_code(unit, from) {
        let cut = if at > 0 && unit[at - 1] == 0 {
            at - 1
        } else {
            at
        };
        if cut > *cuts.last().unwrap_or(&0) {
            cuts.push(cut);
        }
        from = at + 3;
    }
    cuts.push(unit.len());
    cuts.windows(2)
        .map(|w| &unit[w[0]..w[1]])
        .filter(|p| !p.is_empty())
        .collect()
}

fn pack_header(out: &mut Vec<u8>, scr: u64, stuffing: u8) {
    let stuffing = stuffing & 0x07;
    // Hikvision's mux rate, in units of 50 bytes/s.
    let mux_rate: u32 = 6106;
    out.extend_from_slice(&[0, 0, 1, 0xba]);
    out.extend_from_slice(&[
        0x40 | ((scr >> 27) & 0x38) as u8 | 0x04 | ((scr >> 28) & 0x03) as u8,
        (scr >> 20) as u8,
        ((scr >> 12) & 0xf8) as u8 | 0x04 | ((scr >> 13) & 0x03) as u8,
        (scr >> 5) as u8,
        ((scr << 3) & 0xf8) as u8 | 0x04,
        0x01,
        (mux_rate >> 14) as u8,
        (mux_rate >> 6) as u8,
        ((mux_rate << 2) & 0xfc) as u8 | 0x03,
        0xf8 | stuffing,
    ]);
    out.extend(std::iter::repeat_n(0xff, usize::from(stuffing)));
}

fn system_header(out: &mut Vec<u8>, audio: bool) {
    let rate_bound: u32 = 6106;
    let mut body = vec![
        0x80 | (rate_bound >> 15) as u8,
        (rate_bound >> 7) as u8,
        ((rate_bound << 1) & 0xfe) as u8 | 0x01,
        // audio_bound, fixed_flag 0, CSPS_flag 0
        u8::from(audio) << 2,
        // system_audio_lock, system_video_lock, marker, video_bound 1
        0xe1,
        // packet_rate_restriction_flag 0, reserved
        0x7f,
        // the video stream: buffer bound scale 1024, 128 kB
        VIDEO_STREAM,
        0xe0,
        0x80,
    ];
    if audio {
        // the audio stream: scale 128, 4 kB
        body.extend_from_slice(&[AUDIO_STREAM, 0xc0, 0x20]);
    }
    out.extend_from_slice(&[0, 0, 1, 0xbb]);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
}

fn stream_map(out: &mut Vec<u8>, codec: VideoCodec, audio: bool) {
    let video_type = match codec {
        VideoCodec::H264 => 0x1b,
        VideoCodec::H265 => 0x24,
    };
    let mut entries = vec![video_type, VIDEO_STREAM, 0, 0];
    if audio {
        entries.extend_from_slice(&[STREAM_TYPE_G711A, AUDIO_STREAM, 0, 0]);
    }
    let mut packet = vec![0, 0, 1, 0xbc, 0, 0];
    // current_next_indicator 1, version 0; marker; no program descriptors.
    packet.extend_from_slice(&[0xe0, 0xff, 0, 0]);
    packet.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    packet.extend_from_slice(&entries);
    let len = (packet.len() - 6 + 4) as u16;
    packet[4..6].copy_from_slice(&len.to_be_bytes());
    let crc = crc32_mpeg2(&packet);
    packet.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&packet);
}

fn pes(out: &mut Vec<u8>, stream: u8, pts: Option<u64>, payload: &[u8]) {
    let header_data = if pts.is_some() { 5 } else { 0 };
    let len = 3 + header_data + payload.len();
    out.extend_from_slice(&[0, 0, 1, stream]);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.push(0x80);
    match pts {
        Some(pts) => {
            out.extend_from_slice(&[0x80, 5]);
            out.extend_from_slice(&[
                0x21 | ((pts >> 29) & 0x0e) as u8,
                (pts >> 22) as u8,
                ((pts >> 14) & 0xfe) as u8 | 0x01,
                (pts >> 7) as u8,
                ((pts << 1) & 0xfe) as u8 | 0x01,
            ]);
        }
        None => out.extend_from_slice(&[0x00, 0]),
    }
    out.extend_from_slice(payload);
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, no reflection, no final xor).
fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_the_check_string() {
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
    }

    #[test]
    fn pieces_concatenate_back() {
        let unit = [0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 3];
        let pieces = nal_pieces(&unit);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), unit);
        assert!(pieces.iter().all(|p| nal::starts_with_start_code(p)));
    }
}
