//! RTSP as a frame source: retina over TCP interleaved, `FrameFormat::SIMPLE`
//! (Annex B with parameter sets before key frames).

use crate::classify::SessionError;
use crate::source::{AccessUnit, FrameSource, SourceSession};
use futures::StreamExt;
use retina::client::{Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, FrameFormat};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use url::Url;
use xueliang_core::{CameraConfig, HealthReason, Secret, VideoCodec};

/// Pulls one camera's video over RTSP. The URL carries no credentials; they
/// are given apart and only ever handed to retina.
pub struct RtspSource {
    pub url: Url,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Limit of each of DESCRIBE, SETUP and PLAY.
    pub step_timeout: Duration,
}

impl RtspSource {
    /// The source of an `rtsp://` camera.
    pub fn for_camera(config: &CameraConfig, step_timeout: Duration) -> Self {
        RtspSource {
            url: config.url.clone(),
            username: config.username.clone(),
            password: config.password.clone(),
            step_timeout,
        }
    }
}

pub struct RtspSession {
    codec: VideoCodec,
    frames: Pin<Box<Demuxed>>,
}

/// Runs one RTSP step under `limit`.
async fn step<T>(
    stage: &str,
    limit: Duration,
    fut: impl Future<Output = Result<T, retina::Error>>,
) -> Result<T, SessionError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(SessionError::from_retina(stage, &e)),
        Err(_) => Err(SessionError::new(
            HealthReason::Unreachable,
            format!("{stage}: no answer within {} s", limit.as_secs_f64()),
        )),
    }
}

impl FrameSource for RtspSource {
    type Session = RtspSession;

    async fn open(&self) -> Result<RtspSession, SessionError> {
        let creds = self.username.as_ref().map(|u| retina::client::Credentials {
            username: u.clone(),
            password: self
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default(),
        });
        let options = SessionOptions::default()
            .creds(creds)
            .user_agent(concat!("xueliang/", env!("CARGO_PKG_VERSION")).to_owned());
        let limit = self.step_timeout;
        let mut session = step(
            "DESCRIBE",
            limit,
            Session::describe(self.url.clone(), options),
        )
        .await?;
        let (index, codec) = session
            .streams()
            .iter()
            .enumerate()
            .find_map(|(i, s)| {
                if s.media() != "video" {
                    return None;
                }
                match s.encoding_name() {
                    "h264" => Some((i, VideoCodec::H264)),
                    "h265" => Some((i, VideoCodec::H265)),
                    _ => None,
                }
            })
            .ok_or_else(|| {
                let found: Vec<String> = session
                    .streams()
                    .iter()
                    .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                    .collect();
                SessionError::new(
                    HealthReason::UnsupportedCodec,
                    format!(
                        "no H.264 or H.265 video stream (found: {})",
                        found.join(", ")
                    ),
                )
            })?;
        let setup = SetupOptions::default()
            .transport(Transport::Tcp(Default::default()))
            .frame_format(FrameFormat::SIMPLE);
        step("SETUP", limit, session.setup(index, setup)).await?;
        let playing = step("PLAY", limit, session.play(PlayOptions::default())).await?;
        let frames = playing
            .demuxed()
            .map_err(|e| SessionError::from_retina("PLAY", &e))?;
        Ok(RtspSession {
            codec,
            frames: Box::pin(frames),
        })
    }
}

impl SourceSession for RtspSession {
    async fn next(&mut self) -> Result<Option<AccessUnit>, SessionError> {
        loop {
            let frame = match self.frames.next().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(SessionError::from_retina("read", &e)),
                Some(Ok(CodecItem::VideoFrame(f))) => f,
                Some(Ok(CodecItem::Rtcp(rtcp))) => {
                    // RTCP BYE (type 203): the sender says the stream is over.
                    if rtcp.pkts().any(|p| p.payload_type() == 203) {
                        return Err(SessionError::new(
                            HealthReason::StreamEnded,
                            "the server ended the stream (RTCP BYE)",
                        ));
                    }
                    continue;
                }
                Some(Ok(_)) => continue,
            };
            return Ok(Some(AccessUnit {
                codec: self.codec,
                is_key: frame.is_random_access_point(),
                new_parameters: frame.has_new_parameters(),
                stream_time: frame.timestamp().elapsed_secs(),
                lost_packets: frame.loss() as u32,
                data: frame.into_data(),
            }));
        }
    }
}
