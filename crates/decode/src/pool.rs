//! The decode thread pool and the per-camera decoder state it holds.

use crate::activity::{Activity, ActivitySettings, Step};
use crate::convert::FrameConverter;
use crate::cpu_split::CpuSplit;
use crate::hardware::{self, HardwarePlan, HwDevice};
use crate::key_motion::KeyFrameMotion;
use crate::pacing::Pacing;
use ffmpeg_next::codec::Id;
use ffmpeg_next::decoder;
use ffmpeg_next::util::frame::Video as VideoFrame;
use ffmpeg_next::Packet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use tracing::{debug, info, warn};
use xueliang_core::regions::{Region, RegionLooks};
use xueliang_core::slots::{FrameSlot, PutOutcome};
use xueliang_core::{
    CameraRef, CameraStats, DecodedFrame, DetectionNeed, EncodedFrame, FrameSink, HwAccel,
    InputGeometry, LatestFrameSlots, PushOutcome, VideoCodec,
};

/// Encoded frames queued per decode thread before ingest starts dropping.
const QUEUE_PER_THREAD: usize = 256;

/// What the pool needs to know about one camera.
pub struct CameraDecodeSpec {
    pub camera: CameraRef,
    pub stats: Arc<CameraStats>,
    /// Detections per second wanted for this camera...
    pub detect_fps: f64,
    /// ...and while its analytics need only the reduced rate (the same:
    /// not adaptive).
    pub reduced_fps: f64,
    /// Key frames only while the camera is idle, and when it counts as idle.
    pub activity: ActivitySettings,
    /// Region detection (none by default).
    pub regions: RegionLooks,
}

/// What a decode thread is asked to do, in order.
enum Work<C> {
    /// Start decoding a camera (sent before any of its frames).
    Add(Box<CameraDecoderParts<C>>),
    Frame(EncodedFrame),
    /// Forget a camera (sent after its ingest worker stopped).
    Remove(usize),
}

pub(crate) struct CameraDecoderParts<C> {
    pub(crate) spec: CameraDecodeSpec,
    pub(crate) slot: FrameSlot<DecodedFrame, C>,
    pub(crate) resync: Arc<AtomicBool>,
}

/// The decode threads. Cameras are added and removed while it runs; each
/// camera's index (never reused) picks its thread.
pub struct DecodePool<C = ()> {
    queues: Vec<SyncSender<Work<C>>>,
    slots: LatestFrameSlots<DecodedFrame, C>,
    handles: Vec<JoinHandle<()>>,
}

/// One camera's way into the pool (its ingest worker's [`FrameSink`]).
pub struct CameraSink<C> {
    queue: SyncSender<Work<C>>,
    /// "Forget decoder state and wait for a key frame".
    resync: Arc<AtomicBool>,
}

impl<C: Send + Sync + 'static> DecodePool<C> {
    /// Starts `threads` decode threads delivering frames into `slots`; each
    /// opens a device of `hardware` when it gets its first camera.
    pub fn start(
        threads: usize,
        geometry: InputGeometry,
        hardware: HardwarePlan,
        slots: LatestFrameSlots<DecodedFrame, C>,
    ) -> std::io::Result<DecodePool<C>> {
        let threads = threads.max(1);
        let hardware = Arc::new(hardware);
        let mut queues = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for t in 0..threads {
            let (tx, rx) = sync_channel(QUEUE_PER_THREAD);
            queues.push(tx);
            // Each thread builds its own decoders and opens its own device.
            let hardware = hardware.clone();
            let run = move || {
                DecodeThread {
                    decoders: std::collections::HashMap::new(),
                    geometry,
                    hardware,
                    device: None,
                }
                .run(rx)
            };
            handles.push(
                std::thread::Builder::new()
                    .name(format!("decode-{t}"))
                    .spawn(run)?,
            );
        }
        Ok(DecodePool {
            queues,
            slots,
            handles,
        })
    }

    fn queue(&self, index: usize) -> &SyncSender<Work<C>> {
        &self.queues[index % self.queues.len()]
    }

    /// Adds a camera; `camera` travels with its frames to the detector.
    /// Returns the sink its ingest worker pushes to. Blocks while the
    /// camera's decode thread's queue is full (call it off the async workers).
    pub fn add(&self, spec: CameraDecodeSpec, camera: C) -> Arc<dyn FrameSink> {
        let index = spec.camera.index;
        let resync = Arc::new(AtomicBool::new(true));
        let parts = CameraDecoderParts {
            slot: self.slots.slot(index, camera),
            spec,
            resync: resync.clone(),
        };
        let queue = self.queue(index).clone();
        // Only fails when the thread is gone, and then so are the frames.
        let _ = queue.send(Work::Add(Box::new(parts)));
        Arc::new(CameraSink { queue, resync })
    }

    /// Forgets a camera whose ingest worker has stopped. Blocks like [`Self::add`].
    pub fn remove(&self, index: usize) {
        let _ = self.queue(index).send(Work::Remove(index));
    }

    /// Closes the queues and waits for the decode threads to finish (once
    /// every camera's sink is gone too).
    pub fn shutdown(self) {
        drop(self.queues);
        drop(self.slots);
        for h in self.handles {
            let _ = h.join();
        }
    }
}

