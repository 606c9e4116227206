//! FFmpeg hardware decoding (NVDEC through CUDA, VA-API), software decoding
//! being the last resort. All of this crate's unsafe code is here, each
//! block with its safety argument.
//!
//! - A [`HardwarePlan`] (`[decode] hwaccel`) is shared by the decode threads.
//!   Each thread opens its own device when it gets its first camera: the
//!   first type of the plan that starts there ([`HardwarePlan::choose`]); a
//!   type that does not start is warned about once per process.
//! - A camera's decoder is opened on its thread's device when the codec can
//!   use that device ([`open_decoder`]); FFmpeg's `get_format` callback then
//!   picks the device's pixel format when offered, else the software one, so
//!   a stream the device cannot take (a profile, a size) decodes in software.
//! - Frames in device memory are downloaded ([`download`]) into a software
//!   frame (NV12 usually) that each camera reuses, and only for the frames
//!   that go to the detector.

use ffmpeg_next::codec::{self, Id};
use ffmpeg_next::decoder;
use ffmpeg_next::ffi;
use ffmpeg_next::software::scaling::Context as Scaler;
use ffmpeg_next::util::frame::Video as VideoFrame;
use ffmpeg_next::Codec;
use std::ffi::{c_int, c_void, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU8, Ordering};
use tracing::{info, warn};
use xueliang_core::HwAccel;

/// Which hardware devices to try, in order, and what has been said about
/// them (shared by the decode threads).
#[derive(Debug, Default)]
pub struct HardwarePlan {
    wanted: Vec<HwAccel>,
    vaapi_device: Option<PathBuf>,
    /// Per device type (its bit in [`HwAccel::ALL`]): warned that it did not
    /// start (low bits), told that it started (bits shifted by 4).
    told: AtomicU8,
}

/// What trying a plan's devices gave on this machine.
pub struct DeviceChoice {
    /// The first device that started; `None`: software decoding.
    pub device: Option<HwDevice>,
    /// The device types tried before it, each with why it did not start.
    pub passed_over: Vec<(HwAccel, String)>,
}

impl DeviceChoice {
    /// The device type in use (`None`: software).
    pub fn hwaccel(&self) -> Option<HwAccel> {
        self.device.as_ref().map(HwDevice::kind)
    }
}

impl HardwarePlan {
    /// `wanted` in the order to try; `vaapi_device` is the render node
    /// VA-API opens (`None`: FFmpeg's default, `/dev/dri/renderD128`).
    pub fn new(wanted: Vec<HwAccel>, vaapi_device: Option<PathBuf>) -> HardwarePlan {
        HardwarePlan {
            wanted,
            vaapi_device,
            told: AtomicU8::new(0),
        }
    }

    /// Software decoding only.
    pub fn software() -> HardwarePlan {
        HardwarePlan::default()
    }

    /// Opens the first wanted device that starts on this machine, saying why
    /// each one before it did not. Logs nothing.
    pub fn choose(&self) -> DeviceChoice {
        let mut passed_over = Vec::new();
        for &kind in &self.wanted {
            match HwDevice::open(kind, self.vaapi_device.as_deref()) {
                Ok(device) => {
                    return DeviceChoice {
                        device: Some(device),
                        passed_over,
                    }
                }
                Err(why) => passed_over.push((kind, why)),
            }
        }
        DeviceChoice {
            device: None,
            passed_over,
        }
    }

    /// [`Self::choose`] for a decode thread, logging each device type that
    /// did not start (and the one that did) once per process.
    pub(crate) fn open_for_thread(&self) -> Option<HwDevice> {
        if self.wanted.is_empty() {
            return None;
        }
        let choice = self.choose();
        for (kind, why) in &choice.passed_over {
            if self.first_time(*kind, 0) {
                warn!(
                    hardware = kind.as_str(),
                    "hardware decoding device did not start: {why}; trying the next one \
                     (software decoding is the last resort)"
                );
            }
        }
        match &choice.device {
            Some(d) if self.first_time(d.kind(), 4) => {
                info!(
                    hardware = d.kind().as_str(),
                    "hardware decoding device opened"
                );
            }
            Some(_) => {}
            None if self.first_time_software() => {
                warn!("no hardware decoding device started: decoding in software");
            }
            None => {}
        }
        choice.device
    }

