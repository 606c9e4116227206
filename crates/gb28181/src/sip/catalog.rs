//! The catalog: a Query MESSAGE to the device (in its charset), and the
//! Response MESSAGEs that come back, gathered by SN until SumNum items have
//! arrived. A complete answer replaces the device's channels; an answer
//! still incomplete after `catalog_timeout` is merged in (devices sometimes
//! announce more items than they send) and counted.

use super::counters::SipCounters;
use super::device::DeviceEvent;
use super::error::SipError;
use super::headers::{NameAddr, SipUri};
use super::manscdp::{self, CatalogPart, Channel};
use super::message::Method;
use super::server::Shared;
use super::{build, error::TxError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tracing::{info, warn};

/// At most this many answers are gathered at once; a new one beyond it
/// pushes out the oldest (a device flooding SNs cannot grow the table).
const MAX_PENDING: usize = 1024;
/// At most this many items in one answer.
const MAX_ITEMS: usize = 10_000;

struct Pending {
    sum_num: usize,
    items: Vec<Channel>,
    started: DateTime<Utc>,
}

/// Catalog answers being gathered, by device and SN.
#[derive(Default)]
pub struct CatalogAssembler {
    pending: HashMap<(String, u32), Pending>,
}

/// A gathered answer: the device, its channels, whether all came.
pub type Gathered = (String, Vec<Channel>, bool);

impl CatalogAssembler {
    /// Adds one part; returns the whole answer once SumNum items are in.
    pub fn add(
        &mut self,
        device_id: &str,
        sn: u32,
        part: CatalogPart,
        now: DateTime<Utc>,
    ) -> Option<Gathered> {
        let key = (device_id.to_owned(), sn);
        if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING {
            let oldest = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.pending.remove(&oldest);
            }
        }
        let pending = self.pending.entry(key.clone()).or_insert(Pending {
            sum_num: 0,
            items: Vec::new(),
            started: now,
        });
        // Without SumNum, a part is taken as the whole answer.
        let sum_num = part.sum_num.map_or(part.items.len(), |n| n as usize);
        pending.sum_num = sum_num.min(MAX_ITEMS);
        for item in part.items {
            match pending.items.iter().position(|c| c.id == item.id) {
                Some(known) => pending.items[known] = item,
                None if pending.items.len() < MAX_ITEMS => pending.items.push(item),
                None => {}
            }
        }
        if pending.items.len() < pending.sum_num {
            return None;
        }
        let done = self.pending.remove(&key)?;
        Some((key.0, done.items, true))
    }

    /// Answers that stopped short for longer than `timeout`.
    pub fn expire(&mut self, now: DateTime<Utc>, timeout: std::time::Duration) -> Vec<Gathered> {
        let timeout = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
        let stale: Vec<(String, u32)> = self
            .pending
            .iter()
            .filter(|(_, p)| now - p.started >= timeout)
            .map(|(k, _)| k.clone())
            .collect();
        stale
            .into_iter()
            .filter_map(|key| self.pending.remove(&key).map(|p| (key.0, p.items, false)))
            .collect()
    }
}

/// The To of requests to a device: its id at its own domain (its first 10 digits).
pub fn device_to(device_id: &str) -> NameAddr {
    let domain: String = device_id.chars().take(10).collect();
    NameAddr::new(SipUri::new(device_id, &domain, None))
}

impl Shared {
    pub(super) fn on_catalog_part(&self, device_id: &str, sn: u32, part: CatalogPart) {
        let counted = part.items.len() as u64;
        self.counters
            .catalog_items
            .fetch_add(counted, std::sync::atomic::Ordering::Relaxed);
        let gathered = self.catalogs().add(device_id, sn, part, self.clock.now());
        if let Some(gathered) = gathered {
            self.store_catalog(gathered);
        }
    }

    pub(super) fn expire_catalogs(&self) {
        let expired = self
            .catalogs()
            .expire(self.clock.now(), self.settings.catalog_timeout);
        for gathered in expired {
            SipCounters::add(&self.counters.catalog_incomplete);
            warn!(device = %gathered.0, items = gathered.1.len(), "catalog answer incomplete: keeping what came");
            self.store_catalog(gathered);
        }
    }