impl<C: Send + Sync> FrameSink for CameraSink<C> {
    fn push(&self, frame: EncodedFrame) -> PushOutcome {
        match self.queue.try_send(Work::Frame(frame)) {
            Ok(()) => PushOutcome::Accepted,
            Err(TrySendError::Full(_)) => {
                self.resync.store(true, Ordering::Relaxed);
                PushOutcome::Dropped
            }
            Err(TrySendError::Disconnected(_)) => PushOutcome::Closed,
        }
    }

    fn reset(&self, _camera: &CameraRef) {
        self.resync.store(true, Ordering::Relaxed);
    }
}

struct DecodeThread<C> {
    decoders: std::collections::HashMap<usize, CameraDecoder<C>>,
    geometry: InputGeometry,
    hardware: Arc<HardwarePlan>,
    /// The thread's hardware device, opened with its first camera (`None`
    /// until then; `Some(None)`: software).
    device: Option<Option<HwDevice>>,
}

impl<C> DecodeThread<C> {
    /// A reference to the thread's device for a new camera.
    fn device_for_camera(&mut self) -> Option<HwDevice> {
        let hardware = &self.hardware;
        self.device
            .get_or_insert_with(|| hardware.open_for_thread())
            .as_ref()
            .and_then(HwDevice::new_ref)
    }

    fn run(mut self, rx: Receiver<Work<C>>) {
        while let Ok(work) = rx.recv() {
            let frame = match work {
                Work::Add(parts) => {
                    let index = parts.spec.camera.index;
                    let device = self.device_for_camera();
                    self.decoders
                        .insert(index, CameraDecoder::new(*parts, self.geometry, device));
                    continue;
                }
                Work::Remove(index) => {
                    self.decoders.remove(&index);
                    continue;
                }
                Work::Frame(frame) => frame,
            };
            let i = frame.camera.index;
            let Some(dec) = self.decoders.get_mut(&i) else {
                continue;
            };
            if dec.resync_flag.swap(false, Ordering::Relaxed) {
                dec.resync();
            }
            dec.decode(frame);
        }
    }
}

/// A hardware decoder that delivers no frame within this many packets after
/// it opened is taken as failed (no B-frame reorder delay is near it).
const HARDWARE_PROOF_PACKETS: u32 = 48;

/// A camera's open decoder.
struct OpenDecoder {
    codec: VideoCodec,
    video: decoder::Video,
    /// The device it decodes on (`None`: software).
    hardware: Option<HwAccel>,
    /// Packets a hardware decoder was sent before its first frame was
    /// downloaded (`None` once one was, and for software): until then an
    /// error sends the camera to software.
    unproven: Option<u32>,
}

/// Why a packet was not decoded.
enum DecodeFailure {
    /// The stream or the decoder; counted, the camera carries on.
    Decode(ffmpeg_next::Error),
    /// A hardware decoder failed before its first frame.
    Hardware(String),
}

