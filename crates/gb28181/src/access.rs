//! GB/T 28181 for the pipeline: the SIP server and media ports of
//! `[gb28181]`, a channel as a camera's [`FrameSource`] (INVITE, then PS over
//! RTP; BYE when the session is dropped), and the device directory the API
//! shows.

use crate::media::{self, Counter, MediaCounters, MediaReceiver, PortPool, ReceiverSettings};
use crate::sip::{self, Dialog, DialogEnd, SipError, SipServer, SipSettings};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::info;
use url::Url;
use xueliang_core::config::gb28181::{Accept, MediaTransport};
use xueliang_core::config::{gb_channel_of, Gb28181Config};
use xueliang_core::gb28181::{
    CascadeCameras, CatalogError, DeviceDirectory, GbChannel, GbCounter, GbDevice, GbUpstream,
};
use xueliang_core::HealthReason;
use xueliang_ingest::{AccessUnit, FrameSource, SessionError, SourceSession};

/// The running GB/T 28181 side of a centre.
pub struct GbAccess {
    sip: SipServer,
    ports: PortPool,
    /// The address media sockets bind (the SIP listen address).
    bind_ip: IpAddr,
    media_ip: IpAddr,
    transport: MediaTransport,
    names: HashMap<String, String>,
    /// Channel id -> the camera showing it.
    cameras: Mutex<HashMap<String, String>>,
    /// Totals over every media session.
    media_counters: Arc<MediaCounters>,
}

/// The SIP server's settings from `[gb28181]`.
pub fn sip_settings(config: &Gb28181Config) -> SipSettings {
    let mut s = SipSettings::new(&config.server_id, config.listen, config.media_ip);
    s.domain = config.domain.clone();
    s.password = config.password.clone();
    s.device_passwords = config
        .devices
        .iter()
        .filter_map(|(id, d)| d.password.clone().map(|p| (id.clone(), p)))
        .collect();
    s.accept = match config.accept {
        Accept::Known => sip::Accept::Known,
        Accept::Any => sip::Accept::Any,
    };
    s.known_devices = config.devices.keys().cloned().collect();
    s.keepalive_misses = config.keepalive_misses;
    s
}

impl GbAccess {
    /// Starts the SIP server (UDP and TCP on `listen`).
    pub async fn start(
        config: &Gb28181Config,
        shutdown: CancellationToken,
    ) -> Result<Arc<GbAccess>, SipError> {
        let ports = PortPool::new(config.rtp_ports.0..=config.rtp_ports.1)
            .ok_or_else(|| SipError::Settings("rtp_ports: fewer than two ports".into()))?;
        let sip = SipServer::start(sip_settings(config), shutdown).await?;
        // Upward streams (cascade) bind in the same range as the devices' media.
        sip.use_media_ports(ports.clone());
        info!(listen = %sip.local_addr(), "GB/T 28181 SIP server listening (UDP and TCP)");
        Ok(Arc::new(GbAccess {
            sip,
            ports,
            bind_ip: config.listen.ip(),
            media_ip: config.media_ip,
            transport: config.media_transport,
            names: config
                .devices
                .iter()
                .filter_map(|(id, d)| d.name.clone().map(|n| (id.clone(), n)))
                .collect(),
            cameras: Mutex::new(HashMap::new()),
            media_counters: Arc::default(),
        }))
    }

    pub fn sip(&self) -> &SipServer {
        &self.sip
    }

    /// The source of camera `camera_id` showing `url`
    /// (`gb28181://<device>/<channel>`); `None` for another URL.
    pub fn source(
        self: &Arc<Self>,
        camera_id: &str,
        url: &Url,
        first_media: Duration,
    ) -> Option<GbSource> {
        let (device_id, channel_id) = gb_channel_of(url)?;
        if let Ok(mut cameras) = self.cameras.lock() {
            cameras.insert(channel_id.clone(), camera_id.to_owned());
        }
        Some(GbSource {
            access: self.clone(),
            device_id,
            channel_id,
            first_media,
        })
    }

