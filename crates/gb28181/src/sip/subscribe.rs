//! SUBSCRIBE from a superior platform. GB/T 28181-2016 has the superior
//! subscribe to alarms with a `Query Alarm` body (报警事件订阅); we accept
//! it with 200, its `Expires` echoed and a `Response Alarm` body with
//! `Result OK`. Alarms keep going as `MESSAGE Notify Alarm` to the
//! registered superior whether it subscribed or not (that is how the
//! standard's alarm notification goes, and what every superior takes), so
//! no subscription state is kept and no NOTIFY is sent. Other
//! subscriptions (Catalog, MobilePosition) get 489 Bad Event: we do not
//! send their notifications. A SUBSCRIBE from anyone but a superior of
//! ours gets 403.

use super::charset;
use super::headers;
use super::manscdp::{self, element, Root};
use super::message::Message;
use super::server::{Reply, Shared};
use super::transport::Peer;
use tracing::{debug, info};

/// The subscription time when the SUBSCRIBE gives none.
const DEFAULT_EXPIRES: u32 = 3600;

impl Shared {
    pub(super) fn on_subscribe(&self, request: &Message, peer: &Peer) -> Reply {
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
        let (text, _) = charset::decode(&request.body);
        let command = manscdp::parse(&text).ok();
        let Some(command) = command.filter(|c| c.is(Root::Query, "Alarm")) else {
            debug!(
                upstream = link.id(),
                event = request.header("Event").unwrap_or(""),
                "superior's subscription not supported; answered 489"
            );
            let mut no = self.reply(request, peer, 489, "Bad Event");
            no.headers.push("Allow-Events", "presence");
            return no.into();
        };
        let expires = headers::requested_expires(request).unwrap_or(DEFAULT_EXPIRES);
        info!(
            upstream = link.id(),
            expires, "superior platform subscribed to alarms"
        );
        let local = self.upstream_local(&link);
        let charset = link.settings.charset();
        let mut ok = self.reply(request, peer, 200, "OK");
        ok.headers.push("Contact", local.contact().to_string());
        ok.headers.push("Expires", expires.to_string());
        ok.headers.push("Content-Type", "Application/MANSCDP+xml");
        ok.body = charset.encode(&manscdp::response(
            "Alarm",
            command.sn.unwrap_or(0),
            &link.settings.config.local_id,
            charset.label(),
            &element("Result", "OK"),
        ));
        ok.into()
    }
}