pub(crate) struct CameraDecoder<C> {
    spec: CameraDecodeSpec,
    slot: FrameSlot<DecodedFrame, C>,
    resync_flag: Arc<AtomicBool>,
    decoder: Option<OpenDecoder>,
    waiting_for_key: bool,
    /// Busy or idle, and the packets kept undecoded while idle.
    activity: Activity<EncodedFrame>,
    /// Motion between an idle camera's key frames (what sizes miss at CBR)...
    key_motion: KeyFrameMotion,
    /// ...seen in the key frame just decoded.
    key_moved: bool,
    /// When the next frame goes to the detector.
    pacing: Pacing,
    converter: FrameConverter,
    picture: VideoFrame,
    /// The decode thread's hardware device while this camera may use it;
    /// dropped for good when its hardware decoder fails.
    device: Option<HwDevice>,
    /// Frames in device memory are downloaded here (buffers reused).
    downloaded: VideoFrame,
    /// A decoder was opened before (the first opening is logged at info).
    opened_before: bool,
    /// Decode errors since the last good picture (logged once when it starts).
    error_run: u64,
}

impl<C> CameraDecoder<C> {
    /// `device`: the decode thread's hardware device, if it has one.
    pub(crate) fn new(
        parts: CameraDecoderParts<C>,
        geometry: InputGeometry,
        device: Option<HwDevice>,
    ) -> Self {
        CameraDecoder {
            activity: Activity::new(parts.spec.activity),
            pacing: Pacing::new(
                parts.spec.detect_fps,
                parts.spec.reduced_fps,
                parts.spec.regions.clone(),
            ),
            key_motion: KeyFrameMotion::default(),
            key_moved: false,
            spec: parts.spec,
            slot: parts.slot,
            resync_flag: parts.resync,
            decoder: None,
            waiting_for_key: true,
            converter: FrameConverter::new(geometry),
            picture: VideoFrame::empty(),
            device,
            downloaded: VideoFrame::empty(),
            opened_before: false,
            error_run: 0,
        }
    }

    /// The decoder starts again from the next key frame (packets were
    /// dropped before it, or a new session began). Idle or busy stays as it
    /// was (see [`Activity::lose_references`]).
    fn resync(&mut self) {
        self.decoder = None;
        self.waiting_for_key = true;
        self.pacing.restart();
        let dropped = self.activity.lose_references();
        self.key_motion.forget();
        CameraStats::add(&self.spec.stats.frames_skipped_idle, dropped as u64);
    }

