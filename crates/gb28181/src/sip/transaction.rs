//! The transaction layer, as much of RFC 3261 section 17 as the platform
//! needs. Client side: our requests (MESSAGE, INVITE, BYE) retransmitted
//! over UDP (Timers A/E, doubling from T1), ended by a final response or by
//! Timer B/F (64*T1); an INVITE that got a provisional answer waits up to
//! `invite_timeout`; a non-2xx final to an INVITE is ACKed here. Server
//! side: a retransmitted request is answered from a cache of our responses
//! instead of being handled twice.

use super::counters::SipCounters;
use super::error::TxError;
use super::headers::{self, CSeq};
use super::message::{Message, Method};
use super::transport::{Peer, Transport};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;

/// Responses queued for one pending transaction. When full, a further
/// (retransmitted) response is dropped: the first copy is already queued.
const RESPONSE_QUEUE: usize = 8;
/// RFC 3261's T2: the cap of non-INVITE retransmission intervals.
const T2: Duration = Duration::from_secs(4);
/// How long our responses are kept to answer retransmissions (64*T1).
const RESPONSE_CACHE_TTL: Duration = Duration::from_secs(32);
/// At most this many cached responses (the oldest go first).
const RESPONSE_CACHE_MAX: usize = 4096;

fn client_key(message: &Message) -> Option<String> {
    let branch = headers::top_via(message)?.branch()?.to_owned();
    let cseq = CSeq::of(message)?;
    Some(format!("{branch} {}", cseq.method))
}

/// What the dispatcher does with a transaction's final response before
/// anything else sees it: before the request's future wakes, and before
/// the next message that came in is handled. Our REGISTER's 200 marks the
/// link registered here, so a superior's SUBSCRIBE sent right after that
/// 200 finds it registered.
pub type OnFinal = Box<dyn FnOnce(&Message) + Send>;

/// One of our requests waiting for its responses.
struct Pending {
    responses: mpsc::Sender<Message>,
    on_final: Option<OnFinal>,
}

/// Our requests waiting for responses, by Via branch and CSeq method.
#[derive(Default)]
pub struct ClientTransactions {
    pending: Mutex<HashMap<String, Pending>>,
}

/// Removes a transaction from the table when its request future ends.
struct Registration<'a> {
    table: &'a ClientTransactions,
    key: String,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.table.lock().remove(&self.key);
    }
}

/// What one client transaction needs around it.
pub struct TxContext<'a> {
    pub transport: &'a Transport,
    pub counters: &'a SipCounters,
    pub t1: Duration,
    pub invite_timeout: Duration,
    pub shutdown: &'a CancellationToken,
}

impl ClientTransactions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a response to its transaction (running its [`OnFinal`] first,
    /// once, on the first final response); gives it back when none matches.
    pub fn deliver(&self, response: Message) -> Result<(), Message> {
        let Some(key) = client_key(&response) else {
            return Err(response);
        };
        let is_final = response.status().is_some_and(|code| code >= 200);
        let (sender, on_final) = {
            let mut pending = self.lock();
            let Some(p) = pending.get_mut(&key) else {
                return Err(response);
            };
            let on_final = if is_final { p.on_final.take() } else { None };
            (p.responses.clone(), on_final)
        };
        if let Some(on_final) = on_final {
            on_final(&response);
        }
        // Full: a retransmission of a response already queued; dropping it is harmless.
        let _ = sender.try_send(response);
        Ok(())
    }

    /// Sends a request and waits for its final response.
    pub async fn request(
        &self,
        context: &TxContext<'_>,
        request: &Message,
        peer: &Peer,
    ) -> Result<Message, TxError> {
        self.request_observed(context, request, peer, None).await
    }

    /// [`ClientTransactions::request`], with `on_final` run on the final
    /// response where it arrives (see [`OnFinal`]).
    pub async fn request_observed(
        &self,
        context: &TxContext<'_>,
        request: &Message,
        peer: &Peer,
        on_final: Option<OnFinal>,
    ) -> Result<Message, TxError> {
        let key = client_key(request).ok_or(TxError::Send("request without branch".into()))?;
        let (tx, mut rx) = mpsc::channel(RESPONSE_QUEUE);
        self.lock().insert(
            key.clone(),
            Pending {
                responses: tx,
                on_final,
            },
        );
        let _registration = Registration { table: self, key };

        let is_invite = request.method() == Some(&Method::Invite);
        let bytes = request.to_bytes();
        context
            .transport
            .send(peer, bytes.clone())
            .await
            .map_err(TxError::Send)?;
        let start = Instant::now();
        let mut retransmit = matches!(peer, Peer::Udp(_));
        let mut interval = context.t1;
        let mut next_retransmit = start + interval;
        let mut deadline = start + context.t1.saturating_mul(64);
        loop {
            tokio::select! {
                biased;
                _ = context.shutdown.cancelled() => return Err(TxError::ShuttingDown),
                response = rx.recv() => {
                    let Some(response) = response else { return Err(TxError::Timeout) };
                    let code = response.status().unwrap_or(0);
                    if code < 200 {
                        if is_invite {
                            retransmit = false;
                            deadline = Instant::now() + context.invite_timeout;
                        }
                        continue;
                    }
                    if is_invite && code >= 300 {
                        let ack = ack_for_failure(request, &response);
                        let _ = context.transport.send(peer, ack.to_bytes()).await;
                    }
                    return Ok(response);
                }
                _ = sleep_until(next_retransmit.into()), if retransmit => {
                    let _ = context.transport.send(peer, bytes.clone()).await;
                    SipCounters::add(&context.counters.retransmissions_sent);
                    interval = if is_invite {
                        interval.saturating_mul(2)
                    } else {
                        interval.saturating_mul(2).min(T2)
                    };
                    next_retransmit = Instant::now() + interval;
                }
                _ = sleep_until(deadline.into()) => {
                    SipCounters::add(&context.counters.transaction_timeouts);
                    return Err(TxError::Timeout);
                }
            }
        }
    }
}

