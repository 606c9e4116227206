//! MESSAGE requests from devices: the body is decoded by its declared
//! charset, parsed as MANSCDP, and handed to keepalive or catalog handling.
//! Every MESSAGE gets an answer: 200, 400 for a body that is not MANSCDP,
//! 403 for a device not accepted, 404 for one that is not registered.

use super::charset;
use super::counters::SipCounters;
use super::headers;
use super::manscdp::{self, Root};
use super::message::Message;
use super::server::{Reply, Shared};
use super::transport::Peer;
use tracing::debug;

impl Shared {
    pub(super) fn on_message(&self, request: &Message, peer: &Peer) -> Reply {
        let Some(device_id) = headers::from(request).and_then(|from| from.uri.user) else {
            return self.reply(request, peer, 400, "Bad Request").into();
        };
        let upstream = self
            .upstreams()
            .iter()
            .find(|l| l.id() == device_id)
            .cloned();
        if let Some(link) = upstream {
            return self.on_upstream_message(&link, request, peer);
        }
        self.on_device_message(&device_id, request, peer).into()
    }

    fn on_device_message(&self, device_id: &str, request: &Message, peer: &Peer) -> Message {
        let device_id = device_id.to_owned();
        if !self.settings.accepts(&device_id) {
            SipCounters::add(&self.counters.unknown_device);
            self.log_bad("unknown_device", peer, &device_id);
            return self.reply(request, peer, 403, "Forbidden");
        }
        let (text, charset) = charset::decode(&request.body);
        let command = match manscdp::parse(&text) {
            Ok(command) => command,
            Err(error) => {
                SipCounters::add(&self.counters.bad_xml);
                self.log_bad("bad_xml", peer, &error.to_string());
                return self.reply(request, peer, 400, "Bad Request");
            }
        };
        if command.is(Root::Notify, "Keepalive") {
            let code = self.on_keepalive(&device_id, peer);
            self.remember_charset(&device_id, charset);
            let reason = if code == 200 { "OK" } else { "Not Registered" };
            return self.reply(request, peer, code, reason);
        }
        if self.registry().online_peer(&device_id).is_none() {
            SipCounters::add(&self.counters.not_registered);
            return self.reply(request, peer, 404, "Not Registered");
        }
        self.remember_charset(&device_id, charset);
        match command.catalog {
            Some(part) => self.on_catalog_part(&device_id, command.sn.unwrap_or(0), part),
            None => {
                debug!(device = %device_id, cmd = %command.cmd_type, "MANSCDP command not handled; answered 200")
            }
        }
        self.reply(request, peer, 200, "OK")
    }

    fn remember_charset(&self, device_id: &str, charset: charset::Charset) {
        if let Some(device) = self.registry().get_mut(device_id) {
            device.charset = charset;
        }
    }
}
