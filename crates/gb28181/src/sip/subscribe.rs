//! SUBSCRIBE from a superior platform (GB/T 28181-2016 9.11).
//!
//! - Catalog (`Event: Catalog` or a `Query Catalog` body, 目录订阅): kept as
//!   a subscription whose changes go to the superior as NOTIFY
//!   ([`super::catalog_notify`]); only from a superior we are registered
//!   to (else 403). Refreshes and `Expires: 0` come in its dialog.
//! - Alarm (a `Query Alarm` body, 报警事件订阅): accepted with 200, its
//!   `Expires` echoed and a `Response Alarm` body with `Result OK`.
//!   Alarms keep going as `MESSAGE Notify Alarm` to the registered
//!   superior whether it subscribed or not (that is how the standard's
//!   alarm notification goes, and what every superior takes), so no state
//!   is kept and no NOTIFY is sent.
//! - Anything else (MobilePosition, ...) gets 489 Bad Event.
//!
//! A SUBSCRIBE from anyone but a superior of ours gets 403.

use super::catalog_notify::{is_catalog, DEFAULT_EXPIRES};
use super::charset;
use super::headers;
use super::manscdp::{self, Root};
use super::message::Message;
use super::server::{Reply, Shared};
use super::transport::Peer;
use std::sync::Arc;
use tracing::{debug, info};

/// What `Allow-Events` lists in a 489: the events we take.
const ALLOW_EVENTS: &str = "Catalog, presence";

impl Shared {
    pub(super) fn on_subscribe(self: &Arc<Self>, request: &Message, peer: &Peer) -> Reply {
        let from = headers::from(request).and_then(|f| f.uri.user);
        let link = from.and_then(|id| self.upstreams().iter().find(|l| l.id() == id).cloned());
        let Some(link) = link else {
            self.log_bad(
                "unknown_subscriber",
                peer,
                request.header("From").unwrap_or(""),
            );
            return self.reply(request, peer, 403, "Forbidden").into();
        };
        if let Some(ok) = self.refresh_catalog(&link, request, peer) {
            return ok.into();
        }
        let (text, _) = charset::decode(&request.body);
        let command = manscdp::parse(&text).ok();
        let sn = command.as_ref().and_then(|c| c.sn).unwrap_or(0);
        let in_dialog = headers::to(request).is_some_and(|t| t.tag().is_some());
        if is_catalog(request, command.as_ref()) {
            if in_dialog {
                // A refresh of a subscription we do not have (expired, or
                // from before a restart): the superior subscribes anew.
                return self
                    .reply(request, peer, 481, "Subscription Does Not Exist")
                    .into();
            }
            return self.subscribe_catalog(&link, request, peer, sn).into();
        }
        if !command.is_some_and(|c| c.is(Root::Query, "Alarm")) {
            debug!(
                upstream = link.id(),
                event = request.header("Event").unwrap_or(""),
                "superior's subscription not supported; answered 489"
            );
            let mut no = self.reply(request, peer, 489, "Bad Event");
            no.headers.push("Allow-Events", ALLOW_EVENTS);
            return no.into();
        }
        let expires = headers::requested_expires(request).unwrap_or(DEFAULT_EXPIRES);
        info!(
            upstream = link.id(),
            expires, "superior platform subscribed to alarms"
        );
        self.subscribed(&link, request, peer, "Alarm", sn, expires)
            .into()
    }
}
