//! The SDP of a GB/T 28181 live-video INVITE: our offer (`s=Play`, PS over
//! RTP, `y=` SSRC, `f=`), and what we read from the device's answer (its
//! media address, transport and the SSRC it will really use). Upward
//! (cascade), the superior's offer is read the same way and answered with
//! [`upward_answer`].

use std::net::{IpAddr, SocketAddr};

/// How the media comes: the media receiver's own type, so that what the
/// offer says and what the receiver binds cannot differ.
pub use crate::media::MediaTransport;

/// Where we want the media: what the media receiver bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaOffer {
    pub ip: IpAddr,
    pub port: u16,
    pub transport: MediaTransport,
    /// The SSRC to ask for; `None` lets the server make a live one
    /// (`0` + domain digits 4-8 + a 4-digit sequence).
    pub ssrc: Option<u32>,
}

/// The SSRC as SDP's `y=` writes it: 10 decimal digits.
pub fn ssrc_text(ssrc: u32) -> String {
    format!("{ssrc:010}")
}

/// A live-view SSRC: `0`, digits 4 to 8 of the domain, then `seq` in 4 digits.
pub fn live_ssrc(domain: &str, seq: u32) -> u32 {
    let middle: u32 = domain.get(3..8).and_then(|d| d.parse().ok()).unwrap_or(0);
    middle * 10_000 + seq % 10_000
}

fn ip_line(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => format!("IN IP4 {ip}"),
        IpAddr::V6(ip) => format!("IN IP6 {ip}"),
    }
}

/// The offer for a live stream of `channel_id`.
pub fn offer(channel_id: &str, offer: &MediaOffer, ssrc: u32) -> String {
    let ip = ip_line(offer.ip);
    let (proto, tcp) = match offer.transport {
        MediaTransport::Udp => ("RTP/AVP", ""),
        MediaTransport::TcpPassive => ("TCP/RTP/AVP", "a=setup:passive\r\na=connection:new\r\n"),
    };
    format!(
        "v=0\r\no={channel_id} 0 0 {ip}\r\ns=Play\r\nu={channel_id}:0\r\nc={ip}\r\nt=0 0\r\n\
         m=video {port} {proto} 96 97 98\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n\
         a=rtpmap:98 H264/90000\r\na=rtpmap:97 MPEG4/90000\r\n{tcp}y={ssrc}\r\nf=\r\n",
        port = offer.port,
        ssrc = ssrc_text(ssrc),
    )
}

/// What the device's answer (or a superior's offer) says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer {
    /// `s=`: `Play` for live video (`Playback`, `Download` for recordings).
    pub session: Option<String>,
    /// The payload type the video `m=` line maps to `PS/90000`.
    pub ps_payload: Option<u8>,
    /// Where the device sends from (UDP) or listens (TCP active on our side).
    pub addr: Option<SocketAddr>,
    pub tcp: bool,
    /// `a=setup:` of the answer (`active`: the device connects to us).
    pub setup: Option<String>,
    /// The SSRC from `y=`, which real devices do not always take from the offer.
    pub ssrc: Option<u32>,
    /// `t=<start> <stop>`, seconds as written (playback and download ask
    /// for this window; `0 0` for live video).
    pub time: Option<(u64, u64)>,
    /// `u=<channel id>:<parameter>`: the channel of a recording.
    pub uri_channel: Option<String>,
    /// `a=downloadspeed:<n>`: a download's speed multiple.
    pub download_speed: Option<f64>,
}

