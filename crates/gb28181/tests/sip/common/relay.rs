//! A UDP relay between our server and sipp as the superior that hands on
//! the superior's 200 to a REGISTER together with the datagram that
//! follows it: both are sent back to back, before the relay yields. On
//! a current-thread runtime our server then finds both in its socket at
//! once, and handles the second before the task waiting for the 200 has
//! run, as it does on a busy machine. sipp alone sends the two some
//! hundred microseconds apart, which a quiet machine always wins.

use anyhow::Result;
use std::net::SocketAddr;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Runs until dropped.
pub struct BunchingRelay {
    /// Where our server registers to (as if the superior were there).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for BunchingRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether a datagram is a 2xx to a REGISTER.
fn register_ok(datagram: &[u8]) -> bool {
    let text = String::from_utf8_lossy(datagram);
    text.starts_with("SIP/2.0 2")
        && text
            .lines()
            .any(|l| l.starts_with("CSeq:") && l.trim_end().ends_with("REGISTER"))
}

impl BunchingRelay {
    /// Relays between whoever sends to [`BunchingRelay::addr`] (our server)
    /// and the superior at `superior`.
    pub async fn start(superior: SocketAddr) -> Result<BunchingRelay> {
        let ours = UdpSocket::bind("127.0.0.1:0").await?;
        let theirs = UdpSocket::bind("127.0.0.1:0").await?;
        theirs.connect(superior).await?;
        let addr = ours.local_addr()?;
        let task = tokio::spawn(async move {
            let mut server: Option<SocketAddr> = None;
            let mut held: Option<Vec<u8>> = None;
            let (mut up, mut down) = (vec![0; 65536], vec![0; 65536]);
            loop {
                tokio::select! {
                    r = ours.recv_from(&mut up) => {
                        let Ok((n, from)) = r else { continue };
                        server = Some(from);
                        let _ = theirs.send(&up[..n]).await;
                    }
                    r = theirs.recv(&mut down) => {
                        let Ok(n) = r else { continue };
                        let Some(to) = server else { continue };
                        let datagram = down[..n].to_vec();
                        if held.is_none() && register_ok(&datagram) {
                            held = Some(datagram);
                            continue;
                        }
                        if let Some(first) = held.take() {
                            let _ = ours.send_to(&first, to).await;
                        }
                        let _ = ours.send_to(&datagram, to).await;
                    }
                }
            }
        });
        Ok(BunchingRelay { addr, task })
    }
}