/// The ACK of a non-2xx final response to an INVITE (RFC 3261 17.1.1.3):
/// same branch, the To of the response.
pub fn ack_for_failure(invite: &Message, response: &Message) -> Message {
    let uri = invite.request_uri().unwrap_or_default();
    let mut ack = Message::request(Method::Ack, uri);
    if let Some(via) = headers::vias(invite).first() {
        ack.headers.push("Via", *via);
    }
    ack.headers.push("Max-Forwards", "70");
    for (name, source) in [("From", invite), ("To", response), ("Call-ID", invite)] {
        if let Some(value) = source.header(name) {
            ack.headers.push(name, value);
        }
    }
    let seq = CSeq::of(invite).map_or(1, |c| c.seq);
    ack.headers.push("CSeq", format!("{seq} ACK"));
    ack
}

/// What the server side knows of a request it may have seen.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    New,
    /// Seen, not answered yet: ignore the retransmission.
    Pending,
    /// Answered: send this again.
    Answered(Vec<u8>),
}

#[derive(Default)]
struct CacheInner {
    entries: HashMap<String, Option<Vec<u8>>>,
    order: VecDeque<(Instant, String)>,
}

/// Our responses to requests, kept to answer their retransmissions.
#[derive(Default)]
pub struct ResponseCache {
    inner: Mutex<CacheInner>,
}

