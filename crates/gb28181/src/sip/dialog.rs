//! Live-video dialogs: what the owner of a stream holds ([`Dialog`]), how it
//! learns that the dialog ended (BYE from the device, device offline,
//! shutdown), and the BYE we send when it is dropped or closed.

use super::build::{self, Outgoing};
use super::catalog::device_to;
use super::counters::SipCounters;
use super::error::SipError;
use super::headers::{NameAddr, SipUri};
use super::message::{Message, Method};
use super::sdp::MediaTransport;
use super::server::Shared;
use super::transport::Peer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use tokio::sync::watch;
use tracing::{debug, info};

/// Why a dialog ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogEnd {
    /// The device sent BYE.
    ByeFromDevice,
    /// The device went offline (keepalives, expiry, unregistration).
    DeviceOffline,
    /// The SIP server stopped (it sent the BYE).
    ServerShutdown,
    /// We sent BYE.
    Closed,
}

/// What a BYE of ours needs.
#[derive(Clone, Debug)]
pub struct ByeInfo {
    pub device_id: String,
    pub call_id: String,
    /// The device's Contact from its 200 (the Request-URI of in-dialog requests).
    pub remote_target: SipUri,
    pub from_tag: String,
    /// The device's To, with its tag.
    pub to: NameAddr,
    pub cseq: u32,
}

struct Slot {
    device_id: String,
    end: watch::Sender<Option<DialogEnd>>,
    /// Our ACK to the 200, to repeat if the device repeats its 200.
    ack: Option<Vec<u8>>,
    bye: Option<ByeInfo>,
}

/// The open dialogs, by Call-ID. Bounded by the INVITEs the platform makes
/// (one per enabled channel), not by anything a device sends.
#[derive(Default)]
pub struct Dialogs {
    slots: HashMap<String, Slot>,
}

impl Dialogs {
    pub fn open(&mut self, call_id: &str, device_id: &str) -> watch::Receiver<Option<DialogEnd>> {
        let (end, receiver) = watch::channel(None);
        self.slots.insert(
            call_id.to_owned(),
            Slot {
                device_id: device_id.to_owned(),
                end,
                ack: None,
                bye: None,
            },
        );
        receiver
    }

    pub fn confirm(&mut self, call_id: &str, ack: Vec<u8>, bye: ByeInfo) {
        if let Some(slot) = self.slots.get_mut(call_id) {
            slot.ack = Some(ack);
            slot.bye = Some(bye);
        }
    }

    pub fn ack_of(&self, call_id: &str) -> Option<Vec<u8>> {
        self.slots.get(call_id).and_then(|s| s.ack.clone())
    }

    /// Ends a dialog, telling its owner why. Returns the device's id and,
    /// once the dialog was confirmed, what a BYE needs; `None` when there
    /// was no such dialog.
    pub fn end(&mut self, call_id: &str, why: DialogEnd) -> Option<(String, Option<ByeInfo>)> {
        let slot = self.slots.remove(call_id)?;
        slot.end.send_replace(Some(why));
        Some((slot.device_id, slot.bye))
    }

    fn end_where(&mut self, why: DialogEnd, pick: impl Fn(&Slot) -> bool) -> Vec<ByeInfo> {
        let ids: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| pick(s))
            .map(|(id, _)| id.clone())
            .collect();
        ids.iter()
            .filter_map(|id| self.end(id, why).and_then(|(_, bye)| bye))
            .collect()
    }
}

/// A live-video dialog with a device. Dropping it sends BYE in the
/// background (unless the dialog already ended); [`Dialog::bye`] sends it
/// and waits for the answer.
pub struct Dialog {
    pub device_id: String,
    pub channel_id: String,
    pub call_id: String,
    /// The SSRC we offered.
    pub offer_ssrc: u32,
    /// The SSRC of the 200's `y=` (real devices do not always keep ours).
    pub answer_ssrc: Option<u32>,
    /// The device's media address from the 200's `c=`/`m=`.
    pub remote_media: Option<SocketAddr>,
    pub remote_transport: MediaTransport,
    end: watch::Receiver<Option<DialogEnd>>,
    bye: Option<(Weak<Shared>, ByeInfo)>,
}

