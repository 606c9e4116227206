//! Arbitrary bytes as an RFC 4571 TCP stream: frames parsed as RTP, put in
//! order by the reorder buffer (time advancing by the RTP timestamp's low
//! bits), payloads into the PS demuxer: the receiver's path without sockets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};
use xueliang_gb28181::media::reorder::{ReorderBuffer, ReorderSettings};
use xueliang_gb28181::media::rtp::RtpPacket;
use xueliang_gb28181::media::tcp_framing::{Rfc4571Deframer, MAX_FRAME_LEN};
use xueliang_gb28181::media::PsDemuxer;

fuzz_target!(|data: &[u8]| {
    let mut deframer = Rfc4571Deframer::new(MAX_FRAME_LEN);
    let mut reorder = ReorderBuffer::new(ReorderSettings {
        window: 32,
        max_bytes: 64 << 10,
        max_wait: Duration::from_millis(20),
    });
    let mut demux = PsDemuxer::default();
    let mut now = Instant::now();
    deframer.extend(data);
    while let Some(frame) = deframer.next_frame() {
        let Ok(frame) = frame else { continue };
        let Ok(packet) = RtpPacket::parse(&frame) else {
            continue;
        };
        now += Duration::from_millis(u64::from(packet.timestamp & 0x3f));
        reorder.push(
            packet.sequence,
            packet.payload.len(),
            packet.payload.to_vec(),
            now,
        );
        while let Some(delivery) = reorder.pop(now) {
            if delivery.lost_before > 0 || delivery.restarted {
                demux.note_loss(delivery.lost_before);
            }
            demux.push(&delivery.item);
            while demux.pop().is_some() {}
        }
    }
    for delivery in reorder.drain() {
        demux.push(&delivery.item);
    }
    demux.end_of_stream();
    while demux.pop().is_some() {}
});