impl ResponseCache {
    /// The key of a request: branch, Call-ID, CSeq and source. The Call-ID
    /// is there because some devices reuse branches across calls.
    pub fn key(request: &Message, peer: &Peer) -> Option<String> {
        let cseq = request.header("CSeq")?;
        let branch = headers::top_via(request)
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        let call_id = request.call_id().unwrap_or_default();
        Some(format!("{branch} {call_id} {cseq} {}", peer.addr()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Looks a request up, remembering it as pending when new.
    pub fn seen(&self, key: &str) -> Seen {
        let mut inner = self.lock();
        let now = Instant::now();
        while let Some((at, _)) = inner.order.front() {
            if now.duration_since(*at) < RESPONSE_CACHE_TTL
                && inner.order.len() < RESPONSE_CACHE_MAX
            {
                break;
            }
            if let Some((_, old)) = inner.order.pop_front() {
                inner.entries.remove(&old);
            }
        }
        match inner.entries.get(key) {
            Some(Some(bytes)) => Seen::Answered(bytes.clone()),
            Some(None) => Seen::Pending,
            None => {
                inner.entries.insert(key.to_owned(), None);
                inner.order.push_back((now, key.to_owned()));
                Seen::New
            }
        }
    }

    pub fn answered(&self, key: &str, bytes: &[u8]) {
        if let Some(slot) = self.lock().entries.get_mut(key) {
            *slot = Some(bytes.to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse::parse_datagram;

    fn msg(text: &str) -> Message {
        parse_datagram(text.as_bytes(), 65535).unwrap()
    }

    #[test]
    fn ack_of_a_refusal_keeps_the_branch_and_takes_the_to_tag() {
        let invite = msg("INVITE sip:c@1.2.3.4:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 5.6.7.8:5060;branch=z9hG4bKa\r\n\
            From: <sip:s@d>;tag=f\r\nTo: <sip:c@d>\r\nCall-ID: k\r\nCSeq: 20 INVITE\r\n\r\n");
        let busy = msg(
            "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 5.6.7.8:5060;branch=z9hG4bKa\r\n\
            From: <sip:s@d>;tag=f\r\nTo: <sip:c@d>;tag=t\r\nCall-ID: k\r\nCSeq: 20 INVITE\r\n\r\n",
        );
        let ack = ack_for_failure(&invite, &busy);
        assert_eq!(ack.request_uri(), Some("sip:c@1.2.3.4:5060"));
        assert_eq!(
            ack.header("Via"),
            Some("SIP/2.0/UDP 5.6.7.8:5060;branch=z9hG4bKa")
        );
        assert_eq!(ack.header("To"), Some("<sip:c@d>;tag=t"));
        assert_eq!(ack.header("CSeq"), Some("20 ACK"));
        assert_eq!(client_key(&busy), client_key(&invite));
    }

    #[test]
    fn the_final_response_is_observed_once_before_it_is_queued() {
        let table = ClientTransactions::default();
        let register = msg(
            "REGISTER sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP x;branch=z9hG4bKr\r\n\
            Call-ID: r\r\nCSeq: 2 REGISTER\r\n\r\n",
        );
        let (tx, mut rx) = mpsc::channel(RESPONSE_QUEUE);
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        table.lock().insert(
            client_key(&register).unwrap(),
            Pending {
                responses: tx,
                on_final: Some(Box::new(move |r: &Message| {
                    into.lock().unwrap().push(r.status());
                })),
            },
        );
        let response = |code: &str| {
            msg(&format!(
                "SIP/2.0 {code}\r\nVia: SIP/2.0/UDP x;branch=z9hG4bKr\r\nCall-ID: r\r\n\
                 CSeq: 2 REGISTER\r\n\r\n"
            ))
        };
        assert!(table.deliver(response("100 Trying")).is_ok());
        assert!(seen.lock().unwrap().is_empty(), "not on a provisional");
        assert!(table.deliver(response("200 OK")).is_ok());
        // Observed as it is handed over: before the waiting request reads it.
        assert_eq!(*seen.lock().unwrap(), vec![Some(200)]);
        assert!(table.deliver(response("200 OK")).is_ok());
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "a retransmission is not observed again"
        );
        let queued: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|m| m.status())
            .collect();
        assert_eq!(queued, vec![Some(100), Some(200), Some(200)]);
        let other =
            msg("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x;branch=z9hG4bKo\r\nCSeq: 2 REGISTER\r\n\r\n");
        assert!(table.deliver(other).is_err(), "no such transaction");
    }

    #[test]
    fn retransmitted_requests_are_recognised() {
        let cache = ResponseCache::default();
        let peer = Peer::Udp("10.0.0.1:5060".parse().unwrap());
        let reg = msg("REGISTER sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\nCSeq: 1 REGISTER\r\n\r\n");
        let key = ResponseCache::key(&reg, &peer).unwrap();
        assert_eq!(cache.seen(&key), Seen::New);
        assert_eq!(cache.seen(&key), Seen::Pending);
        cache.answered(&key, b"SIP/2.0 200 OK");
        assert_eq!(cache.seen(&key), Seen::Answered(b"SIP/2.0 200 OK".to_vec()));
        let other = Peer::Udp("10.0.0.2:5060".parse().unwrap());
        assert_ne!(ResponseCache::key(&reg, &other), Some(key));
        let reused_branch = msg("REGISTER sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\nCall-ID: other\r\nCSeq: 1 REGISTER\r\n\r\n");
        assert_eq!(
            cache.seen(&ResponseCache::key(&reused_branch, &peer).unwrap()),
            Seen::New
        );
        let no_cseq = msg("REGISTER sip:a@b SIP/2.0\r\n\r\n");
        assert_eq!(ResponseCache::key(&no_cseq, &peer), None);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = ResponseCache::default();
        for i in 0..RESPONSE_CACHE_MAX + 100 {
            cache.seen(&i.to_string());
        }
        assert!(cache.lock().entries.len() <= RESPONSE_CACHE_MAX);
    }
}