    /// Opens a decoder for `codec`, on the device while the camera has one
    /// (in software if that fails). Logs which; false if none opened.
    fn open(&mut self, codec: VideoCodec) -> bool {
        let id = match codec {
            VideoCodec::H264 => Id::H264,
            VideoCodec::H265 => Id::HEVC,
        };
        let opened = match hardware::open_decoder(id, self.device.as_ref()) {
            Err(e) if self.device.is_some() => {
                let why = format!("the hardware decoder did not open: {e}");
                fall_back_to_software(&self.spec, &mut self.device, &why);
                hardware::open_decoder(id, None)
            }
            result => result,
        };
        let (video, on) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                CameraStats::add(&self.spec.stats.decode_errors, 1);
                warn!(camera = %self.spec.camera.id, error = %e, "cannot open decoder");
                return false;
            }
        };
        let hardware = on.map_or("none", HwAccel::as_str);
        let stats = &self.spec.stats;
        if !self.opened_before || stats.hardware_decoding() != on {
            info!(camera = %self.spec.camera.id, codec = ?codec, hardware, "decoder opened");
        } else {
            debug!(camera = %self.spec.camera.id, codec = ?codec, hardware, "decoder opened");
        }
        self.opened_before = true;
        stats.set_hardware_decoding(on);
        self.decoder = Some(OpenDecoder {
            codec,
            video,
            hardware: on,
            unproven: on.map(|_| 0),
        });
        true
    }

    /// Decodes what the camera's activity calls for: everything while busy,
    /// key frames only while idle, and the kept packets on motion onset.
    pub(crate) fn decode(&mut self, frame: EncodedFrame) {
        if self.waiting_for_key && !frame.is_key {
            return;
        }
        let stats = &self.spec.stats;
        let (size, is_key, t) = (frame.data.len(), frame.is_key, frame.stream_time);
        let needed = stats.need.need() != DetectionNeed::Nothing;
        let step = self.activity.packet(frame, size, is_key, t, needed);
        if self.activity.is_idle() != stats.idle() {
            stats.set_idle(self.activity.is_idle());
        }
        match step {
            Step::Decode(frame) => self.decode_packet(frame, Use::Detect),
            Step::Key { packet, skipped } => {
                CameraStats::add(&stats.frames_skipped_idle, skipped as u64);
                // No hint of motion: the key frame feeds the picture checks,
                // and is compared with the previous one (motion that the
                // sizes did not show wakes the camera from the next packet).
                self.key_moved = false;
                self.decode_packet(packet, Use::Picture);
                if std::mem::take(&mut self.key_moved) {
                    self.activity.wake(t);
                    self.key_motion.forget();
                    self.spec.stats.set_idle(false);
                    CameraStats::add(&self.spec.stats.key_frame_wakes, 1);
                }
            }
            Step::Kept => {}
            Step::Flush(kept) => {
                for p in kept {
                    self.decode_packet(p, Use::Reference);
                }
            }
            Step::CatchUp { kept, onset } => {
                self.key_motion.forget();
                for p in kept {
                    self.decode_packet(p, Use::Reference);
                }
                // The onset frame goes to the detector now, whatever the slot.
                self.pacing.restart();
                self.decode_packet(onset, Use::Detect);
            }
        }
    }

    /// Decodes one packet and hands its pictures on as `usage` says. A
    /// hardware decoder that fails before its
    /// first frame is replaced by a software one, which takes the packet
    /// again if it is a key frame (else the camera waits for one).
    fn decode_packet(&mut self, frame: EncodedFrame, usage: Use) {
        if self.waiting_for_key && !frame.is_key {
            return;
        }
        let rebuild = match &self.decoder {
            None => true,
            Some(d) => d.codec != frame.codec || (frame.new_parameters && frame.is_key),
        };
        if rebuild && !self.open(frame.codec) {
            return;
        }
        self.waiting_for_key = false;
        let why = match self.send(&frame, usage) {
            Ok(()) => return,
            Err(DecodeFailure::Decode(e)) => {
                CameraStats::add(&self.spec.stats.decode_errors, 1);
                self.error_run += 1;
                if self.error_run == 1 {
                    warn!(camera = %self.spec.camera.id, error = %e, "decode error; counting further ones");
                }
                return;
            }
            Err(DecodeFailure::Hardware(why)) => why,
        };
        fall_back_to_software(&self.spec, &mut self.device, &why);
        if frame.is_key {
            self.decoder = None;
            self.decode_packet(frame, usage);
        } else {
            self.resync();
        }
    }

    /// Sends one packet and handles the frames it gives.
    fn send(&mut self, frame: &EncodedFrame, usage: Use) -> Result<(), DecodeFailure> {
        let CameraDecoder {
            spec,
            decoder,
            pacing,
            key_motion,
            key_moved,
            converter,
            picture,
            downloaded,
            device,
            error_run,
            slot,
            ..
        } = self;
        let stats = &spec.stats;
        let Some(open) = decoder.as_mut() else {
            return Ok(());
        };
        let mut cpu = CpuSplit::start(stats);
        let mut packet = Packet::copy(&frame.data);
        packet.set_pts(Some((frame.stream_time * 1e6) as i64));
        if let Err(e) = open.video.send_packet(&packet) {
            return Err(match open.unproven {
                Some(_) => DecodeFailure::Hardware(format!("the hardware decoder failed: {e}")),
                None => DecodeFailure::Decode(e),
            });
        }
        if let Some(n) = open.unproven.as_mut() {
            *n += 1;
        }
        while open.video.receive_frame(picture).is_ok() {
            *error_run = 0;
            // Downloaded already (the first frame of a hardware decoder).
            let mut in_memory = false;
            if open.unproven.take().is_some() {
                if !hardware::is_hardware_frame(picture) {
                    // FFmpeg found the device unable to take this stream
                    // and decodes it in software: so be it, for good.
                    open.hardware = None;
                    fall_back_to_software(
                        spec,
                        device,
                        "the hardware decoder does not take this stream",
                    );
                } else {
                    hardware::download(picture, downloaded).map_err(|e| {
                        DecodeFailure::Hardware(format!("cannot copy frames from the device: {e}"))
                    })?;
                    in_memory = true;
                }
            }
            CameraStats::add(&stats.frames_decoded, 1);
            let detect = match usage {
                Use::Reference => continue,
                Use::Picture => false,
                Use::Detect => true,
            };
            let t = picture.pts().map_or(frame.stream_time, |p| p as f64 / 1e6);
            if detect && !pacing.due(picture, t, stats) {
                continue;
            }
            let software = if open.hardware.is_some() {
                if !in_memory {
                    if let Err(e) = hardware::download(picture, downloaded) {
                        CameraStats::add(&stats.decode_errors, 1);
                        debug!(camera = %spec.camera.id, error = %e, "cannot copy a frame from the device");
                        continue;
                    }
                }
                &*downloaded
            } else {
                &*picture
            };
            cpu.decoded();
            let regions = if detect {
                let geometry = converter.geometry();
                pacing.regions(software.width(), software.height(), geometry)
            } else {
                Vec::new()
            };
            let emitted = emit(spec, converter, software, frame, detect, regions);
            cpu.converted();
            match emitted {
                Ok(decoded) => {
                    if usage == Use::Picture && frame.is_key && key_motion.moved(&decoded) {
                        *key_moved = true;
                    }
                    if detect {
                        CameraStats::add(&stats.frames_offered, 1);
                    }
                    match slot.put(decoded) {
                        PutOutcome::Replaced => CameraStats::add(&stats.frames_dropped_detect, 1),
                        PutOutcome::Stored | PutOutcome::Closed => {}
                    }
                }
                Err(e) => {
                    CameraStats::add(&stats.decode_errors, 1);
                    debug!(camera = %spec.camera.id, error = %e, "frame conversion failed");
                }
            }
        }
        match open.unproven {
            Some(n) if n >= HARDWARE_PROOF_PACKETS => Err(DecodeFailure::Hardware(format!(
                "the hardware decoder gave no frame from {n} packets"
            ))),
            _ => Ok(()),
        }
    }
}

