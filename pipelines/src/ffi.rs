//! The few FFmpeg operations that rsmpeg 0.14 does not wrap safely: opening a codec with
//! options, opening an in-memory input with a forced demuxer, muxing into memory, referencing
//! packets, a parser for whole access units, error strings, and routing FFmpeg's log into
//! `tracing`.
//!
//! This module is the only one that needs raw FFI, hence the `unsafe_code` allowance; every
//! block carries a `SAFETY:` comment and the functions it exports are safe.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

use rsmpeg::UnsafeDerefMut;
use rsmpeg::avcodec::{AVCodecContext, AVCodecParserContext, AVPacket};
use rsmpeg::avformat::{
    AVFormatContextInput, AVFormatContextOutput, AVIOContextContainer, AVIOContextCustom, AVInputFormat,
};
use rsmpeg::avutil::{AVDictionary, AVFrame, AVMem};
use rsmpeg::ffi;

/// Size of the AVIOContext buffers (FFmpeg's own default).
const IO_BUFFER: usize = 32 * 1024;

/// A parser for `codec_id` that is given one whole access unit at a time
/// (`PARSER_FLAG_COMPLETE_FRAMES`: it does not wait for the next one to find where this one ends).
pub(crate) fn access_unit_parser(codec_id: ffi::AVCodecID) -> Option<AVCodecParserContext> {
    let mut parser = AVCodecParserContext::find(codec_id)?;
    // SAFETY: a plain field of the parser just allocated, set before its first use.
    unsafe { (*parser.as_mut_ptr()).flags |= ffi::PARSER_FLAG_COMPLETE_FRAMES as c_int };
    Some(parser)
}

/// A readable description of an FFmpeg error code.
pub(crate) fn err_str(code: c_int) -> String {
    let mut buf = [0 as c_char; 128];
    // SAFETY: `buf` is writable for its full length, which is what we pass; av_strerror always
    // NUL-terminates within that length.
    let ret = unsafe { ffi::av_strerror(code, buf.as_mut_ptr(), buf.len()) };
    if ret < 0 {
        return format!("FFmpeg error {code}");
    }
    // SAFETY: NUL-terminated by av_strerror (see above); `buf` outlives the borrow.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
    s.to_string_lossy().into_owned()
}

/// Makes FFmpeg log through `tracing` (target `ffmpeg`) instead of printing to stderr. Errors and
/// warnings go to DEBUG (the caller gets the failure as a `Result` anyway), info to TRACE.
/// Installed once per process.
pub(crate) fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `log_callback` has exactly the signature av_log_set_callback expects on
        // x86_64, is thread-safe (only stack state) and never unwinds.
        unsafe {
            ffi::av_log_set_callback(Some(log_callback));
        }
        #[cfg(not(target_arch = "x86_64"))]
        // SAFETY: plain setter of a global integer.
        unsafe {
            ffi::av_log_set_level(ffi::AV_LOG_ERROR as c_int);
        }
    });
}