    fn store_catalog(&self, (device_id, channels, complete): Gathered) {
        let count = {
            let mut registry = self.registry();
            let Some(device) = registry.get_mut(&device_id) else {
                return;
            };
            if complete {
                device.channels = channels;
            } else {
                for channel in channels {
                    match device.channels.iter_mut().find(|c| c.id == channel.id) {
                        Some(known) => *known = channel,
                        None => device.channels.push(channel),
                    }
                }
            }
            device.catalog_at = Some(self.clock.now());
            device.channels.len()
        };
        info!(device = %device_id, channels = count, complete, "catalog updated");
        self.publish(DeviceEvent::CatalogUpdated {
            device_id,
            channels: count,
        });
    }

    /// Sends a Catalog query and waits for the device to accept it.
    pub(super) async fn query_catalog(&self, device_id: &str) -> Result<(), SipError> {
        let (peer, charset) = self
            .registry()
            .online_peer(device_id)
            .ok_or_else(|| SipError::DeviceOffline(device_id.to_owned()))?;
        let sn = self.next_sn();
        let body = manscdp::query("Catalog", sn, device_id, charset.label());
        let uri = SipUri::at(device_id, peer.addr());
        let to = device_to(device_id);
        let call_id = build::call_id();
        let mut request = build::request(
            &self.local,
            &build::Outgoing {
                method: Method::Message,
                uri: &uri,
                from_tag: &build::tag(),
                to: &to,
                call_id: &call_id,
                cseq: 1,
                transport: peer.transport(),
            },
        );
        request
            .headers
            .push("Content-Type", "Application/MANSCDP+xml");
        request.body = charset.encode(&body);
        let response = self
            .client
            .request(&self.tx_context(), &request, &peer)
            .await
            .map_err(|e| match e {
                TxError::Timeout => SipError::Timeout(device_id.to_owned()),
                TxError::Send(detail) => SipError::Transport {
                    device_id: device_id.to_owned(),
                    detail,
                },
                TxError::ShuttingDown => SipError::ShuttingDown,
            })?;
        match response.status() {
            Some(200..=299) => Ok(()),
            code => Err(SipError::Refused {
                device_id: device_id.to_owned(),
                code: code.unwrap_or(0),
                reason: response.reason().unwrap_or_default().to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 19, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    fn part(sum: Option<u32>, ids: &[&str]) -> CatalogPart {
        CatalogPart {
            sum_num: sum,
            items: ids
                .iter()
                .map(|id| Channel {
                    id: id.to_string(),
                    name: format!("n{id}"),
                    ..Channel::default()
                })
                .collect(),
        }
    }

    #[test]
    fn parts_gather_by_sn_until_sum_num() {
        let mut a = CatalogAssembler::default();
        assert!(a.add("d", 5, part(Some(3), &["1", "2"]), t(0)).is_none());
        assert!(
            a.add("d", 6, part(Some(1), &["9"]), t(0)).is_some(),
            "another SN is its own answer"
        );
        assert!(
            a.add("d", 5, part(Some(3), &["2"]), t(1)).is_none(),
            "a repeated item counts once"
        );
        let (dev, items, complete) = a.add("d", 5, part(Some(3), &["3"]), t(2)).unwrap();
        assert_eq!((dev.as_str(), items.len(), complete), ("d", 3, true));
        assert!(
            a.add("d", 7, part(None, &["1", "2"]), t(0)).is_some(),
            "no SumNum: one part"
        );
    }

    #[test]
    fn incomplete_answers_are_given_up_after_the_timeout() {
        let mut a = CatalogAssembler::default();
        a.add("d", 1, part(Some(4), &["1"]), t(0));
        assert!(a
            .expire(t(29), std::time::Duration::from_secs(30))
            .is_empty());
        let gone = a.expire(t(30), std::time::Duration::from_secs(30));
        assert_eq!(gone.len(), 1);
        assert!(!gone[0].2);
        assert!(a
            .expire(t(60), std::time::Duration::from_secs(30))
            .is_empty());
    }

    #[test]
    fn a_flood_of_sns_stays_bounded() {
        let mut a = CatalogAssembler::default();
        for sn in 0..(MAX_PENDING as u32 + 50) {
            a.add("d", sn, part(Some(10), &["1"]), t(i64::from(sn)));
        }
        assert_eq!(a.pending.len(), MAX_PENDING);
        assert_eq!(
            device_to("34020000001320000001").to_string(),
            "<sip:34020000001320000001@3402000000>"
        );
    }
}
