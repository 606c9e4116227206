//! Catalog subscriptions of a superior platform (目录订阅 and 目录通知,
//! GB/T 28181-2016 9.11): a registered superior SUBSCRIBEs with
//! `Event: Catalog` and a `Query Catalog` body; we answer 200 with the
//! granted `Expires` and keep the dialog. While it lasts, the catalog that
//! superior sees ([`catalog_items`]) is compared every `catalog_check` with
//! the one last notified, and each difference goes to it as NOTIFY (in the
//! dialog: its tags, our CSeq, `Subscription-State: active;expires=N`) with
//! a `Notify Catalog` body whose items carry their `<Event>` (ON, OFF, ADD,
//! DEL, UPDATE; [`catalog_changes`]).
//!
//! Comparing snapshots rather than listening to camera events keeps one
//! source of truth (the catalog as the query answers it) and catches every
//! kind of change alike: health, config reloads, GB channels coming and
//! going. A NOTIFY goes through the transaction layer (retransmitted over
//! UDP until answered or 64*T1); one that fails leaves the last notified
//! catalog as it was, so the change is told again at the next check (never
//! lost, perhaps told twice). A failed NOTIFY never touches the
//! registration; a 481 (the superior forgot the subscription) ends it.
//!
//! A refresh SUBSCRIBE in the dialog extends it, `Expires: 0` ends it, and
//! it ends by itself when its time runs out. A superior has at most one:
//! a new SUBSCRIBE (another Call-ID, e.g. after the superior restarted)
//! replaces the old one.

use super::build::{self, Outgoing};
use super::cascade::{catalog_changes, catalog_items, notify_bodies, CatalogEvent, CatalogItem};
use super::headers::{self, NameAddr, SipUri};
use super::manscdp::{self, element};
use super::message::{Message, Method};
use super::server::{lock, Shared};
use super::transport::Peer;
use super::upstream::{tx_error, Link, LinkError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};
use xueliang_core::gb28181::UpstreamState;

/// The subscription time when the SUBSCRIBE gives none.
pub(super) const DEFAULT_EXPIRES: u32 = 3600;
/// The longest subscription granted: a superior refreshes before the end.
const MAX_EXPIRES: u32 = 86_400;

/// The live catalog subscriptions, by Call-ID.
#[derive(Default)]
pub struct CatalogSubscriptions {
    by_call: Mutex<HashMap<String, Subscription>>,
}

/// What a refresh may change of a subscription.
struct Subscription {
    upstream: String,
    /// The dialog's tags: ours (To of the SUBSCRIBE) and the superior's.
    our_tag: String,
    their_tag: String,
    /// When it ends unless refreshed.
    until: Instant,
    /// Where its last SUBSCRIBE came from: our NOTIFYs go there (NAT, TCP).
    peer: Peer,
    stop: CancellationToken,
}

/// What our NOTIFYs need of the dialog the SUBSCRIBE made; fixed for its life.
struct NotifyDialog {
    call_id: String,
    /// The superior's Contact (else its From URI at its address).
    target: SipUri,
    /// Its To with our tag: our From.
    ours: NameAddr,
    our_tag: String,
    /// Its From, with its tag: our To.
    theirs: NameAddr,
    /// Its `Event` header, echoed (with an `id` parameter if it had one).
    event: String,
}

impl CatalogSubscriptions {
    /// Keeps a new subscription; ends the superior's previous one.
    fn insert(&self, call_id: &str, subscription: Subscription) {
        let mut by_call = lock(&self.by_call);
        by_call.retain(|_, s| {
            let same = s.upstream == subscription.upstream;
            if same {
                s.stop.cancel();
            }
            !same
        });
        by_call.insert(call_id.to_owned(), subscription);
    }

    /// The seconds left and where to send, while the subscription lives;
    /// an expired one is removed.
    fn live(&self, call_id: &str) -> Option<(u32, Peer)> {
        let mut by_call = lock(&self.by_call);
        let s = by_call.get(call_id)?;
        let left = s.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            by_call.remove(call_id);
            return None;
        }
        Some((left.as_secs_f64().ceil() as u32, s.peer.clone()))
    }

    fn remove(&self, call_id: &str) {
        if let Some(s) = lock(&self.by_call).remove(call_id) {
            s.stop.cancel();
        }
    }
}

/// Whether a SUBSCRIBE is for the catalog: `Event: Catalog`, or (for
/// superiors that put it only in the body) a `Query Catalog` body.
pub(super) fn is_catalog(request: &Message, command: Option<&manscdp::Command>) -> bool {
    let event = request
        .header("Event")
        .and_then(|e| e.split(';').next())
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("Catalog"));
    event || command.is_some_and(|c| c.is(manscdp::Root::Query, "Catalog"))
}