    /// True the first time it is asked about `kind` (per `shift`: 0 failed,
    /// 4 started) in this process.
    fn first_time(&self, kind: HwAccel, shift: u32) -> bool {
        let place = HwAccel::ALL.iter().position(|k| *k == kind).unwrap_or(0) as u32;
        let bit = 1u8 << (place + shift);
        self.told.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    fn first_time_software(&self) -> bool {
        let bit = 1u8 << 7;
        self.told.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }
}

fn device_type(kind: HwAccel) -> ffi::AVHWDeviceType {
    match kind {
        HwAccel::Cuda => ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA,
        HwAccel::Vaapi => ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_VAAPI,
    }
}

/// One reference to an FFmpeg hardware device context. Each camera decoder
/// holds its own reference (FFmpeg counts them); the device is freed with
/// the last one. Not `Send`: it stays on the decode thread that opened it.
pub struct HwDevice {
    kind: HwAccel,
    buffer: NonNull<ffi::AVBufferRef>,
}

impl HwDevice {
    fn open(kind: HwAccel, vaapi_device: Option<&Path>) -> Result<HwDevice, String> {
        let name = match (kind, vaapi_device) {
            (HwAccel::Vaapi, Some(path)) => Some(
                CString::new(path.as_os_str().as_bytes())
                    .map_err(|_| format!("{} contains a NUL byte", path.display()))?,
            ),
            _ => None,
        };
        let mut buffer: *mut ffi::AVBufferRef = ptr::null_mut();
        // SAFETY: `buffer` is a valid place for the result; the device name
        // is null (FFmpeg's default device) or a NUL-terminated string that
        // outlives the call; no options, no flags. On failure FFmpeg leaves
        // `buffer` null and owns nothing of ours.
        let status = unsafe {
            ffi::av_hwdevice_ctx_create(
                &mut buffer,
                device_type(kind),
                name.as_ref().map_or(ptr::null(), |n| n.as_ptr()),
                ptr::null_mut(),
                0,
            )
        };
        if status < 0 {
            let hint = match kind {
                HwAccel::Cuda => "needs an NVIDIA GPU and its driver's libcuda.so.1",
                HwAccel::Vaapi => "needs a GPU render node (/dev/dri) and a VA-API driver",
            };
            return Err(format!("{} ({hint})", ffmpeg_next::Error::from(status)));
        }
        NonNull::new(buffer)
            .map(|buffer| HwDevice { kind, buffer })
            .ok_or_else(|| "FFmpeg returned no device".to_owned())
    }

    pub fn kind(&self) -> HwAccel {
        self.kind
    }

