//! A clip's video read once with the `ffmpeg` and `ffprobe` commands (at
//! start, before any client: they block), cut into access units, and each
//! access unit packetized into RTP once, already framed for RTSP's
//! interleaved TCP (`$`, channel, length). A client copies a frame's bytes
//! and writes its own channel, sequence numbers, time stamp and SSRC into
//! the copy ([`Frame::write_to`]).

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The RTP payload type of the video, as in the SDP.
pub const PAYLOAD_TYPE: u8 = 96;
/// RTP's clock rate for video.
pub const CLOCK_RATE: u64 = 90_000;
/// Bytes before each RTP packet on the RTSP connection: `$`, channel, length.
const INTERLEAVED_HEADER: usize = 4;
const RTP_HEADER: usize = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

impl Codec {
    /// The encoding name in `a=rtpmap`.
    pub fn rtp_name(self) -> &'static str {
        match self {
            Codec::H264 => "H264",
            Codec::H265 => "H265",
        }
    }

    /// ffmpeg's raw format of the codec, and the bitstream filters that
    /// turn an MP4's samples into Annex B with an access unit delimiter at
    /// the start of every access unit (so units need no guessing to cut).
    fn ffmpeg_raw(self) -> (&'static str, &'static str) {
        match self {
            Codec::H264 => ("h264", "h264_mp4toannexb,h264_metadata=aud=insert"),
            Codec::H265 => ("hevc", "hevc_mp4toannexb,hevc_metadata=aud=insert"),
        }
    }

    /// Bytes of a NAL unit header.
    fn header_len(self) -> usize {
        match self {
            Codec::H264 => 1,
            Codec::H265 => 2,
        }
    }

    fn nal_type(self, nal: &[u8]) -> u8 {
        match self {
            Codec::H264 => nal[0] & 0x1f,
            Codec::H265 => (nal[0] >> 1) & 0x3f,
        }
    }

    fn is_delimiter(self, nal_type: u8) -> bool {
        match self {
            Codec::H264 => nal_type == 9,
            Codec::H265 => nal_type == 35,
        }
    }

    /// An IDR slice (H.264) or an IRAP picture's slice (H.265): where a
    /// decoder can start.
    fn is_key(self, nal_type: u8) -> bool {
        match self {
            Codec::H264 => nal_type == 5,
            Codec::H265 => (16..=23).contains(&nal_type),
        }
    }

    /// Which parameter set a NAL unit is: 0 VPS, 1 SPS, 2 PPS.
    fn parameter_set(self, nal_type: u8) -> Option<usize> {
        match (self, nal_type) {
            (Codec::H264, 7) | (Codec::H265, 33) => Some(1),
            (Codec::H264, 8) | (Codec::H265, 34) => Some(2),
            (Codec::H265, 32) => Some(0),
            _ => None,
        }
    }

    /// The parameter sets the codec needs (indices as in `parameter_set`).
    fn needed_parameter_sets(self) -> &'static [usize] {
        match self {
            Codec::H264 => &[1, 2],
            Codec::H265 => &[0, 1, 2],
        }
    }
}

/// One access unit, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// When to send it: its decode time, 90 kHz after the first frame's.
    pub send_at: u64,
    /// Its presentation time from the same origin (the RTP time stamp's
    /// offset).
    pub pts: u64,
    /// An IDR/IRAP picture, with the parameter sets in front of it.
    pub key: bool,
    /// The RTP packets, each after its interleaved header, with channel 0,
    /// sequence number, time stamp and SSRC 0; the marker bit is set on the
    /// last.
    wire: Vec<u8>,
    /// Where each interleaved header starts in `wire`.
    packets: Vec<usize>,
}

impl Frame {
    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.wire.len()
    }

    pub fn packet_count(&self) -> usize {
        self.packets.len()
    }

    /// Appends the frame to `out` as one client sends it: on `channel`,
    /// from sequence number `*seq` (advanced past the frame's packets),
    /// with time stamp `timestamp` and `ssrc`. Returns the RTP payload
    /// bytes written (for sender reports).
    pub fn write_to(
        &self,
        out: &mut Vec<u8>,
        channel: u8,
        seq: &mut u16,
        timestamp: u32,
        ssrc: u32,
    ) -> usize {
        let base = out.len();
        out.extend_from_slice(&self.wire);
        for &at in &self.packets {
            let p = base + at;
            out[p + 1] = channel;
            let rtp = p + INTERLEAVED_HEADER;
            out[rtp + 2..rtp + 4].copy_from_slice(&seq.to_be_bytes());
            out[rtp + 4..rtp + 8].copy_from_slice(&timestamp.to_be_bytes());
            out[rtp + 8..rtp + 12].copy_from_slice(&ssrc.to_be_bytes());
            *seq = seq.wrapping_add(1);
        }
        self.wire.len() - self.packets.len() * (INTERLEAVED_HEADER + RTP_HEADER)
    }
}

