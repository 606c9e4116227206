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
//! The dialog is [`super::subscription`]'s: a refresh SUBSCRIBE in it
//! extends the subscription, `Expires: 0` ends it, and it ends by itself
//! when its time runs out. A superior has at most one: a new SUBSCRIBE
//! (another Call-ID, e.g. after the superior restarted) replaces the old
//! one.

use super::cascade::{catalog_changes, catalog_items, notify_bodies, CatalogEvent, CatalogItem};
use super::manscdp;
use super::message::Message;
use super::server::Shared;
use super::subscription::{granted, Live, NotifyDialog, Subscriptions};
use super::transport::Peer;
use super::upstream::{Link, LinkError};
use std::sync::Arc;
use tokio::time::sleep;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};
use xueliang_core::gb28181::UpstreamState;

/// The live catalog subscriptions.
pub type CatalogSubscriptions = Subscriptions<()>;

/// Whether a SUBSCRIBE is for the catalog: `Event: Catalog`, or (for
/// superiors that put it only in the body) a `Query Catalog` body.
pub(super) fn is_catalog(request: &Message, command: Option<&manscdp::Command>) -> bool {
    let event = request
        .header("Event")
        .and_then(|e| e.split(';').next())
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("Catalog"));
    event || command.is_some_and(|c| c.is(manscdp::Root::Query, "Catalog"))
}

impl Shared {
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
        let Some(dialog) = NotifyDialog::new(link, request, &ok, peer, "Catalog") else {
            return self.reply(request, peer, 400, "Bad Request");
        };
        if expires == 0 {
            // A subscription that ends as it starts: nothing to keep.
            return ok;
        }
        let call_id = dialog.call_id.clone();
        let stop = self.shutdown.child_token();
        self.catalog_subs
            .insert(link.id(), dialog, expires, peer, stop.clone(), ());
        info!(
            upstream = link.id(),
            expires, "superior platform subscribed to the catalog"
        );
        // The catalog as it is now is what the superior has (it queries it
        // around its subscription); changes from here on are notified.
        let notified = catalog_items(&link.settings.config, &link.cameras.cameras());
        tokio::spawn(
            self.clone()
                .run_catalog_subscription(link.clone(), call_id, notified, stop),
        );
        ok
    }

    /// One subscription until it ends (expired, ended, replaced, 481,
    /// shutdown): the catalog checked every `catalog_check`, changes
    /// notified while we are registered.
    async fn run_catalog_subscription(
        self: Arc<Self>,
        link: Arc<Link>,
        call_id: String,
        mut notified: Vec<CatalogItem>,
        stop: CancellationToken,
    ) {
        let span = tracing::info_span!("catalog_subscription", upstream = %link.id());
        async {
            // Failed checks in a row: only the first is logged as a warning.
            let mut failing = 0u32;
            loop {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => return,
                    _ = sleep(link.settings.catalog_check) => {}
                }
                let Some(live) = self.catalog_subs.live(&call_id) else {
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
                match self.notify_catalog(&link, &live, &changes).await {
                    Ok(()) => {
                        info!(changes = changes.len(), "catalog changes notified");
                        notified = now;
                        failing = 0;
                    }
                    Err(LinkError::Refused { code: 481, .. }) => {
                        info!("superior no longer has the catalog subscription (481): ended");
                        self.catalog_subs.remove(&call_id);
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
        live: &Live<()>,
        changes: &[(CatalogEvent, CatalogItem)],
    ) -> Result<(), LinkError> {
        let bodies = notify_bodies(
            &link.settings.config,
            changes,
            link.next_sn(),
            link.settings.catalog_chunk,
            link.settings.charset().label(),
        );
        for body in bodies {
            let result = self
                .notify(link, &live.dialog, live.expires, &live.peer, &body)
                .await;
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
    use crate::sip::subscription::tests::subscribe;

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
}