thread_local! {
    /// FFmpeg's errors on this thread while [`errors_logged_by`] runs.
    static CAPTURED: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f`, and answers with its result the errors FFmpeg logged on this thread meanwhile
/// (some failures say why only in the log: "Cannot load libcuda.so.1"). Needs
/// [`init_logging`]; nothing is captured where the log callback is not installed.
pub(crate) fn errors_logged_by<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let out = f();
    (out, CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default())
}

#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn log_callback(
    avcl: *mut std::ffi::c_void,
    level: c_int,
    fmt: *const c_char,
    vl: *mut ffi::__va_list_tag,
) {
    let is_warn = level <= ffi::AV_LOG_WARNING as c_int;
    let capture = level <= ffi::AV_LOG_ERROR as c_int && CAPTURED.with(|c| c.borrow().is_some());
    if !capture
        && (level > ffi::AV_LOG_INFO as c_int
            || (is_warn && !tracing::enabled!(target: "ffmpeg", tracing::Level::DEBUG))
            || (!is_warn && !tracing::enabled!(target: "ffmpeg", tracing::Level::TRACE)))
    {
        return;
    }
    let mut line = [0 as c_char; 1024];
    let mut print_prefix: c_int = 1;
    // SAFETY: the arguments come straight from FFmpeg's av_log; `line` is writable for the length
    // passed and av_log_format_line2 NUL-terminates it.
    let n = unsafe {
        ffi::av_log_format_line2(avcl, level, fmt, vl, line.as_mut_ptr(), line.len() as c_int, &mut print_prefix)
    };
    if n < 0 {
        return;
    }
    // SAFETY: NUL-terminated (see above).
    let msg = unsafe { CStr::from_ptr(line.as_ptr()) }.to_string_lossy();
    let msg = msg.trim_end();
    if msg.is_empty() {
        return;
    }
    if capture {
        // Without the `[AVHWDeviceContext @ 0x…] ` prefix.
        let bare = msg.strip_prefix('[').and_then(|m| m.split_once("] ")).map_or(msg, |(_, rest)| rest);
        CAPTURED.with(|c| c.borrow_mut().as_mut().map(|v| v.push(bare.to_string())));
    }
    if is_warn {
        tracing::debug!(target: "ffmpeg", level, "{msg}");
    } else {
        tracing::trace!(target: "ffmpeg", level, "{msg}");
    }
}

/// Opens a codec context with `opts`, like `avcodec_open2`. Answers the FFmpeg error code when
/// the codec refuses the settings.
///
/// rsmpeg 0.14's `AVCodecContext::open` frees its options twice when `avcodec_open2` fails:
/// FFmpeg frees the dictionary it was handed and puts the options it did not use in its place
/// (on success and failure alike), and rsmpeg drops its own handle on the freed one when
/// returning the error. That turned every encoder that refuses its settings (libx264 with a
/// bitrate under 1 kbit/s, an option out of range) into a heap corruption that killed the
/// process; this wrapper hands ownership over and frees only what FFmpeg gives back.
pub(crate) fn open_codec(ctx: &mut AVCodecContext, opts: AVDictionary) -> Result<(), c_int> {
    let mut dict = opts.into_raw().as_ptr();
    // SAFETY: `ctx` is a valid codec context with a codec set (AVCodecContext::new), and `dict`
    // a dictionary we own exclusively (into_raw gave up rsmpeg's handle). avcodec_open2 frees
    // `dict` and stores in it the options it left unused, or NULL.
    let ret = unsafe { ffi::avcodec_open2(ctx.as_mut_ptr(), ptr::null(), &mut dict) };
    if !dict.is_null() {
        // SAFETY: what avcodec_open2 left in `dict` is ours; av_dict_free accepts it and NULLs it.
        unsafe { ffi::av_dict_free(&mut dict) };
    }
    if ret < 0 { Err(ret) } else { Ok(()) }
}

/// Opens `data` with the named demuxer (`mpegts`, `mp4`) through a custom AVIOContext that reads
/// (and seeks) over an in-memory copy, then (with `stream_info`) runs `avformat_find_stream_info`.
pub(crate) fn open_input(data: &[u8], demuxer: &CStr, stream_info: bool) -> Result<AVFormatContextInput, OpenError> {
    let fmt = AVInputFormat::find(demuxer)
        .ok_or_else(|| OpenError::Internal(format!("demuxer {demuxer:?} missing from this FFmpeg build")))?;
    let size = data.len() as u64;
    let pos = Arc::new(AtomicU64::new(0));
    let read_pos = Arc::clone(&pos);
    let read = Box::new(move |data: &mut Vec<u8>, buf: &mut [u8]| -> i32 {
        let at = read_pos.load(Ordering::Relaxed).min(size) as usize;
        let n = buf.len().min(data.len() - at);
        if n == 0 {
            return ffi::AVERROR_EOF;
        }
        buf[..n].copy_from_slice(&data[at..at + n]);
        read_pos.store((at + n) as u64, Ordering::Relaxed);
        n as i32
    });
    let seek = Box::new(move |_: &mut Vec<u8>, offset: i64, whence: i32| -> i64 {
        let whence = whence & !(ffi::AVSEEK_FORCE as i32);
        if whence == ffi::AVSEEK_SIZE as i32 {
            return size as i64;
        }
        let base = match whence {
            0 => 0,                                  // SEEK_SET
            1 => pos.load(Ordering::Relaxed) as i64, // SEEK_CUR
            2 => size as i64,                        // SEEK_END
            _ => return -1,
        };
        match base.checked_add(offset) {
            Some(p) if p >= 0 && p as u64 <= size => {
                pos.store(p as u64, Ordering::Relaxed);
                p
            }
            _ => -1,
        }
    });
    let mut io =
        AVIOContextCustom::alloc_context(AVMem::new(IO_BUFFER), false, data.to_vec(), Some(read), None, Some(seek));

    // SAFETY: avformat_alloc_context returns an owned context or NULL (checked).
    let ctx = NonNull::new(unsafe { ffi::avformat_alloc_context() })
        .ok_or_else(|| OpenError::Internal("out of memory".into()))?;
    let mut raw = ctx.as_ptr();
    // SAFETY: `raw` is a valid, exclusively owned context. `io` outlives it: it is moved into the
    // wrapper below, whose Drop closes the context before dropping `io` (custom IO is never
    // closed by FFmpeg). On failure avformat_open_input frees the user-supplied context itself and
    // leaves `raw` NULL, so we must not touch it again.
    let ret = unsafe {
        (*raw).pb = io.as_mut_ptr();
        ffi::avformat_open_input(&mut raw, ptr::null(), fmt.as_ptr(), ptr::null_mut())
    };
    if ret < 0 {
        return Err(OpenError::Input(format!("cannot open as {}: {}", demuxer.to_string_lossy(), err_str(ret))));
    }
    let raw = NonNull::new(raw).ok_or_else(|| OpenError::Internal("avformat_open_input returned no context".into()))?;
    // SAFETY: `raw` is an opened input context that nothing else owns; the wrapper closes it with
    // avformat_close_input on drop.
    let mut input = unsafe { AVFormatContextInput::from_raw(raw) };
    input.io_context = Some(AVIOContextContainer::Custom(io));
    if !stream_info {
        return Ok(input);
    }
    // SAFETY: valid opened context; NULL options are allowed.
    let ret = unsafe { ffi::avformat_find_stream_info(input.as_mut_ptr(), ptr::null_mut()) };
    if ret < 0 {
        return Err(OpenError::Input(format!("cannot read stream info: {}", err_str(ret))));
    }
    Ok(input)
}

/// Failure of [`open_input`]: bad bytes, or something wrong on our side.
#[derive(Debug)]
pub(crate) enum OpenError {
    Input(String),
    Internal(String),
}

/// The FFmpeg CLI's default `-muxdelay`, in microseconds.
const MUX_MAX_DELAY_US: i32 = 700_000;

/// An MPEG-TS muxer writing into memory.
pub(crate) struct MemoryOutput {
    pub(crate) ctx: AVFormatContextOutput,
    buf: Arc<Mutex<Vec<u8>>>,
}

impl MemoryOutput {
    /// An MPEG-TS output context whose bytes accumulate in memory.
    pub(crate) fn mpegts(capacity: usize) -> Result<Self, String> {
        let buf = Arc::new(Mutex::new(Vec::with_capacity(capacity)));
        let sink = Arc::clone(&buf);
        let write = Box::new(move |_: &mut Vec<u8>, data: &[u8]| -> i32 {
            match sink.lock() {
                Ok(mut v) => {
                    v.extend_from_slice(data);
                    data.len() as i32
                }
                Err(_) => ffi::AVERROR_EXTERNAL,
            }
        });
        let io = AVIOContextCustom::alloc_context(AVMem::new(IO_BUFFER), true, Vec::new(), None, Some(write), None);
        let mut ctx = AVFormatContextOutput::create(c"out.ts", Some(AVIOContextContainer::Custom(io)))
            .map_err(|e| format!("cannot create the MPEG-TS muxer: {e}"))?;
        // As the FFmpeg CLI muxes (`-muxdelay 0.7`): audio frames are gathered into PES packets
        // of up to 0.35 s instead of one PES (padded to whole 188-byte packets) per frame, which
        // made a 2 s rendition about 8 KB larger than the CLI's. `mpegts_copyts` keeps the
        // timestamps as they are (the delay would otherwise be added to them), so renditions
        // stay aligned with the source.
        // SAFETY: `ctx` is a freshly created output context whose private data is the mpegts
        // muxer's options; max_delay is a plain field read when the header is written.
        let ret = unsafe {
            let raw = ctx.as_mut_ptr();
            (*raw).max_delay = MUX_MAX_DELAY_US;
            ffi::av_opt_set((*raw).priv_data, c"mpegts_copyts".as_ptr(), c"1".as_ptr(), 0)
        };
        if ret < 0 {
            return Err(format!("cannot set the MPEG-TS muxer's options: {}", err_str(ret)));
        }
        Ok(Self { ctx, buf })
    }

    /// Drops the muxer (call after `write_trailer`) and returns the bytes written.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        let MemoryOutput { ctx, buf } = self;
        drop(ctx);
        match Arc::try_unwrap(buf) {
            Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
            Err(arc) => match arc.lock() {
                Ok(v) => v.clone(),
                Err(e) => e.into_inner().clone(),
            },
        }
    }
}

/// A new reference to the same packet data (no copy), like `av_packet_ref`.
pub(crate) fn packet_ref(pkt: &AVPacket) -> Option<AVPacket> {
    let mut out = AVPacket::new();
    // SAFETY: both packets are valid; av_packet_ref only reads `pkt` and fills the blank `out`.
    let ret = unsafe { ffi::av_packet_ref(out.as_mut_ptr(), pkt.as_ptr()) };
    (ret >= 0).then_some(out)
}

/// Copies the picture's aspect ratio and colour description from `src` to `dst` (what
/// `av_frame_copy_props` does for these, without the side data and metadata).
pub(crate) fn copy_picture_props(dst: &mut AVFrame, src: &AVFrame) {
    // SAFETY: both frames are valid; these are plain fields of `dst`, written through its
    // exclusive borrow.
    let d = unsafe { dst.deref_mut() };
    d.sample_aspect_ratio = src.sample_aspect_ratio;
    d.color_primaries = src.color_primaries;
    d.color_trc = src.color_trc;
    d.colorspace = src.colorspace;
    d.color_range = src.color_range;
    d.chroma_location = src.chroma_location;
}

/// Writes the parameters FFmpeg's stream-info pass would have read into stream `index` of an
/// input opened without that pass: the sample rate, `channels` (their default layout), the
/// profile and 1024 samples a frame (AAC's). Nothing when there is no such stream.
pub(crate) fn set_aac_params(
    ictx: &mut AVFormatContextInput,
    index: usize,
    sample_rate: i32,
    channels: i32,
    profile: i32,
) {
    if index >= ictx.nb_streams as usize {
        return;
    }
    // SAFETY: `index` is below nb_streams, so the stream and its codecpar are valid and owned by
    // the context we borrow exclusively; av_channel_layout_uninit/default only touch the layout.
    unsafe {
        let st = *(*ictx.as_mut_ptr()).streams.add(index);
        let par = &mut *(*st).codecpar;
        par.sample_rate = sample_rate;
        ffi::av_channel_layout_uninit(&mut par.ch_layout);
        ffi::av_channel_layout_default(&mut par.ch_layout, channels);
        par.profile = profile;
        par.frame_size = 1024;
    }
}

/// Writes how many frames the decoder of stream `index` holds back to put them in presentation
/// order (`video_delay`, which the stream-info pass would have found) into an input opened
/// without that pass. Nothing when there is no such stream.
pub(crate) fn set_video_delay(ictx: &mut AVFormatContextInput, index: usize, delay: i32) {
    if index >= ictx.nb_streams as usize {
        return;
    }
    // SAFETY: `index` is below nb_streams, so the stream and its codecpar are valid and owned by
    // the context we borrow exclusively.
    unsafe {
        let st = *(*ictx.as_mut_ptr()).streams.add(index);
        (*(*st).codecpar).video_delay = delay;
    }
}

/// FFmpeg's short name of a codec id ("h264", "aac", ...).
pub(crate) fn codec_name(id: ffi::AVCodecID) -> String {
    // SAFETY: avcodec_get_name accepts any id and returns a static NUL-terminated string (never
    // NULL: "unknown_codec" for unknown ids).
    let p = unsafe { ffi::avcodec_get_name(id) };
    if p.is_null() {
        return format!("codec #{id}");
    }
    // SAFETY: non-null static C string (see above).
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// A copy of a demuxed stream's parameters for stream copy into another container (the
/// container-specific `codec_tag` cleared, as the FFmpeg CLI does).
pub(crate) fn params_for_copy(par: &rsmpeg::avcodec::AVCodecParameters) -> rsmpeg::avcodec::AVCodecParameters {
    let mut out = rsmpeg::avcodec::AVCodecParameters::new();
    out.copy(par);
    // SAFETY: `out` is our own freshly copied parameter set; codec_tag is a plain integer field.
    unsafe {
        rsmpeg::UnsafeDerefMut::deref_mut(&mut out).codec_tag = 0;
    }
    out
}

/// A packet's bytes.
pub(crate) fn packet_data(pkt: &AVPacket) -> &[u8] {
    if pkt.data.is_null() || pkt.size <= 0 {
        return &[];
    }
    // SAFETY: a packet owns `size` bytes at `data` for as long as it lives.
    unsafe { std::slice::from_raw_parts(pkt.data, pkt.size as usize) }
}

/// A stream's codec extradata (an `avcC` record, parameter sets …), empty if none.
pub(crate) fn extradata(par: &ffi::AVCodecParameters) -> &[u8] {
    if par.extradata.is_null() || par.extradata_size <= 0 {
        return &[];
    }
    // SAFETY: the parameters own `extradata_size` bytes at `extradata` for as long as they live.
    unsafe { std::slice::from_raw_parts(par.extradata, par.extradata_size as usize) }
}

/// Codec parameters for packets that come from outside FFmpeg (the RTMP segmenter): the codec,
/// its extradata (an `avcC` record, an AudioSpecificConfig) and, for audio, the sample rate and
/// channel count. The muxers read the rest from the extradata.
pub(crate) fn codec_params(
    media_type: ffi::AVMediaType,
    codec_id: ffi::AVCodecID,
    extradata: &[u8],
    audio: Option<(u32, u32)>,
) -> Result<rsmpeg::avcodec::AVCodecParameters, String> {
    let size = c_int::try_from(extradata.len()).map_err(|_| "extradata too large".to_string())?;
    let mut par = rsmpeg::avcodec::AVCodecParameters::new();
    let buf = if extradata.is_empty() {
        ptr::null_mut()
    } else {
        // SAFETY: av_mallocz returns a zeroed buffer of the size asked or NULL (checked); the
        // padding FFmpeg's readers expect past the end is part of it.
        let p = unsafe { ffi::av_mallocz(extradata.len() + ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize) }.cast::<u8>();
        if p.is_null() {
            return Err("out of memory".into());
        }
        // SAFETY: `p` has room for `extradata.len()` bytes and does not overlap the slice.
        unsafe { ptr::copy_nonoverlapping(extradata.as_ptr(), p, extradata.len()) };
        p
    };
    // SAFETY: `par` is our own fresh parameter set. It takes ownership of `buf` (allocated with
    // av_malloc, as avcodec_parameters_free expects when it frees `extradata`); the rest are
    // plain fields, and av_channel_layout_default only writes the layout it is given.
    unsafe {
        let raw = rsmpeg::UnsafeDerefMut::deref_mut(&mut par);
        raw.codec_type = media_type;
        raw.codec_id = codec_id;
        raw.extradata = buf;
        raw.extradata_size = if buf.is_null() { 0 } else { size };
        if let Some((sample_rate, channels)) = audio {
            raw.sample_rate = sample_rate as c_int;
            raw.frame_size = 1024;
            ffi::av_channel_layout_default(&mut raw.ch_layout, channels as c_int);
        }
    }
    Ok(par)
}

/// A packet holding a copy of `data`, like `av_new_packet` plus a copy.
pub(crate) fn packet_from(data: &[u8]) -> Option<AVPacket> {
    let size = c_int::try_from(data.len()).ok()?;
    let mut pkt = AVPacket::new();
    // SAFETY: `pkt` is a blank packet; av_new_packet gives it a buffer of `size` bytes (plus
    // zeroed padding) or fails without touching it.
    if unsafe { ffi::av_new_packet(pkt.as_mut_ptr(), size) } < 0 {
        return None;
    }
    if !data.is_empty() {
        // SAFETY: the packet's buffer holds `size` == data.len() bytes (above) and is not `data`.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), (*pkt.as_mut_ptr()).data, data.len()) };
    }
    Some(pkt)
}

/// A CUDA device opened for NVDEC decoding (an `AVHWDeviceContext` of type CUDA, holding its
/// CUDA context). One per GPU per process: decoders take a new reference each.
pub(crate) struct CudaDevice(NonNull<ffi::AVBufferRef>);

// SAFETY: the buffer is reference-counted with atomics and the device context is not written
// after av_hwdevice_ctx_create returns; FFmpeg shares one across decoders on several threads.
unsafe impl Send for CudaDevice {}
// SAFETY: as above; `&CudaDevice` only hands out new references (av_buffer_ref).
unsafe impl Sync for CudaDevice {}

impl CudaDevice {
    /// Opens CUDA device `gpu` (FFmpeg loads the driver, libcuda.so.1, at run time). Answers the
    /// FFmpeg error code when there is no such device or no driver.
    pub(crate) fn open(gpu: u32) -> Result<CudaDevice, c_int> {
        // Digits only, so there is no NUL to refuse.
        let name = std::ffi::CString::new(gpu.to_string()).unwrap_or_default();
        let mut buf: *mut ffi::AVBufferRef = ptr::null_mut();
        // SAFETY: `buf` is a valid out-pointer; the device name is a NUL-terminated string that
        // outlives the call; no options dictionary.
        let ret = unsafe {
            ffi::av_hwdevice_ctx_create(
                &mut buf,
                ffi::AVHWDeviceType_AV_HWDEVICE_TYPE_CUDA,
                name.as_ptr(),
                ptr::null_mut(),
                0,
            )
        };
        match NonNull::new(buf) {
            Some(buf) if ret >= 0 => Ok(CudaDevice(buf)),
            _ => Err(if ret < 0 { ret } else { ffi::AVERROR_UNKNOWN }),
        }
    }
}

impl Drop for CudaDevice {
    fn drop(&mut self) {
        let mut buf = self.0.as_ptr();
        // SAFETY: our own reference, given up once.
        unsafe { ffi::av_buffer_unref(&mut buf) };
    }
}

/// Makes `dec` (not opened yet) decode on `device` through NVDEC: frames come out in GPU memory
/// (`AV_PIX_FMT_CUDA`, see [`to_system_memory`]). A stream NVDEC cannot decode (a profile or
/// chroma format it lacks) is decoded in software instead, as FFmpeg's hwaccel does when the
/// hardware format is not offered. Fails only when out of memory.
pub(crate) fn decode_on(dec: &mut AVCodecContext, device: &CudaDevice) -> Result<(), c_int> {
    // SAFETY: av_buffer_ref takes a new reference to our valid buffer (NULL when out of memory).
    let device_ref = unsafe { ffi::av_buffer_ref(device.0.as_ptr()) };
    if device_ref.is_null() {
        return Err(ffi::AVERROR(ffi::ENOMEM));
    }
    // SAFETY: `dec` is a valid, not yet opened codec context we borrow exclusively; it takes
    // ownership of the new reference (freed by avcodec_free_context). `pick_cuda` has the
    // signature get_format expects and never unwinds.
    unsafe {
        let raw = dec.as_mut_ptr();
        (*raw).hw_device_ctx = device_ref;
        (*raw).get_format = Some(pick_cuda);
    }
    Ok(())
}

unsafe extern "C" fn pick_cuda(
    _ctx: *mut ffi::AVCodecContext,
    formats: *const ffi::AVPixelFormat,
) -> ffi::AVPixelFormat {
    let mut first_software = ffi::AVPixelFormat_AV_PIX_FMT_NONE;
    let mut p = formats;
    // SAFETY: FFmpeg hands a list terminated by AV_PIX_FMT_NONE; av_pix_fmt_desc_get accepts any
    // format and answers NULL for unknown ones.
    unsafe {
        while *p != ffi::AVPixelFormat_AV_PIX_FMT_NONE {
            if *p == ffi::AVPixelFormat_AV_PIX_FMT_CUDA {
                return *p;
            }
            let desc = ffi::av_pix_fmt_desc_get(*p);
            let hw = !desc.is_null() && (*desc).flags & ffi::AV_PIX_FMT_FLAG_HWACCEL as u64 != 0;
            if !hw && first_software == ffi::AVPixelFormat_AV_PIX_FMT_NONE {
                first_software = *p;
            }
            p = p.add(1);
        }
    }
    first_software
}

/// A frame decoded into GPU memory, copied into system memory (NV12 for 8-bit 4:2:0) with its
/// timestamps and picture properties; any other frame as it is.
pub(crate) fn to_system_memory(frame: AVFrame) -> Result<AVFrame, c_int> {
    if frame.format != ffi::AVPixelFormat_AV_PIX_FMT_CUDA {
        return Ok(frame);
    }
    let mut out = AVFrame::new();
    // SAFETY: `frame` is a valid hardware frame (its hw_frames_ctx set by the decoder) and `out`
    // a blank frame: av_hwframe_transfer_data allocates it in the frames context's software
    // format and copies the pixels; av_frame_copy_props copies timestamps and properties.
    let ret = unsafe {
        let ret = ffi::av_hwframe_transfer_data(out.as_mut_ptr(), frame.as_ptr(), 0);
        if ret < 0 { ret } else { ffi::av_frame_copy_props(out.as_mut_ptr(), frame.as_ptr()) }
    };
    if ret < 0 { Err(ret) } else { Ok(out) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsmpeg::avcodec::AVCodec;

    fn x264_context() -> AVCodecContext {
        let codec = AVCodec::find_encoder_by_name(c"libx264").expect("libx264");
        let mut enc = AVCodecContext::new(&codec);
        enc.set_width(64);
        enc.set_height(64);
        enc.set_pix_fmt(ffi::AVPixelFormat_AV_PIX_FMT_YUV420P);
        enc.set_time_base(rsmpeg::avutil::AVRational { num: 1, den: 30 });
        enc
    }

    /// FFmpeg's errors logged while `errors_logged_by` runs come back with its result, without
    /// their context prefix; warnings, and errors before or after, do not.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_errors_ffmpeg_logs_meanwhile_are_captured() {
        init_logging();
        // A context with a class, so that FFmpeg prefixes the lines with `[libx264 @ 0x…] `.
        let ctx = x264_context();
        let log = |level: u32, text: &CStr| {
            // SAFETY: a live codec context (its first field is its AVClass), a NUL-terminated
            // format with one %s and its NUL-terminated argument.
            unsafe { ffi::av_log(ctx.as_ptr() as *mut _, level as c_int, c"%s\n".as_ptr(), text.as_ptr()) }
        };
        log(ffi::AV_LOG_ERROR, c"before");
        let (answer, said) = errors_logged_by(|| {
            log(ffi::AV_LOG_ERROR, c"Cannot load libcuda.so.1");
            log(ffi::AV_LOG_WARNING, c"only a warning");
            log(ffi::AV_LOG_FATAL, c"and a fatal one");
            42
        });
        log(ffi::AV_LOG_ERROR, c"after");
        assert_eq!((answer, said), (42, vec!["Cannot load libcuda.so.1".to_string(), "and a fatal one".to_string()]));
        assert_eq!(errors_logged_by(|| ()).1, Vec::<String>::new());
    }

    /// Before `open_codec`, both of these corrupted the heap (`free(): invalid pointer`, or a
    /// segfault) instead of returning an error.
    #[test]
    fn a_refused_encoder_setting_is_an_error_not_a_crash() {
        init_logging();
        // libx264 takes kbit/s: 999 bit/s is 0 kbit/s, "bitrate not specified".
        let mut enc = x264_context();
        enc.set_bit_rate(999);
        let opts = AVDictionary::new(c"preset", c"veryfast", 0).set(c"maxrate", c"999", 0).set(c"bufsize", c"999", 0);
        let err = open_codec(&mut enc, opts).expect_err("libx264 refuses 0 kbit/s");
        assert!(err < 0);
        // An option out of its range (minrate is an int): refused by av_opt_set_dict.
        let mut enc = x264_context();
        enc.set_bit_rate(3_000_000);
        let opts = AVDictionary::new(c"minrate", c"2147483648", 0).set(c"preset", c"veryfast", 0);
        assert!(open_codec(&mut enc, opts).is_err());
        // And good settings still open.
        let mut enc = x264_context();
        enc.set_bit_rate(500_000);
        let opts = AVDictionary::new(c"preset", c"veryfast", 0).set(c"maxrate", c"500000", 0);
        open_codec(&mut enc, opts).expect("valid settings open");
    }
}
