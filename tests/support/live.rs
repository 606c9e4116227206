//! Reading a live stream (`live.mp4`) the way a viewer does: for a while,
//! then hanging up.

use anyhow::{bail, Result};
use std::time::{Duration, Instant};

/// What a viewer got from one live stream.
pub struct Watched {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The server ended the stream before the viewer stopped reading.
    pub ended: bool,
    pub first_byte: Option<Duration>,
}

/// Reads a live stream for `limit` (or until the server ends it).
pub fn watch(url: &str, token: &str, limit: Duration) -> Result<Watched> {
    block_on(async {
        let started = Instant::now();
        let mut r = reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await?;
        let status = r.status().as_u16();
        let content_type = header_of(&r, "content-type");
        let mut body = Vec::new();
        let mut first_byte = None;
        let deadline = tokio::time::Instant::now() + limit;
        let ended = loop {
            match tokio::time::timeout_at(deadline, r.chunk()).await {
                Err(_) => break false,
                Ok(Ok(Some(chunk))) => {
                    first_byte.get_or_insert_with(|| started.elapsed());
                    body.extend_from_slice(&chunk);
                }
                Ok(Ok(None)) => break true,
                Ok(Err(e)) => bail!("reading {url}: {e}"),
            }
        };
        Ok(Watched {
            status,
            content_type,
            body,
            ended,
            first_byte,
        })
    })
}

/// Runs `f` on a runtime of its own (the tests are plain threads).
pub fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

/// A response header as text (empty when absent).
pub fn header_of(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