/// The seconds a SUBSCRIBE asks for, as granted.
fn granted(request: &Message) -> u32 {
    headers::requested_expires(request)
        .unwrap_or(DEFAULT_EXPIRES)
        .min(MAX_EXPIRES)
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
        let local = self.upstream_local(link);
        let charset = link.settings.charset();
        let mut ok = self.reply(request, peer, 200, "OK");
        ok.headers.push("Contact", local.contact().to_string());
        ok.headers.push("Expires", expires.to_string());
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

    /// A new catalog SUBSCRIBE (no To tag) from `link`'s superior: 200 and
    /// a subscription when we are registered to it, 403 otherwise.
    pub(super) fn subscribe_catalog(
        self: &Arc<Self>,
        link: &Arc<Link>,
        request: &Message,
        peer: &Peer,
        sn: u32,
    ) -> Message {
        if link.state() != UpstreamState::Registered {
            self.log_bad(
                "catalog_subscribe_not_registered",
                peer,
                "SUBSCRIBE Catalog from a superior we are not registered to",
            );
            return self.reply(request, peer, 403, "Forbidden");
        }
        let expires = granted(request);
        let ok = self.subscribed(link, request, peer, "Catalog", sn, expires);
        let (Some(call_id), Some(theirs), Some(ours)) =
            (request.call_id(), headers::from(request), headers::to(&ok))
        else {
            return self.reply(request, peer, 400, "Bad Request");
        };
        let (Some(their_tag), Some(our_tag)) = (theirs.tag(), ours.tag()) else {
            return self.reply(request, peer, 400, "Bad Request");
        };
        if expires == 0 {
            // A subscription that ends as it starts: nothing to keep.
            return ok;
        }
        let dialog = NotifyDialog {
            call_id: call_id.to_owned(),
            target: request
                .header("Contact")
                .and_then(NameAddr::parse)
                .map(|c| c.uri)
                .unwrap_or_else(|| SipUri::at(link.id(), peer.addr())),
            our_tag: our_tag.to_owned(),
            ours: ours.clone(),
            theirs: theirs.clone(),
            event: request.header("Event").unwrap_or("Catalog").to_owned(),
        };
        let stop = self.shutdown.child_token();
        self.catalog_subs.insert(
            call_id,
            Subscription {
                upstream: link.id().to_owned(),
                our_tag: our_tag.to_owned(),
                their_tag: their_tag.to_owned(),
                until: Instant::now() + Duration::from_secs(u64::from(expires)),
                peer: peer.clone(),
                stop: stop.clone(),
            },
        );
        info!(
            upstream = link.id(),
            expires, "superior platform subscribed to the catalog"
        );
        // The catalog as it is now is what the superior has (it queries it
        // around its subscription); changes from here on are notified.
        let notified = catalog_items(&link.settings.config, &link.cameras.cameras());
        tokio::spawn(
            self.clone()
                .run_catalog_subscription(link.clone(), dialog, notified, stop),
        );
        ok
    }

    /// A SUBSCRIBE in the dialog of a catalog subscription (same Call-ID
    /// and tags): `Expires: 0` ends it, any other time extends it. `None`
    /// when it belongs to no catalog subscription of `link`.
    pub(super) fn refresh_catalog(
        &self,
        link: &Link,
        request: &Message,
        peer: &Peer,
    ) -> Option<Message> {
        let call_id = request.call_id()?;
        let their_tag = headers::from(request)?.tag()?.to_owned();
        let our_tag = headers::to(request)?.tag()?.to_owned();
        let expires = granted(request);
        {
            let mut by_call = lock(&self.catalog_subs.by_call);
            let s = by_call.get_mut(call_id).filter(|s| {
                s.upstream == link.id() && s.our_tag == our_tag && s.their_tag == their_tag
            })?;
            s.until = Instant::now() + Duration::from_secs(u64::from(expires));
            s.peer = peer.clone();
        }
        if expires == 0 {
            self.catalog_subs.remove(call_id);
            info!(
                upstream = link.id(),
                "superior platform ended its catalog subscription"
            );
        }
        let mut ok = self.reply(request, peer, 200, "OK");
        ok.headers
            .push("Contact", self.upstream_local(link).contact().to_string());
        ok.headers.push("Expires", expires.to_string());
        Some(ok)
    }

    /// One subscription until it ends (expired, ended, replaced, 481,
    /// shutdown): the catalog checked every `catalog_check`, changes
    /// notified while we are registered.
    async fn run_catalog_subscription(
        self: Arc<Self>,
        link: Arc<Link>,
        dialog: NotifyDialog,
        mut notified: Vec<CatalogItem>,
        stop: CancellationToken,
    ) {
        let span = tracing::info_span!("catalog_subscription", upstream = %link.id());
        async {
            let mut cseq = 0;
            // Failed checks in a row: only the first is logged as a warning.
            let mut failing = 0u32;
            loop {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => return,
                    _ = sleep(link.settings.catalog_check) => {}
                }
                let Some((expires, peer)) = self.catalog_subs.live(&dialog.call_id) else {
                    info!("catalog subscription over: its time ran out");
                    return;
                };
                // Not registered (re-registering after a failure): the
                // changes wait for the link to come back.
                if link.state() != UpstreamState::Registered {
                    continue;
                }
                let now = catalog_items(&link.settings.config, &link.cameras.cameras());
                let changes = catalog_changes(&notified, &now);
                if changes.is_empty() {
                    continue;
                }
                let sent = self
                    .notify_catalog(&link, &dialog, &mut cseq, &changes, expires, &peer)
                    .await;
                match sent {
                    Ok(()) => {
                        info!(changes = changes.len(), "catalog changes notified");
                        notified = now;
                        failing = 0;
                    }
                    Err(LinkError::Refused { code: 481, .. }) => {
                        info!("superior no longer has the catalog subscription (481): ended");
                        self.catalog_subs.remove(&dialog.call_id);
                        return;
                    }
                    Err(LinkError::ShuttingDown) => return,
                    Err(error) => {
                        failing += 1;
                        if failing == 1 {
                            warn!(%error, changes = changes.len(),
                                "catalog NOTIFY not taken; told again at the next check");
                        } else {
                            debug!(%error, failing, "catalog NOTIFY not taken again");
                        }
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// The NOTIFYs of `changes`, one per chunk, each after the previous
    /// one's 2xx; counted on the link.
    async fn notify_catalog(
        &self,
        link: &Link,
        dialog: &NotifyDialog,
        cseq: &mut u32,
        changes: &[(CatalogEvent, CatalogItem)],
        expires: u32,
        peer: &Peer,
    ) -> Result<(), LinkError> {
        let charset = link.settings.charset();
        let bodies = notify_bodies(
            &link.settings.config,
            changes,
            link.next_sn(),
            link.settings.catalog_chunk,
            charset.label(),
        );
        for body in bodies {
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
            request
                .headers
                .push("Content-Type", "Application/MANSCDP+xml");
            request.body = charset.encode(&body);
            let result = match self
                .client
                .request(&self.tx_context(), &request, peer)
                .await
            {
                Ok(response) => match response.status() {
                    Some(200..=299) => Ok(()),
                    code => Err(LinkError::Refused {
                        code: code.unwrap_or(0),
                        reason: response.reason().unwrap_or_default().to_owned(),
                    }),
                },
                Err(e) => Err(tx_error(e)),
            };
            if result != Err(LinkError::ShuttingDown) {
                link.catalog_notify_done(result.is_ok());
            }
            result?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse::parse_datagram;

    fn subscribe(extra: &str) -> Message {
        let text = format!(
            "SUBSCRIBE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\n\
             From: <sip:s@d>;tag=f\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 SUBSCRIBE\r\n{extra}\r\n"
        );
        parse_datagram(text.as_bytes(), 65535).expect("a SUBSCRIBE")
    }

    #[test]
    fn catalog_is_told_by_the_event_or_the_body() {
        assert!(is_catalog(&subscribe("Event: Catalog\r\n"), None));
        assert!(is_catalog(&subscribe("Event: catalog;id=7\r\n"), None));
        assert!(!is_catalog(&subscribe("Event: presence\r\n"), None));
        let query = manscdp::parse(&manscdp::query("Catalog", 1, "x", "GB2312")).ok();
        assert!(is_catalog(
            &subscribe("Event: presence\r\n"),
            query.as_ref()
        ));
        let alarm = manscdp::parse(&manscdp::query("Alarm", 1, "x", "GB2312")).ok();
        assert!(!is_catalog(
            &subscribe("Event: presence\r\n"),
            alarm.as_ref()
        ));
    }

    #[test]
    fn the_granted_time_is_asked_default_or_capped() {
        assert_eq!(granted(&subscribe("Expires: 600\r\n")), 600);
        assert_eq!(granted(&subscribe("Expires: 0\r\n")), 0);
        assert_eq!(granted(&subscribe("")), DEFAULT_EXPIRES);
        assert_eq!(granted(&subscribe("Expires: 999999\r\n")), MAX_EXPIRES);
    }

    #[test]
    fn a_superior_keeps_one_subscription_and_expired_ones_go() {
        let subs = CatalogSubscriptions::default();
        let peer = Peer::Udp("127.0.0.1:5060".parse().expect("address"));
        let sub = |upstream: &str, secs: u64, stop: &CancellationToken| Subscription {
            upstream: upstream.into(),
            our_tag: "o".into(),
            their_tag: "t".into(),
            until: Instant::now() + Duration::from_secs(secs),
            peer: peer.clone(),
            stop: stop.clone(),
        };
        let (first, second, other) = (
            CancellationToken::new(),
            CancellationToken::new(),
            CancellationToken::new(),
        );
        subs.insert("a", sub("sup", 60, &first));
        subs.insert("x", sub("other", 0, &other));
        assert_eq!(subs.live("a").map(|(e, _)| e), Some(60));
        subs.insert("b", sub("sup", 60, &second));
        assert!(first.is_cancelled(), "the older one is ended");
        assert!(subs.live("a").is_none());
        assert!(subs.live("b").is_some() && !second.is_cancelled());
        assert!(subs.live("x").is_none(), "expired");
        subs.remove("b");
        assert!(second.is_cancelled() && subs.live("b").is_none());
    }
}
