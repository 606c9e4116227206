//! INVITE for live video of one channel: the GB/T 28181 offer and Subject,
//! the client transaction (UDP retransmissions or TCP), the 200's SDP read,
//! our ACK, and a [`Dialog`] for the caller; non-2xx becomes
//! `InviteError::Refused` (ACKed by the transaction), silence `Timeout`.

use super::build::{self, Outgoing};
use super::catalog::device_to;
use super::counters::SipCounters;
use super::dialog::{self, ByeInfo, Dialog, DialogEnd, Established};
use super::error::{InviteError, TxError};
use super::headers::{CSeq, SipUri};
use super::message::{Message, Method};
use super::sdp::{self, MediaOffer, MediaTransport};
use super::server::Shared;
use super::transport::Peer;
use std::sync::Arc;
use tracing::{info, warn};

/// The CSeq of our INVITEs (the BYE takes the next).
const INVITE_CSEQ: u32 = 20;

impl Shared {
    pub(super) async fn invite(
        self: &Arc<Self>,
        device_id: &str,
        channel_id: &str,
        offer: MediaOffer,
    ) -> Result<Dialog, InviteError> {
        if self.shutdown.is_cancelled() {
            return Err(InviteError::ShuttingDown);
        }
        let offline = || InviteError::DeviceOffline {
            device_id: device_id.to_owned(),
        };
        let (peer, _) = self.registry().online_peer(device_id).ok_or_else(offline)?;
        let ssrc = offer
            .ssrc
            .unwrap_or_else(|| sdp::live_ssrc(&self.settings.domain, self.next_ssrc_seq()));
        let call_id = build::call_id();
        let from_tag = build::tag();
        let request = self.invite_request(channel_id, &offer, ssrc, &peer, &call_id, &from_tag);
        let end = self.dialogs().open(&call_id, device_id);
        SipCounters::add(&self.counters.invites);
        let answered = self
            .client
            .request(&self.tx_context(), &request, &peer)
            .await;
        let response = match answered {
            Ok(response) => response,
            Err(e) => {
                self.dialogs().end(&call_id, DialogEnd::Closed);
                return Err(match e {
                    TxError::Timeout => InviteError::Timeout,
                    TxError::Send(detail) => InviteError::Transport(detail),
                    TxError::ShuttingDown => InviteError::ShuttingDown,
                });
            }
        };
        let code = response.status().unwrap_or(0);
        if !(200..300).contains(&code) {
            SipCounters::add(&self.counters.invites_refused);
            self.dialogs().end(&call_id, DialogEnd::Closed);
            info!(
                device = device_id,
                channel = channel_id,
                code,
                "INVITE refused"
            );
            return Err(InviteError::Refused {
                code,
                reason: response.reason().unwrap_or_default().to_owned(),
            });
        }
        let bye = ByeInfo {
            device_id: device_id.to_owned(),
            call_id: call_id.clone(),
            remote_target: dialog::remote_target(&response, channel_id, &peer),
            from_tag,
            to: dialog::remote_to(&response, channel_id),
            cseq: INVITE_CSEQ + 1,
        };
        let ack = ack_for_success(self, &bye, &peer, &response);
        let ack_bytes = ack.to_bytes();
        // Confirmed before the ACK goes: the device may send BYE right after it.
        self.dialogs()
            .confirm(&call_id, ack_bytes.clone(), bye.clone());
        let _ = self.transport.send(&peer, ack_bytes).await;
        let answer = sdp::parse_answer(&String::from_utf8_lossy(&response.body));
        let established = Established {
            device_id: device_id.to_owned(),
            channel_id: channel_id.to_owned(),
            offer_ssrc: ssrc,
            answer_ssrc: answer.ssrc,
            remote_media: answer.addr,
            remote_transport: if answer.tcp {
                MediaTransport::TcpPassive
            } else {
                MediaTransport::Udp
            },
            end,
            bye,
        };
        // A Dialog from here on: an early return drops it, which sends BYE.
        let dialog = Dialog::new(self, established);
        if answer.ssrc.is_some_and(|s| s != ssrc) {
            info!(device = device_id, channel = channel_id, offered = ssrc, answered = ?answer.ssrc,
                "device answered another SSRC; using its own");
        }
        if (offer.transport == MediaTransport::TcpPassive) != answer.tcp {
            warn!(
                device = device_id,
                channel = channel_id,
                "device answered another media transport"
            );
            return Err(InviteError::BadAnswer(
                "media transport differs from the offer".into(),
            ));
        }
        Ok(dialog)
    }

    fn invite_request(
        &self,
        channel_id: &str,
        offer: &MediaOffer,
        ssrc: u32,
        peer: &Peer,
        call_id: &str,
        from_tag: &str,
    ) -> Message {
        let uri = SipUri::at(channel_id, peer.addr());
        let to = device_to(channel_id);
        let mut request = build::request(
            &self.local,
            &Outgoing {
                method: Method::Invite,
                uri: &uri,
                from_tag,
                to: &to,
                call_id,
                cseq: INVITE_CSEQ,
                transport: peer.transport(),
            },
        );
        request
            .headers
            .push("Contact", self.local.contact().to_string());
        request.headers.push(
            "Subject",
            format!(
                "{channel_id}:{},{}:0",
                sdp::ssrc_text(ssrc),
                self.settings.server_id
            ),
        );
        request.headers.push("Content-Type", "APPLICATION/SDP");
        request.body = sdp::offer(channel_id, offer, ssrc).into_bytes();
        request
    }
}

/// The ACK of a 2xx: a new transaction within the dialog (RFC 3261 13.2.2.4).
fn ack_for_success(shared: &Shared, bye: &ByeInfo, peer: &Peer, response: &Message) -> Message {
    let seq = CSeq::of(response).map_or(INVITE_CSEQ, |c| c.seq);
    build::request(
        &shared.local,
        &Outgoing {
            method: Method::Ack,
            uri: &bye.remote_target,
            from_tag: &bye.from_tag,
            to: &bye.to,
            call_id: &bye.call_id,
            cseq: seq,
            transport: peer.transport(),
        },
    )
}
