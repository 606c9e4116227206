//! A TCP proxy that can black-hole its traffic: a network partition of one
//! process from a peer (its database) without root or network namespaces.
//! While cut, nothing is forwarded either way and nothing is closed, as
//! when a switch or a link dies: the process's queries hang, they do not
//! fail. Mended, the held bytes flow on.

use anyhow::Result;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct TcpProxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
}

impl TcpProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `127.0.0.1:target`.
    pub fn start(target: u16) -> Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let cut = Arc::new(AtomicBool::new(false));
        let cuts = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let cut = cuts.clone();
                std::thread::spawn(move || {
                    // A connection made during the cut waits, as a SYN
                    // nobody answers would.
                    wait_mended(&cut);
                    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                        return;
                    };
                    pipe(client, server, cut);
                });
            }
        });
        Ok(TcpProxy { port, cut })
    }

    /// Cuts (true) or mends (false) every connection, present and future.
    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }
}

fn wait_mended(cut: &AtomicBool) {
    while cut.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Copies both ways until either side closes.
fn pipe(client: TcpStream, server: TcpStream, cut: Arc<AtomicBool>) {
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let back = cut.clone();
    let t = std::thread::spawn(move || copy(s2, c2, &back));
    copy(client, server, &cut);
    let _ = t.join();
}

fn copy(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        wait_mended(cut);
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Bytes read just as the cut began are held, not lost.
        wait_mended(cut);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