/// A clip ready to serve: frames from its first key frame on.
#[derive(Clone, Debug)]
pub struct Clip {
    pub codec: Codec,
    pub frames: Vec<Frame>,
    /// One pass of the clip, 90 kHz: what each loop adds to the times.
    pub period: u64,
    /// VPS (H.265 only), SPS, PPS: the first of each in the stream, without
    /// start code.
    parameter_sets: [Option<Vec<u8>>; 3],
}

/// A packet's times from ffprobe, in 90 kHz units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketTime {
    pub dts: i64,
    pub pts: i64,
    /// 0 when unknown.
    pub duration: i64,
}

impl Clip {
    /// Reads the first video stream of `path` (ffprobe for the codec and
    /// each packet's times, ffmpeg for the bitstream) and packetizes it with
    /// RTP payloads of at most `max_payload` bytes.
    pub fn read(path: &Path, max_payload: usize) -> Result<Clip> {
        let probe = run(Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=codec_name,time_base:packet=pts,dts,duration",
            ])
            .args(["-of", "json"])
            .arg(path))
        .context("running ffprobe (the ffmpeg package)")?;
        let probe: Value = serde_json::from_slice(&probe).context("ffprobe's JSON")?;
        let stream = probe
            .pointer("/streams/0")
            .context("the clip has no video stream")?;
        let codec = match stream["codec_name"].as_str().unwrap_or("") {
            "h264" => Codec::H264,
            "hevc" => Codec::H265,
            other => bail!("the clip's video is {other:?}; only H.264 and H.265 are served"),
        };
        let time_base = stream["time_base"].as_str().unwrap_or("");
        let (num, den) =
            parse_ratio(time_base).with_context(|| format!("ffprobe's time base {time_base:?}"))?;
        let to_90k = |v: i64| (v as f64 * CLOCK_RATE as f64 * num / den).round() as i64;
        let mut times = Vec::new();
        for p in probe["packets"].as_array().into_iter().flatten() {
            let (dts, pts) = match (p["dts"].as_i64(), p["pts"].as_i64()) {
                (Some(d), Some(p)) => (d, p),
                (Some(t), None) | (None, Some(t)) => (t, t),
                (None, None) => bail!("a packet of the clip has no time stamp"),
            };
            times.push(PacketTime {
                dts: to_90k(dts),
                pts: to_90k(pts),
                duration: p["duration"].as_i64().map_or(0, to_90k),
            });
        }
        let (format, filters) = codec.ffmpeg_raw();
        let annexb = run(Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-i"])
            .arg(path)
            .args(["-map", "0:v:0", "-c:v", "copy", "-bsf:v", filters])
            .args(["-f", format, "-"]))
        .context("running ffmpeg")?;
        Clip::from_annexb(codec, &annexb, &times, max_payload)
    }

    /// The clip from an Annex B stream with a delimiter before every access
    /// unit and the times of its packets (one per access unit, in decode
    /// order).
    pub fn from_annexb(
        codec: Codec,
        annexb: &[u8],
        times: &[PacketTime],
        max_payload: usize,
    ) -> Result<Clip> {
        if max_payload < 100 {
            bail!("an RTP payload of {max_payload} bytes is too small");
        }
        let units = access_units(codec, annexb);
        if units.len() != times.len() {
            bail!(
                "ffmpeg gave {} access units but ffprobe {} packets",
                units.len(),
                times.len()
            );
        }
        let mut parameter_sets: [Option<Vec<u8>>; 3] = Default::default();
        for nal in units.iter().flatten() {
            if let Some(k) = codec.parameter_set(codec.nal_type(nal)) {
                parameter_sets[k].get_or_insert_with(|| nal.to_vec());
            }
        }
        for &k in codec.needed_parameter_sets() {
            if parameter_sets[k].is_none() {
                bail!("the clip's stream has no {}", ["VPS", "SPS", "PPS"][k]);
            }
        }
        let is_key = |unit: &[&[u8]]| unit.iter().any(|n| codec.is_key(codec.nal_type(n)));
        let first = units
            .iter()
            .position(|u| is_key(u))
            .context("the clip has no key frame")?;
        let origin = times[first].dts;
        let mut frames: Vec<Frame> = Vec::with_capacity(units.len() - first);
        let mut nals: Vec<&[u8]> = Vec::new();
        for (unit, time) in units[first..].iter().zip(&times[first..]) {
            let key = is_key(unit);
            nals.clear();
            if key {
                // Parameter sets in band before every key frame.
                for &k in codec.needed_parameter_sets() {
                    let present = unit
                        .iter()
                        .any(|n| codec.parameter_set(codec.nal_type(n)) == Some(k));
                    if !present {
                        nals.extend(parameter_sets[k].as_deref());
                    }
                }
            }
            nals.extend(unit.iter().copied());
            let send_at = (time.dts - origin).max(0) as u64;
            let send_at = frames.last().map_or(send_at, |f| f.send_at.max(send_at));
            let (wire, packets) = packetize(codec, &nals, max_payload);
            if packets.is_empty() {
                continue;
            }
            frames.push(Frame {
                send_at,
                pts: (time.pts - origin).max(0) as u64,
                key,
                wire,
                packets,
            });
        }
        let last = times.last().context("the clip has no frames")?;
        let span = frames.last().map_or(0, |f| f.send_at);
        let duration = if last.duration > 0 {
            last.duration as u64
        } else if frames.len() > 1 {
            span / (frames.len() as u64 - 1)
        } else {
            CLOCK_RATE / 25
        };
        Ok(Clip {
            codec,
            frames,
            period: span + duration.max(1),
            parameter_sets,
        })
    }

    /// `a=rtpmap` and `a=fmtp` values (without the payload type).
    pub fn rtpmap(&self) -> String {
        format!("{}/{CLOCK_RATE}", self.codec.rtp_name())
    }

    pub fn fmtp(&self) -> String {
        let b64 = |k: usize| {
            base64::engine::general_purpose::STANDARD
                .encode(self.parameter_sets[k].as_deref().unwrap_or_default())
        };
        match self.codec {
            Codec::H264 => {
                let sps = self.parameter_sets[1].as_deref().unwrap_or_default();
                let profile = sps
                    .get(1..4)
                    .map(|p| format!("{:02X}{:02X}{:02X}", p[0], p[1], p[2]))
                    .unwrap_or_else(|| "42001E".to_owned());
                format!(
                    "packetization-mode=1;profile-level-id={profile};sprop-parameter-sets={},{}",
                    b64(1),
                    b64(2)
                )
            }
            Codec::H265 => format!(
                "sprop-vps={};sprop-sps={};sprop-pps={}",
                b64(0),
                b64(1),
                b64(2)
            ),
        }
    }
}