    /// Another reference to the same device (`None`: out of memory).
    pub fn new_ref(&self) -> Option<HwDevice> {
        // SAFETY: `self.buffer` is a live reference we own; av_buffer_ref
        // only bumps the (atomic) count and returns a new reference or null.
        let buffer = unsafe { ffi::av_buffer_ref(self.buffer.as_ptr()) };
        NonNull::new(buffer).map(|buffer| HwDevice {
            kind: self.kind,
            buffer,
        })
    }
}

impl Drop for HwDevice {
    fn drop(&mut self) {
        let mut buffer = self.buffer.as_ptr();
        // SAFETY: we own this reference and drop it once; FFmpeg frees the
        // device when the last reference (ours, or a codec context's) goes.
        unsafe { ffi::av_buffer_unref(&mut buffer) };
    }
}

/// The pixel format `codec` decodes to on a device of this type, if its
/// FFmpeg build can use one (through a device context).
pub(crate) fn hardware_format(codec: Codec, kind: HwAccel) -> Option<ffi::AVPixelFormat> {
    let wanted = device_type(kind);
    let method = ffi::AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX as c_int;
    for index in 0.. {
        // SAFETY: the codec comes from avcodec_find_decoder (static data that
        // lives for the process); any index is allowed, those past the end
        // give null, and non-null results point to static descriptors.
        let config = unsafe { ffi::avcodec_get_hw_config(codec.as_ptr(), index).as_ref() }?;
        if config.methods & method != 0 && config.device_type == wanted {
            return Some(config.pix_fmt);
        }
    }
    None
}

/// Opens a decoder for `id`, on `device` when given and the decoder can use
/// it. Returns the device type it was opened on (`None`: software).
pub(crate) fn open_decoder(
    id: Id,
    device: Option<&HwDevice>,
) -> Result<(decoder::Video, Option<HwAccel>), ffmpeg_next::Error> {
    let codec = decoder::find(id).ok_or(ffmpeg_next::Error::DecoderNotFound)?;
    let mut context = codec::context::Context::new_with_codec(codec);
    let on = device.and_then(|d| attach(&mut context, codec, d));
    // On failure the context is freed, and with it the device reference.
    let video = context.decoder().video()?;
    Ok((video, on))
}

/// Sets the device and the format callback on a context not yet opened.
fn attach(
    context: &mut codec::context::Context,
    codec: Codec,
    device: &HwDevice,
) -> Option<HwAccel> {
    let format = hardware_format(codec, device.kind)?;
    // SAFETY: the context is allocated and not yet opened, which is when
    // FFmpeg reads these fields. `hw_device_ctx` takes a new reference of
    // its own, which avcodec_free_context releases. `opaque` is ours (the
    // wrapper never uses it): it carries the wanted pixel format as an
    // integer, not a pointer, so nothing can dangle.
    unsafe {
        let buffer = ffi::av_buffer_ref(device.buffer.as_ptr());
        if buffer.is_null() {
            return None;
        }
        let ctx = context.as_mut_ptr();
        (*ctx).hw_device_ctx = buffer;
        (*ctx).opaque = format as c_int as isize as *mut c_void;
        (*ctx).get_format = Some(choose_format);
    }
    Some(device.kind)
}

/// FFmpeg's `get_format` callback for a decoder with a device: called when
/// the stream's format is known (and again, without the hardware format,
/// when the device cannot take the stream). Never unwinds.
unsafe extern "C" fn choose_format(
    ctx: *mut ffi::AVCodecContext,
    formats: *const ffi::AVPixelFormat,
) -> ffi::AVPixelFormat {
    // SAFETY: FFmpeg passes the context being decoded (whose `opaque` was
    // set by `attach`) and a list of its own pixel formats ended by
    // AV_PIX_FMT_NONE, valid for this call.
    unsafe {
        let wanted = (*ctx).opaque as isize as c_int;
        let mut n = 0;
        while *formats.add(n) != ffi::AVPixelFormat::AV_PIX_FMT_NONE {
            n += 1;
        }
        pick_format(wanted, std::slice::from_raw_parts(formats, n))
    }
}

/// The wanted (hardware) format if offered, else the first software one,
/// else none (the decoder then fails to open the stream).
pub(crate) fn pick_format(wanted: c_int, offered: &[ffi::AVPixelFormat]) -> ffi::AVPixelFormat {
    if let Some(f) = offered.iter().find(|f| **f as c_int == wanted) {
        return *f;
    }
    offered
        .iter()
        .copied()
        .find(|f| !is_hardware_format(*f))
        .unwrap_or(ffi::AVPixelFormat::AV_PIX_FMT_NONE)
}

fn is_hardware_format(format: ffi::AVPixelFormat) -> bool {
    // SAFETY: av_pix_fmt_desc_get accepts any format and returns null or a
    // pointer to a static descriptor.
    match unsafe { ffi::av_pix_fmt_desc_get(format).as_ref() } {
        Some(d) => d.flags & ffi::AV_PIX_FMT_FLAG_HWACCEL as u64 != 0,
        None => true,
    }
}

/// Whether a decoded frame is in device memory.
pub(crate) fn is_hardware_frame(frame: &VideoFrame) -> bool {
    // SAFETY: the wrapper's frame pointer is always a live AVFrame.
    unsafe { !(*frame.as_ptr()).hw_frames_ctx.is_null() }
}

/// Copies a frame in device memory into `dst`, in the device's software
/// format (NV12 for 8-bit, P010 for 10-bit), reusing `dst`'s buffers when
/// they fit; with its timestamp and colour range.
pub(crate) fn download(src: &VideoFrame, dst: &mut VideoFrame) -> Result<(), ffmpeg_next::Error> {
    // SAFETY: both wrappers hold live AVFrames and `dst` is not `src`
    // (borrow rules). `src` is a hardware frame (checked), so its
    // `hw_frames_ctx` data is an AVHWFramesContext. `dst` is only ours: its
    // buffers are reused only when FFmpeg says they are writable (no other
    // reference), else it is reset and av_hwframe_transfer_data allocates
    // new ones in the format set here.
    unsafe {
        let s = src.as_ptr();
        let d = dst.as_mut_ptr();
        let frames = (*s).hw_frames_ctx;
        if frames.is_null() {
            return Err(ffmpeg_next::Error::InvalidData);
        }
        let sw_format = (*((*frames).data as *const ffi::AVHWFramesContext)).sw_format;
        let fits = !(*d).buf[0].is_null()
            && (*d).format == sw_format as c_int
            && (*d).width == (*s).width
            && (*d).height == (*s).height
            && ffi::av_frame_is_writable(d) != 0;
        if !fits {
            ffi::av_frame_unref(d);
            (*d).format = sw_format as c_int;
        }
        let status = ffi::av_hwframe_transfer_data(d, s, 0);
        if status < 0 {
            return Err(ffmpeg_next::Error::from(status));
        }
        (*d).pts = (*s).pts;
        (*d).color_range = (*s).color_range;
        (*d).colorspace = (*s).colorspace;
    }
    Ok(())
}

/// Tells a YUV-to-RGB scaler that its source is full range. Hardware
/// decoders (and the HEVC software decoder) say so with a flag on an NV12 or
/// YUV420P frame, while swscale only knows the range of the `yuvj` formats.
/// Returns false if swscale refused.
pub(crate) fn set_full_range_source(scaler: &mut Scaler) -> bool {
    // SAFETY: the scaler holds a live SwsContext. The get call fills the
    // locals (the tables point into the context, which outlives this call);
    // the set call reads those tables and changes the source range only.
    unsafe {
        let ctx = scaler.as_mut_ptr();
        let (mut inv_table, mut table) = (ptr::null_mut(), ptr::null_mut());
        let (mut src_range, mut dst_range) = (0, 0);
        let (mut brightness, mut contrast, mut saturation) = (0, 0, 0);
        if ffi::sws_getColorspaceDetails(
            ctx,
            &mut inv_table,
            &mut src_range,
            &mut table,
            &mut dst_range,
            &mut brightness,
            &mut contrast,
            &mut saturation,
        ) < 0
        {
            return false;
        }
        ffi::sws_setColorspaceDetails(
            ctx, inv_table, 1, table, dst_range, brightness, contrast, saturation,
        ) >= 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffi::AVPixelFormat::*;

    #[test]
    fn the_format_callback_takes_the_device_format_else_software() {
        crate::init().unwrap();
        let cuda = AV_PIX_FMT_CUDA as c_int;
        assert_eq!(
            pick_format(cuda, &[AV_PIX_FMT_CUDA, AV_PIX_FMT_YUV420P]),
            AV_PIX_FMT_CUDA
        );
        // FFmpeg asks again without the device format when the device could
        // not take the stream; another device's format is not ours.
        assert_eq!(
            pick_format(cuda, &[AV_PIX_FMT_YUVJ420P]),
            AV_PIX_FMT_YUVJ420P
        );
        assert_eq!(
            pick_format(cuda, &[AV_PIX_FMT_VAAPI, AV_PIX_FMT_YUV420P10LE]),
            AV_PIX_FMT_YUV420P10LE
        );
        assert_eq!(pick_format(cuda, &[AV_PIX_FMT_VAAPI]), AV_PIX_FMT_NONE);
    }

    #[test]
    fn debians_h264_and_hevc_decoders_can_use_cuda_and_vaapi_devices() {
        crate::init().unwrap();
        for id in [Id::H264, Id::HEVC] {
            let codec = decoder::find(id).unwrap();
            assert_eq!(
                hardware_format(codec, HwAccel::Cuda),
                Some(AV_PIX_FMT_CUDA),
                "{id:?}"
            );
            assert_eq!(
                hardware_format(codec, HwAccel::Vaapi),
                Some(AV_PIX_FMT_VAAPI),
                "{id:?}"
            );
        }
        let png = decoder::find(Id::PNG).unwrap();
        assert_eq!(hardware_format(png, HwAccel::Cuda), None);
    }

    #[test]
    fn each_device_type_is_warned_about_once_per_process() {
        let plan = HardwarePlan::new(vec![HwAccel::Cuda, HwAccel::Vaapi], None);
        assert!(plan.first_time(HwAccel::Cuda, 0));
        assert!(!plan.first_time(HwAccel::Cuda, 0));
        assert!(plan.first_time(HwAccel::Vaapi, 0));
        assert!(plan.first_time(HwAccel::Cuda, 4), "started: its own flag");
        assert!(plan.first_time_software());
        assert!(!plan.first_time_software());
    }

    #[test]
    fn a_software_plan_opens_no_device_and_says_nothing() {
        let plan = HardwarePlan::software();
        let choice = plan.choose();
        assert!(choice.device.is_none() && choice.passed_over.is_empty());
        assert!(plan.open_for_thread().is_none());
        assert!(
            plan.first_time_software(),
            "software by choice is not warned about"
        );
    }
}
