//! `[gb28181]`: Xueliang as a GB/T 28181 platform that cameras and NVRs
//! register to (SIP), and the ports it receives their video on.

use crate::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// Which devices may register.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accept {
    /// Only the devices listed in `[[gb28181.devices]]` (others get 403).
    #[default]
    Known,
    /// Any device that knows the password.
    Any,
}

/// How the device sends video: RTP over UDP, or over a TCP connection the
/// device opens to us (TCP passive on our side, RFC 4571 framing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaTransport {
    #[default]
    Udp,
    Tcp,
}

/// `[gb28181]`, validated.
#[derive(Clone, Debug)]
pub struct Gb28181Config {
    /// The platform's 20-digit SIP id (SIP服务器ID).
    pub server_id: String,
    /// The SIP domain (SIP服务器域), by default the id's first 10 digits.
    pub domain: String,
    /// Where SIP is served, UDP and TCP on the same port.
    pub listen: SocketAddr,
    /// The registration password of every device without its own.
    pub password: Option<Secret>,
    /// The address put in SDP offers: where devices send video. Behind NAT,
    /// the public address.
    pub media_ip: IpAddr,
    /// Ports video is received on, both ends included (two per stream are
    /// reserved: RTP on the even one).
    pub rtp_ports: (u16, u16),
    pub accept: Accept,
    /// A device is offline after this many keepalive intervals without one.
    pub keepalive_misses: u32,
    /// How devices are asked to send video.
    pub media_transport: MediaTransport,
    /// Channels found in a device's catalog become cameras.
    pub auto_cameras: bool,
    /// Devices by id: per-device password, and village/grid defaults.
    pub devices: BTreeMap<String, Gb28181Device>,
    /// Village and grid of discovered channels by id prefix (longest wins).
    pub areas: Vec<Gb28181Area>,
    /// Superior platforms (上级平台) Xueliang registers to as a lower
    /// platform (cascade, 级联).
    pub upstreams: Vec<Gb28181Upstream>,
}

/// How SIP reaches a superior platform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamTransport {
    #[default]
    Udp,
    /// One TCP connection we open, kept for every request both ways.
    Tcp,
}

/// The charset of the MANSCDP bodies we send a superior platform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum UpstreamCharset {
    /// GB2312 (written with GBK, its superset): what GB/T 28181's examples use.
    #[default]
    #[serde(rename = "gb2312")]
    Gb2312,
    #[serde(rename = "utf-8")]
    Utf8,
}

/// `[[gb28181.upstream]]`, validated: one superior platform.
#[derive(Clone, Debug)]
pub struct Gb28181Upstream {
    /// The superior platform's 20-digit SIP id (上级平台ID).
    pub id: String,
    /// Its SIP domain and digest realm (上级平台域), by default its id's first 10 digits.
    pub domain: String,
    /// Its host name or IP address.
    pub address: String,
    pub port: u16,
    pub transport: UpstreamTransport,
    /// The registration password it gave us.
    pub password: Secret,
    /// Our 20-digit id towards it (本级平台ID), by default `server_id`.
    pub local_id: String,
    /// The registration time we ask for, in seconds.
    pub register_expires_s: u32,
    /// Seconds between our keepalives.
    pub keepalive_s: u32,
    /// Unanswered keepalives in a row after which we register again.
    pub keepalive_misses: u32,
    /// The charset of our catalog answers.
    pub charset: UpstreamCharset,
    /// The name of the top node of the catalog we give (业务分组).
    pub group_name: String,
    /// Cameras of these villages are shared (with `cameras`: either matches).
    pub villages: Vec<String>,
    /// These camera ids are shared. Both lists empty: every camera.
    pub cameras: Vec<String>,
    /// Live video streams it may have at once; one more INVITE gets 486.
    pub max_upstream_streams: u32,
}