impl std::fmt::Debug for Dialog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialog")
            .field("device_id", &self.device_id)
            .field("channel_id", &self.channel_id)
            .field("call_id", &self.call_id)
            .field("answer_ssrc", &self.answer_ssrc)
            .field("remote_media", &self.remote_media)
            .finish_non_exhaustive()
    }
}

/// What [`Shared::invite`] learned, to make a [`Dialog`] of.
pub struct Established {
    pub device_id: String,
    pub channel_id: String,
    pub offer_ssrc: u32,
    pub answer_ssrc: Option<u32>,
    pub remote_media: Option<SocketAddr>,
    pub remote_transport: MediaTransport,
    pub end: watch::Receiver<Option<DialogEnd>>,
    pub bye: ByeInfo,
}

impl Dialog {
    pub(super) fn new(shared: &Arc<Shared>, e: Established) -> Dialog {
        Dialog {
            call_id: e.bye.call_id.clone(),
            device_id: e.device_id,
            channel_id: e.channel_id,
            offer_ssrc: e.offer_ssrc,
            answer_ssrc: e.answer_ssrc,
            remote_media: e.remote_media,
            remote_transport: e.remote_transport,
            end: e.end,
            bye: Some((Arc::downgrade(shared), e.bye)),
        }
    }

    /// Why the dialog ended, if it has.
    pub fn ended(&self) -> Option<DialogEnd> {
        *self.end.borrow()
    }

    /// Waits until the dialog ends (BYE from the device, device offline, shutdown).
    /// Cancel-safe.
    pub async fn closed(&mut self) -> DialogEnd {
        match self.end.wait_for(Option::is_some).await {
            Ok(end) => end.unwrap_or(DialogEnd::ServerShutdown),
            Err(_) => DialogEnd::ServerShutdown,
        }
    }

    /// Whether a BYE of ours is still due: not when the device ended the
    /// dialog or the server already said goodbye.
    fn bye_due(&self) -> bool {
        matches!(self.ended(), None | Some(DialogEnd::DeviceOffline))
    }

    /// Sends BYE and waits for the device's answer.
    pub async fn bye(mut self) -> Result<(), SipError> {
        let due = self.bye_due();
        let Some((shared, info)) = self.bye.take() else {
            return Ok(());
        };
        let Some(shared) = shared.upgrade() else {
            return Err(SipError::ShuttingDown);
        };
        shared.dialogs().end(&info.call_id, DialogEnd::Closed);
        if !due {
            return Ok(());
        }
        shared.send_bye(&info, true).await
    }
}

impl Drop for Dialog {
    fn drop(&mut self) {
        let due = self.bye_due();
        let Some((shared, info)) = self.bye.take() else {
            return;
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.dialogs().end(&info.call_id, DialogEnd::Closed);
        if !due {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = shared.send_bye(&info, true).await {
                        debug!(device = %info.device_id, error = %e, "BYE of a dropped dialog failed");
                    }
                });
            }
            Err(_) => {
                debug!(device = %info.device_id, "dialog dropped outside a runtime: no BYE sent")
            }
        }
    }
}