fn run(command: &mut Command) -> Result<Vec<u8>> {
    let output = command.output()?;
    if !output.status.success() {
        bail!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output.stdout)
}

fn parse_ratio(text: &str) -> Option<(f64, f64)> {
    let (num, den) = text.split_once('/')?;
    let (num, den): (f64, f64) = (num.trim().parse().ok()?, den.trim().parse().ok()?);
    (num > 0.0 && den > 0.0).then_some((num, den))
}

/// The NAL units of an Annex B stream, without start codes (or the zero
/// bytes before the next one).
pub fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i + 2] > 1 {
            i += 3;
        } else if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &start) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(stream.len(), |&next| next - 3);
        while end > start && stream[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            nals.push(&stream[start..end]);
        }
    }
    nals
}

/// The stream's access units: each starts at a delimiter (left out); NAL
/// units before the first delimiter are a unit of their own.
fn access_units(codec: Codec, stream: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut units: Vec<Vec<&[u8]>> = Vec::new();
    for nal in nal_units(stream) {
        if nal.len() < codec.header_len() {
            continue;
        }
        if codec.is_delimiter(codec.nal_type(nal)) {
            units.push(Vec::new());
        } else {
            match units.last_mut() {
                Some(unit) => unit.push(nal),
                None => units.push(vec![nal]),
            }
        }
    }
    units
}

