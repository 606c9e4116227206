//! REGISTER: the device id from the To header, `accept` policy, digest
//! challenge and check (with wrong-password throttling), registration,
//! refresh and unregistration, and the 200 with `Date` (GB/T 28181's time
//! sync: local time as `2026-12-04T19:00:00.000`).

use super::auth_limit::{Failure, Key};
use super::counters::SipCounters;
use super::device::DeviceEvent;
use super::digest::{self, Credentials, NonceCheck};
use super::headers;
use super::message::Message;
use super::server::{Reply, Shared};
use super::transport::Peer;
use chrono::{DateTime, Local, Utc};
use std::time::Duration;
use tracing::{info, warn};

/// The registration time when the device asks for none.
const DEFAULT_EXPIRES: u32 = 3600;

/// The `Date` of a REGISTER's 200 as GB/T 28181 writes it (local time, milliseconds).
pub fn gb_date(now: DateTime<Utc>) -> String {
    now.with_timezone(&Local)
        .format("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string()
}

impl Shared {
    pub(super) fn on_register(&self, request: &Message, peer: &Peer) -> Reply {
        let Some(device_id) = headers::to(request).and_then(|to| to.uri.user) else {
            return self.reply(request, peer, 400, "Bad Request").into();
        };
        if !self.settings.accepts(&device_id) {
            SipCounters::add(&self.counters.unknown_device);
            self.log_bad("unknown_device", peer, &device_id);
            return self.reply(request, peer, 403, "Forbidden").into();
        }
        let now = self.clock.now();
        let keys = [Key::Device(device_id.clone()), Key::Addr(peer.addr().ip())];
        if self.auth().blocked(&keys, now) {
            SipCounters::add(&self.counters.auth_blocked);
            return self.reply(request, peer, 403, "Forbidden").into();
        }
        if let Some(password) = self.settings.password_for(&device_id) {
            let credentials = request.header("Authorization").and_then(Credentials::parse);
            let Some(credentials) = credentials else {
                return self.challenge(request, peer, false).into();
            };
            match self.nonces.check(&credentials.nonce, now) {
                // A nonce from before a restart, or made up: ask again.
                NonceCheck::Forged => return self.challenge(request, peer, false).into(),
                NonceCheck::Stale => return self.challenge(request, peer, true).into(),
                NonceCheck::Valid => {}
            }
            if !credentials.verify("REGISTER", password.expose()) {
                SipCounters::add(&self.counters.auth_failures);
                let failure = self.auth().fail(&keys, now);
                if failure == Failure::NowBlocked {
                    warn!(
                        device = %device_id,
                        source = %peer.addr(),
                        block_secs = self.settings.auth_block.as_secs(),
                        "too many wrong passwords: device id and address blocked"
                    );
                    return self.reply(request, peer, 403, "Forbidden").into();
                }
                self.log_bad("wrong_password", peer, &device_id);
                return self.challenge(request, peer, false).into();
            }
            self.auth().succeed(&device_id);
        }
        let asked = headers::requested_expires(request).unwrap_or(DEFAULT_EXPIRES);
        if asked == 0 {
            return self.unregister(request, peer, &device_id, now).into();
        }
        let granted = asked.clamp(self.settings.expires_min, self.settings.expires_max);
        let registered = self.registry().register(
            &device_id,
            peer,
            Duration::from_secs(u64::from(granted)),
            now,
        );
        let Ok(came_online) = registered else {
            SipCounters::add(&self.counters.devices_full);
            self.log_bad("devices_full", peer, &device_id);
            return self.reply(request, peer, 503, "Service Unavailable").into();
        };
        SipCounters::add(&self.counters.registrations);
        if came_online {
            info!(device = %device_id, address = %peer.addr(), transport = peer.transport().as_str(),
                expires = granted, "device registered");
            self.publish(DeviceEvent::Registered {
                device_id: device_id.clone(),
            });
        }
        Reply {
            response: self.registered(request, peer, granted, now),
            query_catalog: came_online.then_some(device_id),
            upstream_query: None,
        }
    }

    fn challenge(&self, request: &Message, peer: &Peer, stale: bool) -> Message {
        SipCounters::add(&self.counters.auth_challenges);
        let nonce = self.nonces.issue(self.clock.now());
        let mut response = self.reply(request, peer, 401, "Unauthorized");
        response.headers.push(
            "WWW-Authenticate",
            digest::challenge(&self.settings.domain, &nonce, stale),
        );
        response
    }

    fn registered(
        &self,
        request: &Message,
        peer: &Peer,
        expires: u32,
        now: DateTime<Utc>,
    ) -> Message {
        let mut ok = self.reply(request, peer, 200, "OK");
        if let Some(contact) = request.header("Contact").and_then(headers::NameAddr::parse) {
            let mut contact = contact;
            contact.params.set("expires", Some(expires.to_string()));
            ok.headers.push("Contact", contact.to_string());
        }
        ok.headers.push("Expires", expires.to_string());
        ok.headers.push("Date", gb_date(now));
        ok
    }

    fn unregister(
        &self,
        request: &Message,
        peer: &Peer,
        device_id: &str,
        now: DateTime<Utc>,
    ) -> Message {
        if self.registry().unregister(device_id) {
            SipCounters::add(&self.counters.unregistrations);
            info!(device = %device_id, "device unregistered");
            self.close_dialogs_of(device_id);
            self.publish(DeviceEvent::Unregistered {
                device_id: device_id.to_owned(),
            });
        }
        self.registered(request, peer, 0, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn date_in_the_gb_form() {
        let d = gb_date(Utc.with_ymd_and_hms(2026, 12, 4, 11, 0, 0).unwrap());
        assert_eq!(d.len(), "2026-12-04T19:00:00.000".len());
        assert!(d.ends_with(":00:00.000"));
        assert_eq!(&d[10..11], "T");
    }
}
