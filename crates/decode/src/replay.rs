//! One camera's decoder driven packet by packet in the caller's thread: what
//! the pool does for a camera, without its threads and queues, so that an
//! offline run (the recall bench, tests) sees every picture the detector
//! would be offered, in order and in stream time.

use crate::hardware::HwDevice;
use crate::pool::{CameraDecodeSpec, CameraDecoder, CameraDecoderParts};
use std::sync::Arc;
use std::time::Duration;
use xueliang_core::slots::SlotReceiver;
use xueliang_core::{CameraStats, DecodedFrame, EncodedFrame, InputGeometry, LatestFrameSlots};

pub struct ReplayDecoder {
    decoder: CameraDecoder<()>,
    offered: SlotReceiver<DecodedFrame>,
    pub stats: Arc<CameraStats>,
}

impl ReplayDecoder {
    /// A decoder for `spec`'s camera (its index must be below 16), scaling
    /// to `geometry`, in software.
    pub fn new(spec: CameraDecodeSpec, geometry: InputGeometry) -> ReplayDecoder {
        ReplayDecoder::on_device(spec, geometry, None)
    }

    /// The same on a decode thread's hardware `device`.
    pub fn on_device(
        spec: CameraDecodeSpec,
        geometry: InputGeometry,
        device: Option<HwDevice>,
    ) -> ReplayDecoder {
        let stats = spec.stats.clone();
        let (slots, offered) = LatestFrameSlots::new(16);
        let parts = CameraDecoderParts {
            slot: slots.slot(spec.camera.index, ()),
            spec,
            resync: Default::default(),
        };
        ReplayDecoder {
            decoder: CameraDecoder::new(parts, geometry, device),
            offered,
            stats,
        }
    }

    /// Decodes one packet as the pool would; returns the pictures handed on
    /// (with a model input when they go to the detector, without when they
    /// are for the picture checks only). Nothing is dropped: each call
    /// hands on at most one picture per packet, and takes it.
    pub fn push(&mut self, packet: EncodedFrame) -> Vec<DecodedFrame> {
        self.decoder.decode(packet);
        let mut out = Vec::new();
        while let Ok((_, (), f)) = self.offered.next(Duration::ZERO) {
            out.push(f);
        }
        out
    }
}

/// The packets of a raw Annex B file (`.h264`/`.h265`: what the `ffmpeg`
/// command writes with `-bsf:v h264_mp4toannexb -f h264`) as an ingest
/// worker would push them for `camera`, frame `n` at stream time `n / fps`
/// and received at `start` plus that.
pub fn annexb_packets(
    path: &std::path::Path,
    codec: xueliang_core::VideoCodec,
    camera: &xueliang_core::CameraRef,
    fps: f64,
    start: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<EncodedFrame>, ffmpeg_next::Error> {
    crate::init()?;
    let mut input = ffmpeg_next::format::input(path)?;
    let mut out = Vec::new();
    for (_, p) in input.packets() {
        let Some(data) = p.data() else { continue };
        let stream_time = out.len() as f64 / fps;
        out.push(EncodedFrame {
            camera: camera.clone(),
            codec,
            data: data.to_vec(),
            is_key: p.is_key(),
            new_parameters: false,
            stream_time,
            received_at: start + chrono::Duration::microseconds((stream_time * 1e6) as i64),
        });
    }
    Ok(out)
}
