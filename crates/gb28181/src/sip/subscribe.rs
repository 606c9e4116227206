//! SUBSCRIBE from a superior platform (GB/T 28181-2016 9.11).
//!
//! - In the dialog of one of its subscriptions (same Call-ID and tags): a
//!   refresh, or its end with `Expires: 0` ([`super::subscription`]); in
//!   a dialog we do not have (expired, or from before a restart of ours):
//!   481, and the superior subscribes anew.
//! - Catalog (`Event: Catalog` or a `Query Catalog` body, 目录订阅): kept as
//!   a subscription whose changes go to the superior as NOTIFY
//!   ([`super::catalog_notify`]); only from a superior we are registered
//!   to (else 403).
//! - Alarm (a `Query Alarm` body, whatever the `Event`, 报警事件订阅):
//!   kept as a subscription with the conditions it asked for; while it
//!   lives, the alarms they take go to the superior as NOTIFY in it and
//!   the others not at all ([`super::alarm_subscription`]).
//! - Anything else (MobilePosition, ...) gets 489 Bad Event.
//!
//! A SUBSCRIBE from anyone but a superior of ours gets 403.

use super::catalog_notify::is_catalog;
use super::charset;
use super::headers;
use super::manscdp::{self, Command, Root};
use super::message::Message;
use super::server::{Reply, Shared};
use super::transport::Peer;
use std::sync::Arc;
use tracing::debug;

/// What `Allow-Events` lists in a 489: the events we take.
const ALLOW_EVENTS: &str = "Catalog, presence";

/// The MANSCDP body of a SUBSCRIBE, if it has one that reads.
pub(super) fn subscribe_body(request: &Message) -> Option<Command> {
    let (text, _) = charset::decode(&request.body);
    manscdp::parse(&text).ok()
}

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
        if headers::to(request).is_some_and(|t| t.tag().is_some()) {
            return match self.refresh_subscription(&link, request, peer) {
                Some(ok) => ok.into(),
                // A refresh of a subscription we do not have (expired, or
                // from before a restart): the superior subscribes anew.
                None => self
                    .reply(request, peer, 481, "Subscription Does Not Exist")
                    .into(),
            };
        }
        let command = subscribe_body(request);
        if is_catalog(request, command.as_ref()) {
            let sn = command.as_ref().and_then(|c| c.sn).unwrap_or(0);
            return self.subscribe_catalog(&link, request, peer, sn).into();
        }
        if let Some(query) = command.filter(|c| c.is(Root::Query, "Alarm")) {
            return self.subscribe_alarm(&link, request, peer, &query).into();
        }
        debug!(
            upstream = link.id(),
            event = request.header("Event").unwrap_or(""),
            "superior's subscription not supported; answered 489"
        );
        let mut no = self.reply(request, peer, 489, "Bad Event");
        no.headers.push("Allow-Events", ALLOW_EVENTS);
        no.into()
    }
}