impl Gb28181Upstream {
    /// Whether a camera of `village` is in this superior's catalog.
    pub fn shares(&self, camera_id: &str, village: Option<&str>) -> bool {
        (self.villages.is_empty() && self.cameras.is_empty())
            || self.cameras.iter().any(|c| c == camera_id)
            || village.is_some_and(|v| self.villages.iter().any(|s| s == v))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Gb28181Device {
    pub password: Option<Secret>,
    pub name: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Gb28181Area {
    /// A prefix of channel ids (e.g. the 8-digit civil code of a village).
    pub prefix: String,
    pub village: Option<String>,
    pub grid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGb28181 {
    server_id: String,
    domain: Option<String>,
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    password: Option<Secret>,
    password_env: Option<String>,
    media_ip: Option<IpAddr>,
    #[serde(default = "default_rtp_ports")]
    rtp_ports: String,
    #[serde(default)]
    accept: Accept,
    #[serde(default = "default_keepalive_misses")]
    keepalive_misses: u32,
    #[serde(default)]
    media_transport: MediaTransport,
    #[serde(default = "default_true")]
    auto_cameras: bool,
    #[serde(default)]
    devices: Vec<RawDevice>,
    #[serde(default)]
    areas: Vec<Gb28181Area>,
    #[serde(default)]
    upstream: Vec<RawUpstream>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    id: String,
    domain: Option<String>,
    address: String,
    #[serde(default = "default_sip_port")]
    port: u16,
    #[serde(default)]
    transport: UpstreamTransport,
    password: Option<Secret>,
    password_env: Option<String>,
    local_id: Option<String>,
    #[serde(default = "default_register_expires")]
    register_expires_s: u32,
    #[serde(default = "default_keepalive_s")]
    keepalive_s: u32,
    #[serde(default = "default_keepalive_misses")]
    keepalive_misses: u32,
    #[serde(default)]
    charset: UpstreamCharset,
    #[serde(default = "default_group_name")]
    group_name: String,
    #[serde(default)]
    villages: Vec<String>,
    #[serde(default)]
    cameras: Vec<String>,
    #[serde(default = "default_max_upstream_streams")]
    max_upstream_streams: u32,
}

fn default_max_upstream_streams() -> u32 {
    16
}
fn default_sip_port() -> u16 {
    5060
}
fn default_register_expires() -> u32 {
    3600
}
fn default_keepalive_s() -> u32 {
    60
}
fn default_group_name() -> String {
    "雪亮工程".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    id: String,
    name: Option<String>,
    password: Option<Secret>,
    password_env: Option<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 5060))
}
fn default_rtp_ports() -> String {
    "30000-30999".into()
}
fn default_keepalive_misses() -> u32 {
    3
}
fn default_true() -> bool {
    true
}

/// A 20-digit GB/T 28181 id.
pub fn is_gb_id(s: &str) -> bool {
    s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The `(device id, channel id)` of a `gb28181://<device>/<channel>` URL.
pub fn gb_channel_of(url: &url::Url) -> Option<(String, String)> {
    if url.scheme() != "gb28181" {
        return None;
    }
    let device = url.host_str()?;
    let channel = url.path().strip_prefix('/')?;
    (is_gb_id(device) && is_gb_id(channel)).then(|| (device.to_owned(), channel.to_owned()))
}

/// `password` or the variable `password_env` names; `at` names the table.
fn one_password(
    at: &str,
    password: Option<Secret>,
    env: Option<String>,
) -> Result<Option<Secret>, String> {
    match (password, env) {
        (Some(_), Some(_)) => Err(format!(
            "{at}: fields `password` and `password_env`: give one, not both"
        )),
        (Some(p), None) => Ok(Some(p)),
        (None, Some(var)) => std::env::var(&var)
            .map(|v| Some(Secret::new(v)))
            .map_err(|_| {
                format!("{at}: field `password_env`: environment variable {var} is not set")
            }),
        (None, None) => Ok(None),
    }
}

/// Checks one `[[gb28181.upstream]]`; `server_id` is our default id.
fn upstream(i: usize, raw: RawUpstream, server_id: &str) -> Result<Gb28181Upstream, String> {
    let at = format!("[[gb28181.upstream]] #{} ({})", i + 1, raw.id);
    if !is_gb_id(&raw.id) {
        return Err(format!(
            "{at}: field `id`: must be 20 digits (the superior platform's SIP id)"
        ));
    }
    let domain = raw.domain.unwrap_or_else(|| raw.id[..10].to_owned());
    if domain.is_empty()
        || domain.len() > 64
        || !domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(format!(
            "{at}: field `domain`: \"{domain}\" is not a SIP domain (usually the id's first 10 digits)"
        ));
    }
    let address = raw.address.trim().to_owned();
    if address.is_empty() || address.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
        return Err(format!(
            "{at}: field `address`: \"{}\" must be a host name or IP address (the port goes in `port`)",
            raw.address
        ));
    }
    if raw.port == 0 {
        return Err(format!("{at}: field `port`: must be 1-65535"));
    }
    let password = one_password(&at, raw.password, raw.password_env)?.ok_or_else(|| {
        format!(
            "{at}: field `password`: required (or `password_env`): the superior platform gives it"
        )
    })?;
    let local_id = raw.local_id.unwrap_or_else(|| server_id.to_owned());
    if !is_gb_id(&local_id) {
        return Err(format!(
            "{at}: field `local_id`: \"{local_id}\" must be 20 digits"
        ));
    }
    if local_id == raw.id {
        return Err(format!(
            "{at}: field `local_id`: must differ from the superior's `id`"
        ));
    }
    if !(60..=86_400).contains(&raw.register_expires_s) {
        return Err(format!(
            "{at}: field `register_expires_s`: must be 60-86400"
        ));
    }
    if !(1..=3600).contains(&raw.keepalive_s) {
        return Err(format!("{at}: field `keepalive_s`: must be 1-3600"));
    }
    if raw.keepalive_misses == 0 {
        return Err(format!(
            "{at}: field `keepalive_misses`: must be at least 1"
        ));
    }
    if !(1..=1024).contains(&raw.max_upstream_streams) {
        return Err(format!(
            "{at}: field `max_upstream_streams`: must be 1-1024"
        ));
    }
    if raw.group_name.trim().is_empty() {
        return Err(format!("{at}: field `group_name`: must not be empty"));
    }
    Ok(Gb28181Upstream {
        id: raw.id,
        domain,
        address,
        port: raw.port,
        transport: raw.transport,
        password,
        local_id,
        register_expires_s: raw.register_expires_s,
        keepalive_s: raw.keepalive_s,
        keepalive_misses: raw.keepalive_misses,
        charset: raw.charset,
        group_name: raw.group_name,
        villages: raw.villages,
        cameras: raw.cameras,
        max_upstream_streams: raw.max_upstream_streams,
    })
}

fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("field `rtp_ports`: \"{s}\" is not a range like \"30000-30999\"");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if a < 1024 || b < a || b - a < 1 {
        return Err(format!(
            "field `rtp_ports`: \"{s}\" must be at least two ports, from 1024 up"
        ));
    }
    Ok((a, b))
}