impl Shared {
    /// Sends our BYE to where the device is now (its address may have moved
    /// since the INVITE); `wait` for its answer or fire once.
    pub(super) async fn send_bye(&self, info: &ByeInfo, wait: bool) -> Result<(), SipError> {
        let peer = self
            .registry()
            .get(&info.device_id)
            .map(|d| d.peer.clone())
            .ok_or_else(|| SipError::DeviceOffline(info.device_id.clone()))?;
        let request = bye_request(self, info, &peer);
        SipCounters::add(&self.counters.byes_sent);
        if !wait {
            return self
                .transport
                .send(&peer, request.to_bytes())
                .await
                .map_err(|detail| SipError::Transport {
                    device_id: info.device_id.clone(),
                    detail,
                });
        }
        match self
            .client
            .request(&self.tx_context(), &request, &peer)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(SipError::Transport {
                device_id: info.device_id.clone(),
                detail: e.to_string(),
            }),
        }
    }

    /// A BYE from a device: ends the dialog and tells its owner.
    pub(super) fn on_bye(&self, request: &Message, peer: &super::transport::Peer) -> Message {
        SipCounters::add(&self.counters.byes_received);
        if let Some(ok) = self.on_upward_bye(request, peer) {
            return ok;
        }
        let call_id = request.call_id().unwrap_or_default();
        match self.dialogs().end(call_id, DialogEnd::ByeFromDevice) {
            Some((device_id, _)) => {
                info!(device = %device_id, call_id, "device ended the dialog (BYE)");
                self.reply(request, peer, 200, "OK")
            }
            None => self.reply(request, peer, 481, "Call/Transaction Does Not Exist"),
        }
    }

    /// Tells the owners of a device's dialogs that it went offline.
    pub(super) fn close_dialogs_of(&self, device_id: &str) {
        self.dialogs()
            .end_where(DialogEnd::DeviceOffline, |s| s.device_id == device_id);
    }

    /// At shutdown: BYE to every open dialog, sent once, without waiting.
    pub(super) async fn end_all_dialogs(&self) {
        let open = self
            .dialogs()
            .end_where(DialogEnd::ServerShutdown, |_| true);
        for info in open {
            let _ = self.send_bye(&info, false).await;
        }
    }
}

fn bye_request(shared: &Shared, info: &ByeInfo, peer: &Peer) -> Message {
    build::request(
        &shared.local,
        &Outgoing {
            method: Method::Bye,
            uri: &info.remote_target,
            from_tag: &info.from_tag,
            to: &info.to,
            call_id: &info.call_id,
            cseq: info.cseq,
            transport: peer.transport(),
        },
    )
}

/// The remote target of a dialog: the 200's Contact, else the device at its address.
pub fn remote_target(response: &Message, channel_id: &str, peer: &Peer) -> SipUri {
    response
        .header("Contact")
        .and_then(NameAddr::parse)
        .map(|c| c.uri)
        .unwrap_or_else(|| SipUri::at(channel_id, peer.addr()))
}

/// The To of the dialog: the 200's, with the device's tag.
pub fn remote_to(response: &Message, channel_id: &str) -> NameAddr {
    response
        .header("To")
        .and_then(NameAddr::parse)
        .unwrap_or_else(|| device_to(channel_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(call_id: &str) -> ByeInfo {
        ByeInfo {
            device_id: "d".into(),
            call_id: call_id.into(),
            remote_target: SipUri::new("c", "h", None),
            from_tag: "f".into(),
            to: device_to("c"),
            cseq: 2,
        }
    }

    #[test]
    fn ending_tells_the_owner_why_once() {
        let mut d = Dialogs::default();
        let rx = d.open("a", "dev1");
        let other = d.open("b", "dev2");
        d.confirm("a", b"ACK".to_vec(), info("a"));
        assert_eq!(d.ack_of("a"), Some(b"ACK".to_vec()));
        assert_eq!(
            d.end_where(DialogEnd::DeviceOffline, |s| s.device_id == "dev1")
                .len(),
            1
        );
        assert_eq!(*rx.borrow(), Some(DialogEnd::DeviceOffline));
        assert_eq!(*other.borrow(), None);
        assert!(d.end("a", DialogEnd::ByeFromDevice).is_none());
        let (device, bye) = d.end("b", DialogEnd::ByeFromDevice).unwrap();
        assert_eq!(device, "dev2");
        assert!(bye.is_none(), "unconfirmed: no BYE info");
        assert_eq!(*other.borrow(), Some(DialogEnd::ByeFromDevice));
    }
}