    /// Registers to every `[[gb28181.upstream]]` superior platform, sharing
    /// `cameras`. The returned handles end after the unregistration that
    /// follows the shutdown.
    /// Registers to each `[[gb28181.upstream]]`; times in record queries
    /// are in `timezone` (the alarms' zone).
    pub fn start_cascade(
        &self,
        config: &Gb28181Config,
        cameras: Arc<dyn CascadeCameras>,
        timezone: chrono_tz::Tz,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        config
            .upstreams
            .iter()
            .map(|u| {
                let settings = sip::UpstreamSettings {
                    timezone,
                    ..sip::UpstreamSettings::new(u.clone())
                };
                self.sip.start_upstream(settings, cameras.clone())
            })
            .collect()
    }

    /// The cameras' own video for the superior platforms' INVITEs.
    pub fn share_live_video(&self, live: Arc<dyn xueliang_core::LiveUnits>) {
        self.sip.share_live_video(live);
    }

    /// The cameras' event clips for the superior platforms' record
    /// queries and playback.
    pub fn share_recordings(&self, recordings: Arc<dyn xueliang_core::RecordedClips>) {
        self.sip.share_recordings(recordings);
    }

    fn camera_of(&self, channel_id: &str) -> Option<String> {
        self.cameras.lock().ok()?.get(channel_id).cloned()
    }
}

impl DeviceDirectory for GbAccess {
    fn devices(&self) -> Vec<GbDevice> {
        self.sip
            .devices()
            .into_iter()
            .map(|d| GbDevice {
                name: self.names.get(&d.id).cloned(),
                online: d.online,
                reason: d
                    .offline_reason
                    .map(|r| r.health_reason().as_str().to_owned()),
                address: Some(d.address.to_string()),
                transport: Some(d.transport.as_str().to_owned()),
                registered_at: Some(d.registered_at),
                expires_at: Some(d.expires_at),
                last_keepalive: d.last_keepalive,
                catalog_at: d.catalog_at,
                channels: d
                    .channels
                    .iter()
                    .map(|c| GbChannel {
                        camera_id: self.camera_of(&c.id),
                        id: c.id.clone(),
                        name: Some(c.name.clone()).filter(|n| !n.is_empty()),
                        manufacturer: c.manufacturer.clone(),
                        model: c.model.clone(),
                        status: Some(c.status.as_str().to_owned()),
                    })
                    .collect(),
                id: d.id,
            })
            .collect()
    }

    fn query_catalog(&self, id: &str) -> BoxFuture<'_, Result<(), CatalogError>> {
        let id = id.to_owned();
        Box::pin(async move {
            match self.sip.device(&id) {
                None => return Err(CatalogError::NotFound(id)),
                Some(d) if !d.online => return Err(CatalogError::Offline(id)),
                Some(_) => {}
            }
            self.sip.query_catalog(&id).await.map_err(|e| match e {
                SipError::DeviceOffline(_) => CatalogError::Offline(id),
                e => CatalogError::Failed(e.to_string()),
            })
        })
    }

    fn upstreams(&self) -> Vec<GbUpstream> {
        self.sip.upstreams()
    }

    fn counters(&self) -> Vec<GbCounter> {
        let sip = self
            .sip
            .counters()
            .snapshot()
            .into_iter()
            .map(|(name, help, value)| GbCounter {
                name: format!("sip_{name}"),
                help,
                value,
            });
        let media = Counter::ALL.into_iter().map(|c| GbCounter {
            name: format!("media_{}", c.name()),
            help: c.help(),
            value: self.media_counters.get(c),
        });
        sip.chain(media).collect()
    }
}

/// One GB/T 28181 channel as a camera's frame source.
pub struct GbSource {
    access: Arc<GbAccess>,
    device_id: String,
    channel_id: String,
    /// The INVITE accepted, video must start within this (收流超时).
    first_media: Duration,
}