/// A camera's hardware decoder failed: say so once (with the camera), and
/// decode this camera in software from now on (its device reference goes).
fn fall_back_to_software(spec: &CameraDecodeSpec, device: &mut Option<HwDevice>, why: &str) {
    let Some(device) = device.take() else {
        return;
    };
    warn!(
        camera = %spec.camera.id,
        hardware = device.kind().as_str(),
        "{why}; decoding this camera in software"
    );
    spec.stats.set_hardware_decoding(None);
}

/// What a decoded picture is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    /// The detector, at the camera's detection rate.
    Detect,
    /// The picture checks only (no model input is made): an idle camera's
    /// key frames.
    Picture,
    /// Nothing: decoded only to keep the decoder's references whole.
    Reference,
}

/// Copies a decoded picture out for the picture checks and snapshots and,
/// with `detect`, scales it to the model input.
fn emit(
    spec: &CameraDecodeSpec,
    converter: &mut FrameConverter,
    picture: &VideoFrame,
    frame: &EncodedFrame,
    detect: bool,
    regions: Vec<Region>,
) -> Result<DecodedFrame, ffmpeg_next::Error> {
    {
        let planes = converter.i420(picture)?;
        let model_input = if detect {
            Some(converter.model_input(picture)?)
        } else {
            None
        };
        Ok(DecodedFrame {
            camera: spec.camera.clone(),
            width: planes.width,
            height: planes.height,
            y: planes.y,
            u: planes.u,
            v: planes.v,
            full_range: planes.full_range,
            stream_time: frame.stream_time,
            received_at: frame.received_at,
            model_input,
            regions,
        })
    }
}
