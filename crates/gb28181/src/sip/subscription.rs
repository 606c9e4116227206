//! The dialogs superior platforms' subscriptions make (GB/T 28181-2016
//! 9.11, RFC 6665), whatever they subscribe to: the catalog
//! ([`super::catalog_notify`]) and alarms ([`super::alarm_subscription`]).
//!
//! A SUBSCRIBE accepted with 200 becomes a [`Subscription`]: the dialog
//! (Call-ID, both tags, the superior's Contact, the `Event` to echo), its
//! expiry and the peer it came from. Our NOTIFYs go in that dialog, one at
//! a time with rising CSeq ([`Shared::notify`]). A refresh SUBSCRIBE in
//! the dialog (same Call-ID and tags) extends it, `Expires: 0` ends it,
//! and it is over once its time runs out. A superior has at most one
//! subscription of each kind: a new SUBSCRIBE (another Call-ID, e.g. after
//! it restarted) replaces the previous one.

use super::build::{self, Outgoing};
use super::headers::{self, NameAddr, SipUri};
use super::manscdp::{self, element};
use super::message::{Message, Method};
use super::server::{lock, Shared};
use super::transport::Peer;
use super::upstream::{Link, LinkError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The subscription time when the SUBSCRIBE gives none.
pub(super) const DEFAULT_EXPIRES: u32 = 3600;
/// The longest subscription granted: a superior refreshes before the end.
const MAX_EXPIRES: u32 = 86_400;

/// The seconds a SUBSCRIBE asks for, as granted.
pub(super) fn granted(request: &Message) -> u32 {
    headers::requested_expires(request)
        .unwrap_or(DEFAULT_EXPIRES)
        .min(MAX_EXPIRES)
}

/// What our NOTIFYs need of the dialog a SUBSCRIBE made; fixed for its
/// life but for the CSeq.
pub(super) struct NotifyDialog {
    pub call_id: String,
    /// The superior's Contact (else its From URI at its address).
    target: SipUri,
    /// Its To with our tag: our From.
    ours: NameAddr,
    our_tag: String,
    /// Its From, with its tag: our To.
    theirs: NameAddr,
    their_tag: String,
    /// Its `Event` header, echoed (with an `id` parameter if it had one).
    event: String,
    /// Our last CSeq in the dialog. Held while a NOTIFY is under way, so
    /// NOTIFYs go one at a time and never arrive with a CSeq lower than
    /// one the superior already saw.
    cseq: tokio::sync::Mutex<u32>,
}

impl NotifyDialog {
    /// The dialog of `request` (a new SUBSCRIBE from `link`'s superior at
    /// `peer`) and `ok`, our 200 to it; `None` when a tag or the Call-ID
    /// is missing. `event` is echoed when the SUBSCRIBE has no `Event`.
    pub(super) fn new(
        link: &Link,
        request: &Message,
        ok: &Message,
        peer: &Peer,
        event: &str,
    ) -> Option<NotifyDialog> {
        let (call_id, theirs, ours) = (
            request.call_id()?,
            headers::from(request)?,
            headers::to(ok)?,
        );
        Some(NotifyDialog {
            call_id: call_id.to_owned(),
            target: request
                .header("Contact")
                .and_then(NameAddr::parse)
                .map(|c| c.uri)
                .unwrap_or_else(|| SipUri::at(link.id(), peer.addr())),
            our_tag: ours.tag()?.to_owned(),
            their_tag: theirs.tag()?.to_owned(),
            ours: ours.clone(),
            theirs: theirs.clone(),
            event: request.header("Event").unwrap_or(event).to_owned(),
            cseq: tokio::sync::Mutex::new(0),
        })
    }
}

/// One live subscription; `what` is what its kind keeps (an alarm filter).
pub(super) struct Subscription<T> {
    upstream: String,
    dialog: Arc<NotifyDialog>,
    /// When it ends unless refreshed.
    until: Instant,
    /// Where its last SUBSCRIBE came from: our NOTIFYs go there (NAT, TCP).
    peer: Peer,
    /// Cancelled when it ends (ended, replaced, expired and found so).
    stop: CancellationToken,
    what: T,
}

/// A subscription as it is now, to send in.
pub(super) struct Live<T> {
    pub dialog: Arc<NotifyDialog>,
    /// The seconds it has left (for `Subscription-State`).
    pub expires: u32,
    pub peer: Peer,
    pub what: T,
}

/// The live subscriptions of one kind, by Call-ID.
pub struct Subscriptions<T> {
    by_call: Mutex<HashMap<String, Subscription<T>>>,
}

impl<T> Default for Subscriptions<T> {
    fn default() -> Self {
        Subscriptions {
            by_call: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone> Subscriptions<T> {
    /// Keeps a new subscription of `upstream`'s for `expires` seconds (its
    /// previous one of this kind ends); `stop` is cancelled when it ends.
    pub(super) fn insert(
        &self,
        upstream: &str,
        dialog: NotifyDialog,
        expires: u32,
        peer: &Peer,
        stop: CancellationToken,
        what: T,
    ) {
        let mut by_call = lock(&self.by_call);
        by_call.retain(|_, s| {
            let same = s.upstream == upstream;
            if same {
                s.stop.cancel();
            }
            !same
        });
        by_call.insert(
            dialog.call_id.clone(),
            Subscription {
                upstream: upstream.to_owned(),
                dialog: Arc::new(dialog),
                until: Instant::now() + Duration::from_secs(u64::from(expires)),
                peer: peer.clone(),
                stop,
                what,
            },
        );
    }

    /// The subscription of this Call-ID while it lives; an expired one is
    /// removed.
    pub(super) fn live(&self, call_id: &str) -> Option<Live<T>> {
        let mut by_call = lock(&self.by_call);
        Self::live_in(&mut by_call, call_id)
    }

    /// `upstream`'s subscription while it lives; an expired one is removed.
    pub(super) fn live_for(&self, upstream: &str) -> Option<Live<T>> {
        let mut by_call = lock(&self.by_call);
        let call_id = by_call
            .iter()
            .find(|(_, s)| s.upstream == upstream)
            .map(|(c, _)| c.clone())?;
        Self::live_in(&mut by_call, &call_id)
    }

    fn live_in(by_call: &mut HashMap<String, Subscription<T>>, call_id: &str) -> Option<Live<T>> {
        let s = by_call.get(call_id)?;
        let left = s.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            if let Some(s) = by_call.remove(call_id) {
                s.stop.cancel();
            }
            return None;
        }
        Some(Live {
            dialog: s.dialog.clone(),
            expires: left.as_secs_f64().ceil() as u32,
            peer: s.peer.clone(),
            what: s.what.clone(),
        })
    }

    /// A SUBSCRIBE in the dialog of one of `upstream`'s subscriptions (same
    /// Call-ID and tags) from `peer`: for `expires` seconds from now (0
    /// ends it), and `update` applied to what it keeps. `None` when it is
    /// in no dialog of ours.
    pub(super) fn refresh(
        &self,
        upstream: &str,
        request: &Message,
        peer: &Peer,
        expires: u32,
        update: impl FnOnce(&mut T),
    ) -> Option<()> {
        let call_id = request.call_id()?;
        let their_tag = headers::from(request)?.tag()?.to_owned();
        let our_tag = headers::to(request)?.tag()?.to_owned();
        let mut by_call = lock(&self.by_call);
        let s = by_call.get_mut(call_id).filter(|s| {
            s.upstream == upstream && s.dialog.our_tag == our_tag && s.dialog.their_tag == their_tag
        })?;
        s.until = Instant::now() + Duration::from_secs(u64::from(expires));
        s.peer = peer.clone();
        update(&mut s.what);
        if expires == 0 {
            if let Some(s) = by_call.remove(call_id) {
                s.stop.cancel();
            }
        }
        Some(())
    }

    pub(super) fn remove(&self, call_id: &str) {
        if let Some(s) = lock(&self.by_call).remove(call_id) {
            s.stop.cancel();
        }
    }
}

impl Shared {
    /// The 200 to an accepted SUBSCRIBE: our Contact, the granted
    /// `Expires`, and a `Response <cmd_type>` body with `Result OK`.
    pub(super) fn subscribed(
        &self,
        link: &Link,
        request: &Message,
        peer: &Peer,
        cmd_type: &str,
        sn: u32,
        expires: u32,
    ) -> Message {
        let charset = link.settings.charset();
        let mut ok = self.refreshed(link, request, peer, expires);
        ok.headers.push("Content-Type", "Application/MANSCDP+xml");
        ok.body = charset.encode(&manscdp::response(
            cmd_type,
            sn,
            &link.settings.config.local_id,
            charset.label(),
            &element("Result", "OK"),
        ));
        ok
    }

    /// One NOTIFY in `dialog` to `peer` with `Subscription-State:
    /// active;expires=<expires>` and the MANSCDP `body` (encoded in the
    /// link's charset); `Ok` on its 2xx.
    pub(super) async fn notify(
        &self,
        link: &Link,
        dialog: &NotifyDialog,
        expires: u32,
        peer: &Peer,
        body: &str,
    ) -> Result<(), LinkError> {
        let mut cseq = dialog.cseq.lock().await;
        *cseq += 1;
        let local = self.upstream_local(link);
        let mut request = build::request(
            &local,
            &Outgoing {
                method: Method::Notify,
                uri: &dialog.target,
                from_tag: &dialog.our_tag,
                to: &dialog.theirs,
                call_id: &dialog.call_id,
                cseq: *cseq,
                transport: peer.transport(),
            },
        );
        request.headers.set("From", dialog.ours.to_string());
        request.headers.push("Contact", local.contact().to_string());
        request.headers.push("Event", dialog.event.as_str());
        request
            .headers
            .push("Subscription-State", format!("active;expires={expires}"));
        self.send_manscdp(link, request, peer, body).await
    }

    /// The 200 to a refresh (or end) of a subscription: our Contact and
    /// the granted `Expires`.
    pub(super) fn refreshed(
        &self,
        link: &Link,
        request: &Message,
        peer: &Peer,
        expires: u32,
    ) -> Message {
        let mut ok = self.reply(request, peer, 200, "OK");
        ok.headers
            .push("Contact", self.upstream_local(link).contact().to_string());
        ok.headers.push("Expires", expires.to_string());
        ok
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::sip::parse::parse_datagram;

    /// A SUBSCRIBE from the superior with `extra` headers (shared by the
    /// subscription kinds' tests).
    pub(in crate::sip) fn subscribe(extra: &str) -> Message {
        let text = format!(
            "SUBSCRIBE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\n\
             From: <sip:s@d>;tag=f\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 SUBSCRIBE\r\n{extra}\r\n"
        );
        parse_datagram(text.as_bytes(), 65535).expect("a SUBSCRIBE")
    }

    fn dialog(call_id: &str) -> NotifyDialog {
        NotifyDialog {
            call_id: call_id.into(),
            target: SipUri::new("s", "d", None),
            ours: NameAddr::new(SipUri::new("a", "b", None)),
            our_tag: "o".into(),
            theirs: NameAddr::new(SipUri::new("s", "d", None)),
            their_tag: "f".into(),
            event: "Alarm".into(),
            cseq: tokio::sync::Mutex::new(0),
        }
    }

    #[test]
    fn the_granted_time_is_asked_default_or_capped() {
        assert_eq!(granted(&subscribe("Expires: 600\r\n")), 600);
        assert_eq!(granted(&subscribe("Expires: 0\r\n")), 0);
        assert_eq!(granted(&subscribe("")), DEFAULT_EXPIRES);
        assert_eq!(granted(&subscribe("Expires: 999999\r\n")), MAX_EXPIRES);
    }

    #[tokio::test]
    async fn a_superior_keeps_one_subscription_and_expired_ones_go() {
        let subs = Subscriptions::<u8>::default();
        let peer = Peer::Udp("127.0.0.1:5060".parse().expect("address"));
        let token = CancellationToken::new;
        let (first, other, second) = (token(), token(), token());
        subs.insert("sup", dialog("a"), 60, &peer, first.clone(), 1);
        subs.insert("other", dialog("x"), 0, &peer, other.clone(), 9);
        assert_eq!(subs.live("a").map(|l| (l.expires, l.what)), Some((60, 1)));
        subs.insert("sup", dialog("b"), 60, &peer, second.clone(), 2);
        assert!(first.is_cancelled(), "the older one is ended");
        assert!(subs.live("a").is_none());
        assert_eq!(subs.live_for("sup").map(|l| l.what), Some(2));
        assert!(!second.is_cancelled());
        assert!(subs.live_for("other").is_none(), "expired");
        assert!(other.is_cancelled(), "an expired one found so ends");
        subs.remove("b");
        assert!(second.is_cancelled() && subs.live("b").is_none());
    }

    #[tokio::test]
    async fn a_refresh_in_the_dialog_extends_updates_or_ends() {
        let subs = Subscriptions::<u8>::default();
        let peer = Peer::Udp("127.0.0.1:5060".parse().expect("address"));
        let stop = CancellationToken::new();
        subs.insert("sup", dialog("c"), 60, &peer, stop.clone(), 1);
        let in_dialog = subscribe("").with_to_tag("o");
        assert_eq!(
            subs.refresh("sup", &in_dialog, &peer, 300, |w| *w = 2),
            Some(())
        );
        assert_eq!(subs.live("c").map(|l| (l.expires, l.what)), Some((300, 2)));
        // Not ours: another superior, another tag, no To tag.
        assert!(subs
            .refresh("other", &in_dialog, &peer, 0, |_| {})
            .is_none());
        let wrong_tag = subscribe("").with_to_tag("zz");
        assert!(subs.refresh("sup", &wrong_tag, &peer, 0, |_| {}).is_none());
        assert!(subs
            .refresh("sup", &subscribe(""), &peer, 0, |_| {})
            .is_none());
        assert!(subs.live("c").is_some() && !stop.is_cancelled());
        assert!(subs.refresh("sup", &in_dialog, &peer, 0, |_| {}).is_some());
        assert!(subs.live("c").is_none() && stop.is_cancelled());
    }

    trait WithToTag {
        fn with_to_tag(self, tag: &str) -> Message;
    }

    impl WithToTag for Message {
        fn with_to_tag(mut self, tag: &str) -> Message {
            let to = format!("{};tag={tag}", self.header("To").unwrap_or_default());
            self.headers.set("To", to);
            self
        }
    }
}