/// One access unit's NAL units as RTP packets behind interleaved headers:
/// a NAL unit that fits whole in `max_payload` is its own packet, a larger
/// one is cut into fragmentation units (FU-A, RFC 6184 5.8; FU, RFC 7798
/// 4.4.3); the marker bit is set on the last packet. Returns the bytes and
/// where each packet starts.
pub fn packetize(codec: Codec, nals: &[&[u8]], max_payload: usize) -> (Vec<u8>, Vec<usize>) {
    let mut wire = Vec::new();
    let mut packets = Vec::new();
    let mut push = |parts: &[&[u8]]| {
        let len = RTP_HEADER + parts.iter().map(|p| p.len()).sum::<usize>();
        packets.push(wire.len());
        wire.push(b'$');
        wire.push(0);
        wire.extend_from_slice(&(len as u16).to_be_bytes());
        wire.extend_from_slice(&[0x80, PAYLOAD_TYPE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        for p in parts {
            wire.extend_from_slice(p);
        }
    };
    let header_len = codec.header_len();
    for nal in nals {
        if nal.len() <= header_len {
            continue;
        }
        if nal.len() <= max_payload {
            push(&[nal]);
            continue;
        }
        let nal_type = codec.nal_type(nal);
        let payload_header: Vec<u8> = match codec {
            Codec::H264 => vec![(nal[0] & 0xe0) | 28],
            Codec::H265 => vec![(nal[0] & 0x81) | (49 << 1), nal[1]],
        };
        let chunk = max_payload - payload_header.len() - 1;
        let data = &nal[header_len..];
        let count = data.len().div_ceil(chunk);
        for (i, piece) in data.chunks(chunk).enumerate() {
            let start = if i == 0 { 0x80 } else { 0 };
            let end = if i + 1 == count { 0x40 } else { 0 };
            push(&[&payload_header, &[start | end | nal_type], piece]);
        }
    }
    if let Some(&last) = packets.last() {
        wire[last + INTERLEAVED_HEADER + 1] |= 0x80;
    }
    (wire, packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RTP packets of interleaved bytes: (channel, marker, seq, ts, ssrc, payload).
    fn parse(mut wire: &[u8]) -> Vec<(u8, bool, u16, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        while !wire.is_empty() {
            assert_eq!(wire[0], b'$');
            let len = u16::from_be_bytes([wire[2], wire[3]]) as usize;
            let p = &wire[4..4 + len];
            assert_eq!(p[0], 0x80);
            assert_eq!(p[1] & 0x7f, PAYLOAD_TYPE);
            out.push((
                wire[1],
                p[1] & 0x80 != 0,
                u16::from_be_bytes([p[2], p[3]]),
                u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
                p[12..].to_vec(),
            ));
            wire = &wire[4 + len..];
        }
        out
    }

    /// NAL units back from RTP payloads (single NAL unit packets and FU-A/FU).
    fn depacketize(codec: Codec, payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut nals = Vec::new();
        let mut partial: Option<Vec<u8>> = None;
        for p in payloads {
            let (fu, hl) = match codec {
                Codec::H264 => (p[0] & 0x1f == 28, 1),
                Codec::H265 => ((p[0] >> 1) & 0x3f == 49, 2),
            };
            if !fu {
                assert!(partial.is_none(), "a fragmented NAL unit was cut short");
                nals.push(p.clone());
                continue;
            }
            let fu_header = p[hl];
            let (start, end, t) = (
                fu_header & 0x80 != 0,
                fu_header & 0x40 != 0,
                fu_header & 0x3f,
            );
            if start {
                assert!(partial.is_none());
                partial = Some(match codec {
                    Codec::H264 => vec![(p[0] & 0xe0) | (fu_header & 0x1f)],
                    Codec::H265 => vec![(p[0] & 0x81) | (t << 1), p[1]],
                });
            }
            partial
                .as_mut()
                .expect("a fragment before its start")
                .extend_from_slice(&p[hl + 1..]);
            if end {
                nals.push(partial.take().unwrap());
            }
        }
        assert!(partial.is_none());
        nals
    }

    fn nal(header: &[u8], len: usize) -> Vec<u8> {
        let mut n = header.to_vec();
        n.extend((0..len - header.len()).map(|i| (i % 251) as u8 + 1));
        n
    }

    #[test]
    fn large_nal_units_are_fragmented_and_the_marker_ends_the_unit() {
        for (codec, header) in [(Codec::H264, vec![0x65]), (Codec::H265, vec![0x26, 0x01])] {
            let small = nal(&header, 40);
            let big = nal(&header, 3001);
            let (wire, packets) = packetize(codec, &[&small, &big], 1000);
            let parsed = parse(&wire);
            assert_eq!(parsed.len(), packets.len());
            // 1 + ceil((3001 - header) / (1000 - header - 1)).
            assert_eq!(parsed.len(), 1 + 4, "{codec:?}");
            assert!(parsed.iter().all(|p| p.5.len() <= 1000));
            let markers: Vec<bool> = parsed.iter().map(|p| p.1).collect();
            assert_eq!(markers, [false, false, false, false, true]);
            let payloads: Vec<Vec<u8>> = parsed.into_iter().map(|p| p.5).collect();
            assert_eq!(depacketize(codec, &payloads), vec![small, big], "{codec:?}");
        }
    }

    #[test]
    fn each_client_gets_its_own_numbers() {
        let a = nal(&[0x41], 2500);
        let (wire, packets) = packetize(Codec::H264, &[&a], 1400);
        let frame = Frame {
            send_at: 0,
            pts: 0,
            key: false,
            wire,
            packets,
        };
        let mut out = b"before".to_vec();
        let mut seq = 65534;
        let payload = frame.write_to(&mut out, 2, &mut seq, 0xdead_beef, 0x1234_5678);
        assert_eq!(seq, 0, "two packets, wrapping");
        assert_eq!(&out[..6], b"before");
        let parsed = parse(&out[6..]);
        assert_eq!(payload, parsed.iter().map(|p| p.5.len()).sum::<usize>());
        let seqs: Vec<u16> = parsed.iter().map(|p| p.2).collect();
        assert_eq!(seqs, [65534, 65535]);
        assert!(parsed
            .iter()
            .all(|p| p.0 == 2 && p.3 == 0xdead_beef && p.4 == 0x1234_5678));
    }

    fn t(dts: i64) -> PacketTime {
        PacketTime {
            dts,
            pts: dts,
            duration: 3600,
        }
    }

    #[test]
    fn starts_at_a_key_frame_with_parameter_sets_in_front_of_each() {
        let aud = [0, 0, 0, 1, 0x09, 0xf0];
        let sps = [0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1e, 0xac];
        let pps = [0, 0, 0, 1, 0x68, 0xee, 0x3c];
        let idr = [0, 0, 1, 0x65, 0x88, 0x80];
        let p = [0, 0, 1, 0x41, 0x9a, 0x02];
        // A P frame before the first key frame; parameter sets before the
        // first IDR only.
        let stream = [
            &aud[..],
            &p,
            &aud,
            &sps,
            &pps,
            &idr,
            &aud,
            &p,
            &aud,
            &idr,
            &aud,
            &p,
        ]
        .concat();
        let times = [t(-3600), t(0), t(3600), t(7200), t(10800)];
        let clip = Clip::from_annexb(Codec::H264, &stream, &times, 1400).unwrap();
        assert_eq!(clip.frames.len(), 4);
        let keys: Vec<bool> = clip.frames.iter().map(|f| f.key).collect();
        assert_eq!(keys, [true, false, true, false]);
        let sends: Vec<u64> = clip.frames.iter().map(|f| f.send_at).collect();
        assert_eq!(sends, [0, 3600, 7200, 10800]);
        assert_eq!(clip.period, 14400);
        for f in [&clip.frames[0], &clip.frames[2]] {
            let types: Vec<u8> = parse(&f.wire).iter().map(|p| p.5[0] & 0x1f).collect();
            assert_eq!(types, [7, 8, 5]);
        }
        assert_eq!(
            clip.fmtp(),
            "packetization-mode=1;profile-level-id=64001E;sprop-parameter-sets=Z2QAHqw=,aO48"
        );
        // Every access unit needs a packet per ffprobe packet.
        assert!(Clip::from_annexb(Codec::H264, &stream, &times[1..], 1400).is_err());
        // No SPS: refused.
        let no_sps = [&aud[..], &pps, &idr].concat();
        assert!(Clip::from_annexb(Codec::H264, &no_sps, &[t(0)], 1400).is_err());
    }
}