fn connection_ip(value: &str) -> Option<IpAddr> {
    let mut parts = value.split_whitespace();
    let (Some("IN"), Some(_), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    // A multicast address may carry /ttl.
    addr.split('/').next()?.parse().ok()
}

/// Reads an answer; lines it does not know are skipped, bad values ignored.
pub fn parse_answer(text: &str) -> Answer {
    let mut answer = Answer::default();
    let (mut session_ip, mut media_ip, mut port) = (None, None, None);
    let (mut in_video, mut any_media) = (false, false);
    for line in text.lines().map(str::trim) {
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        match kind {
            "m" => {
                any_media = true;
                let mut parts = value.split_whitespace();
                in_video = parts.next() == Some("video");
                if in_video {
                    port = parts.next().and_then(|p| p.parse::<u16>().ok());
                    answer.tcp = parts
                        .next()
                        .is_some_and(|p| p.to_ascii_uppercase().starts_with("TCP"));
                }
            }
            "s" => answer.session = Some(value.trim().to_owned()),
            "c" if in_video => media_ip = connection_ip(value),
            "c" if !any_media => session_ip = connection_ip(value),
            "a" if in_video => {
                if let Some(speed) = value.strip_prefix("downloadspeed:") {
                    answer.download_speed = speed.trim().parse().ok();
                }
                if let Some(setup) = value.strip_prefix("setup:") {
                    answer.setup = Some(setup.trim().to_owned());
                }
                if let Some((pt, "PS/90000")) = value
                    .strip_prefix("rtpmap:")
                    .and_then(|m| m.split_once(' '))
                    .map(|(pt, enc)| (pt, enc.trim()))
                {
                    answer.ps_payload = answer.ps_payload.or(pt.parse().ok());
                }
            }
            "y" => answer.ssrc = value.trim().parse().ok(),
            "t" => {
                let mut parts = value.split_whitespace().map(|t| t.parse::<u64>().ok());
                if let (Some(Some(start)), Some(Some(stop))) = (parts.next(), parts.next()) {
                    answer.time = Some((start, stop));
                }
            }
            "u" => {
                let id = value.split(':').next().unwrap_or("").trim();
                answer.uri_channel = (!id.is_empty()).then(|| id.to_owned());
            }
            _ => {}
        }
    }
    answer.addr = match (media_ip.or(session_ip), port) {
        (Some(ip), Some(port)) => Some(SocketAddr::new(ip, port)),
        _ => None,
    };
    answer
}

/// Our answer to a superior's live-video offer: PS on `payload` from
/// `ip:port` with `ssrc`; over TCP our `a=setup` is the opposite of its.
pub fn upward_answer(
    channel_id: &str,
    session: &str,
    ip: IpAddr,
    port: u16,
    transport: crate::media::upward::UpwardTransport,
    payload: u8,
    ssrc: u32,
) -> String {
    use crate::media::upward::UpwardTransport;
    let ip = ip_line(ip);
    let (proto, tcp) = match transport {
        UpwardTransport::Udp => ("RTP/AVP", ""),
        UpwardTransport::TcpActive => ("TCP/RTP/AVP", "a=setup:active\r\na=connection:new\r\n"),
        UpwardTransport::TcpPassive => ("TCP/RTP/AVP", "a=setup:passive\r\na=connection:new\r\n"),
    };
    format!(
        "v=0\r\no={channel_id} 0 0 {ip}\r\ns={session}\r\nc={ip}\r\nt=0 0\r\n\
         m=video {port} {proto} {payload}\r\na=sendonly\r\na=rtpmap:{payload} PS/90000\r\n\
         {tcp}y={ssrc}\r\nf=\r\n",
        ssrc = ssrc_text(ssrc),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_ssrc_from_the_domain() {
        assert_eq!(live_ssrc("3402000000", 1), 200_000_001);
        assert_eq!(ssrc_text(live_ssrc("3402000000", 1)), "0200000001");
        assert_eq!(ssrc_text(live_ssrc("3402000000", 12_345)), "0200002345");
        assert_eq!(live_ssrc("x", 7), 7);
    }

    #[test]
    fn offers_as_the_standard_writes_them() {
        let udp = MediaOffer {
            ip: "10.0.0.2".parse().unwrap(),
            port: 30000,
            transport: MediaTransport::Udp,
            ssrc: None,
        };
        let sdp = offer("34020000001310000001", &udp, 200_000_001);
        for line in [
            "o=34020000001310000001 0 0 IN IP4 10.0.0.2",
            "s=Play",
            "u=34020000001310000001:0",
            "c=IN IP4 10.0.0.2",
            "m=video 30000 RTP/AVP 96 97 98",
            "a=recvonly",
            "a=rtpmap:96 PS/90000",
            "a=rtpmap:98 H264/90000",
            "a=rtpmap:97 MPEG4/90000",
            "y=0200000001",
            "f=",
        ] {
            assert!(sdp.lines().any(|l| l == line), "{line} missing in\n{sdp}");
        }
        assert!(!sdp.contains("setup"));
        let tcp = offer(
            "c",
            &MediaOffer {
                transport: MediaTransport::TcpPassive,
                ..udp
            },
            1,
        );
        assert!(tcp.contains("m=video 30000 TCP/RTP/AVP 96 97 98\r\n"));
        assert!(tcp.contains("a=setup:passive\r\na=connection:new\r\n"));
    }

    #[test]
    fn a_superior_offer_is_read_and_answered() {
        use crate::media::upward::UpwardTransport;
        let offer = parse_answer(
            "v=0\r\no=11010000002000000001 0 0 IN IP4 10.0.0.9\r\ns=Play\r\n\
             c=IN IP4 10.0.0.9\r\nt=0 0\r\nm=video 6000 RTP/AVP 96 98\r\na=recvonly\r\n\
             a=rtpmap:96 PS/90000\r\na=rtpmap:98 H264/90000\r\ny=0100000001\r\n",
        );
        assert_eq!(offer.ps_payload, Some(96));
        assert_eq!(offer.addr, Some("10.0.0.9:6000".parse().unwrap()));
        let answer = upward_answer(
            "34020000001310000001",
            "Play",
            "10.0.0.2".parse().unwrap(),
            9,
            UpwardTransport::TcpActive,
            96,
            100_000_001,
        );
        let back = parse_answer(&answer);
        assert_eq!(back.ps_payload, Some(96));
        assert_eq!(back.setup.as_deref(), Some("active"));
        assert!(back.tcp);
        assert_eq!(back.ssrc, Some(100_000_001));
        assert!(answer.contains("a=sendonly\r\n") && answer.contains("y=0100000001\r\n"));
    }

    #[test]
    fn a_playback_offer_gives_its_window_channel_and_speed() {
        let offer = parse_answer(
            "v=0\r\no=11010000002000000001 0 0 IN IP4 10.0.0.9\r\ns=Download\r\n\
             u=34020000001310000001:3\r\nc=IN IP4 10.0.0.9\r\nt=1515435056 1515435236\r\n\
             m=video 9910 RTP/AVP 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n\
             a=downloadspeed:4\r\ny=1100000001\r\n",
        );
        assert_eq!(offer.session.as_deref(), Some("Download"));
        assert_eq!(offer.time, Some((1_515_435_056, 1_515_435_236)));
        assert_eq!(offer.uri_channel.as_deref(), Some("34020000001310000001"));
        assert_eq!(offer.download_speed, Some(4.0));
        let live = parse_answer("s=Play\r\nt=0 0\r\nm=video 9 RTP/AVP 96\r\na=downloadspeed:x\r\n");
        assert_eq!(live.time, Some((0, 0)));
        assert_eq!((live.uri_channel, live.download_speed), (None, None));
    }

    #[test]
    fn answers_with_their_quirks() {
        let a = parse_answer(
            "v=0\r\no=34020000001310000001 0 0 IN IP4 192.168.1.64\r\ns=Play\r\n\
             c=IN IP4 192.168.1.64\r\nt=0 0\r\nm=video 15060 TCP/RTP/AVP 96\r\n\
             a=setup:active\r\na=sendonly\r\ny=0200000099\r\nf=\r\n",
        );
        assert_eq!(a.addr, Some("192.168.1.64:15060".parse().unwrap()));
        assert!(a.tcp);
        assert_eq!(a.setup.as_deref(), Some("active"));
        assert_eq!(a.ssrc, Some(200_000_099));
        assert_eq!(a.session.as_deref(), Some("Play"));
        assert_eq!(a.ps_payload, None);
        let media_level = parse_answer(
            "m=audio 1 RTP/AVP 8\nc=IN IP4 1.1.1.1\nm=video 9 RTP/AVP 96\nc=IN IP4 2.2.2.2\n",
        );
        assert_eq!(media_level.addr, Some("2.2.2.2:9".parse().unwrap()));
        assert!(!media_level.tcp);
        for junk in [
            "",
            "garbage",
            "m=video x RTP/AVP\ny=abc\nc=IN",
            "y=99999999999",
        ] {
            let a = parse_answer(junk);
            assert_eq!((a.addr, a.ssrc), (None, None), "{junk}");
        }
    }
}