pub struct GbSession {
    receiver: MediaReceiver,
    dialog: Dialog,
    first: Option<AccessUnit>,
    access: Arc<GbAccess>,
}

/// The configured media transport as the receiver and the offer take it.
fn transport(t: MediaTransport) -> media::MediaTransport {
    match t {
        MediaTransport::Udp => media::MediaTransport::Udp,
        MediaTransport::Tcp => media::MediaTransport::TcpPassive,
    }
}

impl GbSource {
    /// Why the device cannot be asked: offline, with the reason it went.
    fn device_offline(&self) -> SessionError {
        let reason = self
            .access
            .sip
            .device(&self.device_id)
            .and_then(|d| d.offline_reason)
            .map_or(HealthReason::DeviceOffline, |r| r.health_reason());
        SessionError::new(
            reason,
            format!("device {} is not registered and online", self.device_id),
        )
    }
}

impl FrameSource for GbSource {
    type Session = GbSession;

    async fn open(&self) -> Result<GbSession, SessionError> {
        let a = &self.access;
        if !a.sip.device(&self.device_id).is_some_and(|d| d.online) {
            return Err(self.device_offline());
        }
        let media_transport = transport(a.transport);
        let mut receiver = MediaReceiver::bind_counting(
            &a.ports,
            a.bind_ip,
            media_transport,
            ReceiverSettings::default(),
            a.media_counters.clone(),
        )
        .await
        .map_err(|e| SessionError::new(HealthReason::Other, e.to_string()))?;
        let offer = sip::MediaOffer {
            ip: a.media_ip,
            port: receiver.local_port(),
            transport: media_transport,
            ssrc: None,
        };
        let dialog = a
            .sip
            .invite(&self.device_id, &self.channel_id, offer)
            .await
            .map_err(|e| SessionError::new(e.health_reason(), format!("INVITE: {e}")))?;
        receiver.expect_ssrc(dialog.answer_ssrc.or(Some(dialog.offer_ssrc)));
        let port = receiver.local_port();
        let no_media = || {
            SessionError::new(
                HealthReason::NoMedia,
                format!(
                    "INVITE accepted but no video on port {} within {} s (收流超时: check \
                     media_ip, the firewall on rtp_ports, and the transport)",
                    port,
                    self.first_media.as_secs_f64()
                ),
            )
        };
        let first = match tokio::time::timeout(self.first_media, receiver.next_unit()).await {
            Ok(Ok(Some(unit))) => unit,
            Ok(Ok(None)) | Err(_) => return Err(no_media()),
            Ok(Err(e)) => return Err(SessionError::new(HealthReason::Other, e.to_string())),
        };
        Ok(GbSession {
            receiver,
            dialog,
            first: Some(first),
            access: a.clone(),
        })
    }
}

impl SourceSession for GbSession {
    async fn next(&mut self) -> Result<Option<AccessUnit>, SessionError> {
        if let Some(unit) = self.first.take() {
            return Ok(Some(unit));
        }
        tokio::select! {
            end = self.dialog.closed() => Err(match end {
                DialogEnd::ByeFromDevice => SessionError::new(
                    HealthReason::StreamEnded,
                    "the device ended the stream (BYE)",
                ),
                DialogEnd::DeviceOffline => {
                    let reason = self
                        .access
                        .sip
                        .device(&self.dialog.device_id)
                        .and_then(|d| d.offline_reason)
                        .map_or(HealthReason::DeviceOffline, |r| r.health_reason());
                    SessionError::new(reason, "the device went offline")
                }
                DialogEnd::ServerShutdown | DialogEnd::Closed => {
                    SessionError::new(HealthReason::Other, "the SIP server stopped")
                }
            }),
            unit = self.receiver.next_unit() => unit
                .map_err(|e| SessionError::new(HealthReason::Other, e.to_string())),
        }
    }
}