impl Gb28181Config {
    /// Reads and checks `[gb28181]`; the error names the field.
    pub fn from_toml(value: toml::Value) -> Result<Gb28181Config, String> {
        let raw: RawGb28181 = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            if path == "." {
                inner
            } else {
                format!("field `{path}`: {inner}")
            }
        })?;
        if !is_gb_id(&raw.server_id) {
            return Err(format!(
                "field `server_id`: \"{}\" must be 20 digits (e.g. 34020000002000000001)",
                raw.server_id
            ));
        }
        let domain = raw.domain.unwrap_or_else(|| raw.server_id[..10].to_owned());
        if domain.len() != 10 || !domain.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "field `domain`: \"{domain}\" must be 10 digits (the server id's first 10)"
            ));
        }
        let password = one_password("[gb28181]", raw.password, raw.password_env)?;
        let media_ip = match raw.media_ip {
            Some(ip) if ip.is_unspecified() => {
                return Err("field `media_ip`: must be an address devices can reach, not 0.0.0.0".into())
            }
            Some(ip) => ip,
            None if !raw.listen.ip().is_unspecified() => raw.listen.ip(),
            None => {
                return Err(
                    "field `media_ip`: required when `listen` is 0.0.0.0 (the address devices send video to)"
                        .into(),
                )
            }
        };
        let rtp_ports = parse_ports(&raw.rtp_ports)?;
        if raw.keepalive_misses == 0 {
            return Err("field `keepalive_misses`: must be at least 1".into());
        }
        let mut devices = BTreeMap::new();
        for (i, d) in raw.devices.into_iter().enumerate() {
            let at = format!("[[gb28181.devices]] #{} ({})", i + 1, d.id);
            if !is_gb_id(&d.id) {
                return Err(format!("{at}: field `id`: must be 20 digits"));
            }
            let password = one_password(&at, d.password, d.password_env)?;
            let device = Gb28181Device {
                password,
                name: d.name,
            };
            if devices.insert(d.id.clone(), device).is_some() {
                return Err(format!("{at}: field `id`: listed twice"));
            }
        }
        if password.is_none() && devices.values().any(|d| d.password.is_none()) {
            return Err(
                "field `password`: required (or `password_env`) unless every device has its own"
                    .into(),
            );
        }
        if password.is_none() && raw.accept == Accept::Any {
            return Err("field `password`: required with accept = \"any\"".into());
        }
        for (i, a) in raw.areas.iter().enumerate() {
            if a.prefix.is_empty() || !a.prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "[[gb28181.areas]] #{}: field `prefix`: must be digits",
                    i + 1
                ));
            }
        }
        let mut upstreams: Vec<Gb28181Upstream> = Vec::new();
        for (i, u) in raw.upstream.into_iter().enumerate() {
            let u = upstream(i, u, &raw.server_id)?;
            if upstreams.iter().any(|o| o.id == u.id) {
                return Err(format!(
                    "[[gb28181.upstream]] #{} ({}): field `id`: listed twice",
                    i + 1,
                    u.id
                ));
            }
            upstreams.push(u);
        }
        Ok(Gb28181Config {
            upstreams,
            server_id: raw.server_id,
            domain,
            listen: raw.listen,
            password,
            media_ip,
            rtp_ports,
            accept: raw.accept,
            keepalive_misses: raw.keepalive_misses,
            media_transport: raw.media_transport,
            auto_cameras: raw.auto_cameras,
            devices,
            areas: raw.areas,
        })
    }

    /// The village and grid of a discovered channel: the longest matching
    /// area prefix.
    pub fn area_of(&self, channel_id: &str) -> Option<&Gb28181Area> {
        self.areas
            .iter()
            .filter(|a| channel_id.starts_with(&a.prefix))
            .max_by_key(|a| a.prefix.len())
    }

    /// The password device `id` must use, if any.
    pub fn password_of(&self, id: &str) -> Option<&Secret> {
        self.devices
            .get(id)
            .and_then(|d| d.password.as_ref())
            .or(self.password.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Gb28181Config, String> {
        Gb28181Config::from_toml(toml::Value::Table(toml::from_str(text).unwrap()))
    }

    const OK: &str =
        "server_id = \"34020000002000000001\"\nmedia_ip = \"192.0.2.10\"\npassword = \"pw\"\n";

    #[test]
    fn defaults_follow_the_standard() {
        let c = parse(OK).unwrap();
        assert_eq!(c.domain, "3402000000");
        assert_eq!(c.listen.port(), 5060);
        assert_eq!(c.rtp_ports, (30000, 30999));
        assert_eq!(c.accept, Accept::Known);
        assert_eq!(c.keepalive_misses, 3);
        assert_eq!(c.media_transport, MediaTransport::Udp);
        assert!(
            !format!("{c:?}").contains("\"pw\""),
            "password shown: {c:?}"
        );
    }

    #[test]
    fn mistakes_name_the_field() {
        let cases = [
            (
                "server_id = \"3402\"\nmedia_ip = \"192.0.2.1\"\npassword = \"p\"",
                "server_id",
            ),
            (&format!("{OK}domain = \"34\""), "domain"),
            (&format!("{OK}rtp_ports = \"9-8\""), "rtp_ports"),
            (&format!("{OK}rtp_ports = \"40000\""), "rtp_ports"),
            (&format!("{OK}accept = \"all\""), "accept"),
            (&format!("{OK}keepalive_misses = 0"), "keepalive_misses"),
            (&format!("{OK}transprot = \"tcp\""), "transprot"),
            (
                "server_id = \"34020000002000000001\"\npassword = \"p\"",
                "media_ip",
            ),
            (
                "server_id = \"34020000002000000001\"\nmedia_ip = \"192.0.2.1\"\naccept = \"any\"",
                "password",
            ),
            (
                &format!("{OK}[[devices]]\nid = \"1\"\n"),
                "[[gb28181.devices]] #1 (1): field `id`",
            ),
        ];
        for (text, field) in cases {
            let e = parse(text).expect_err(text);
            assert!(e.contains(field), "{text}: {e}");
        }
    }

    #[test]
    fn per_device_passwords_and_areas() {
        let c = parse(&format!(
            "{OK}[[devices]]\nid = \"34020000001320000001\"\npassword = \"own\"\n\
             [[areas]]\nprefix = \"3402\"\nvillage = \"镇\"\n\
             [[areas]]\nprefix = \"34020000001\"\nvillage = \"东村\"\ngrid = \"一网格\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.password_of("34020000001320000001").unwrap().expose(),
            "own"
        );
        assert_eq!(
            c.password_of("34020000001320000002").unwrap().expose(),
            "pw"
        );
        let a = c.area_of("34020000001320000001").unwrap();
        assert_eq!(a.village.as_deref(), Some("东村"));
        assert_eq!(
            c.area_of("34029999991320000001")
                .unwrap()
                .village
                .as_deref(),
            Some("镇")
        );
        assert!(c.area_of("11000000001320000001").is_none());
    }

    const UP: &str = "[[upstream]]\nid = \"11010000002000000001\"\naddress = \"10.1.2.3\"\npassword = \"county-pw\"\n";

    #[test]
    fn upstream_defaults() {
        let c = parse(&format!("{OK}{UP}")).unwrap();
        let u = &c.upstreams[0];
        assert_eq!(u.domain, "1101000000");
        assert_eq!(u.port, 5060);
        assert_eq!(u.transport, UpstreamTransport::Udp);
        assert_eq!(u.local_id, "34020000002000000001");
        assert_eq!(
            (u.register_expires_s, u.keepalive_s, u.keepalive_misses),
            (3600, 60, 3)
        );
        assert_eq!(u.charset, UpstreamCharset::Gb2312);
        assert!(u.shares("any", None));
        assert!(!format!("{c:?}").contains("county-pw"), "password shown");
        let c = parse(&format!(
            "{OK}{UP}transport = \"tcp\"\ncharset = \"utf-8\"\nvillages = [\"东村\"]\ncameras = [\"west\"]\n"
        ))
        .unwrap();
        let u = &c.upstreams[0];
        assert_eq!(
            (u.transport, u.charset),
            (UpstreamTransport::Tcp, UpstreamCharset::Utf8)
        );
        assert!(u.shares("a", Some("东村")) && u.shares("west", None));
        assert!(!u.shares("a", Some("西村")) && !u.shares("a", None));
    }

    #[test]
    fn upstream_mistakes_name_the_field() {
        std::env::remove_var("XUELIANG_TEST_NO_SUCH_VAR");
        let without_pw = "[[upstream]]\nid = \"11010000002000000001\"\naddress = \"10.1.2.3\"\n";
        let cases = [
            (
                UP.replace("11010000002000000001", "1101"),
                "#1 (1101): field `id`",
            ),
            (without_pw.to_string(), "field `password`: required"),
            (
                format!("{without_pw}password_env = \"XUELIANG_TEST_NO_SUCH_VAR\"\n"),
                "XUELIANG_TEST_NO_SUCH_VAR is not set",
            ),
            (format!("{UP}password_env = \"X\"\n"), "give one, not both"),
            (format!("{UP}local_id = \"12\"\n"), "field `local_id`"),
            (
                format!("{UP}local_id = \"11010000002000000001\"\n"),
                "field `local_id`: must differ",
            ),
            (UP.replace("10.1.2.3", "10.1.2.3:5060/x"), "field `address`"),
            (format!("{UP}port = 0\n"), "field `port`"),
            (
                format!("{UP}transport = \"sctp\"\n"),
                "upstream[0].transport",
            ),
            (format!("{UP}charset = \"big5\"\n"), "upstream[0].charset"),
            (
                format!("{UP}register_expires_s = 5\n"),
                "register_expires_s",
            ),
            (format!("{UP}keepalive_s = 0\n"), "keepalive_s"),
            (
                format!("{UP}keepalive_misses = 0\n"),
                "#1 (11010000002000000001): field `keepalive_misses`",
            ),
            (format!("{UP}passwrod = \"x\"\n"), "passwrod"),
            (
                format!("{UP}{UP}"),
                "#2 (11010000002000000001): field `id`: listed twice",
            ),
        ];
        for (text, field) in cases {
            let text = format!("{OK}{text}");
            let e = parse(&text).expect_err(&text);
            assert!(e.contains(field), "{text}: {e}");
        }
    }
}
