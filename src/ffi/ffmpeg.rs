//! FFmpeg calls that ffmpeg-next 9 does not wrap: bitstream filters (Annex-B), per-stream seeking,
//! format probing, codec-parameter fields, raw-video plane layout.

use std::ffi::CString;
use std::ptr;

use ff::codec::packet::Mut as _;
use ff::ffi;
use ffmpeg_next as ff;

use crate::error::{Error, Result};

/// `AVERROR(EAGAIN)` on Linux.
const EAGAIN: i32 = -11;

fn av_err(call: &'static str, code: i32) -> Error {
    Error::ffmpeg(call, ff::Error::from(code))
}

/// Codec-parameter fields that ffmpeg-next does not expose.
#[derive(Clone, Debug)]
pub(crate) struct CodecParExtras {
    pub bits_per_raw_sample: i32,
    pub profile: i32,
    pub bit_rate: i64,
    /// Frames of reordering delay (B-frames), as `avformat_find_stream_info` found it.
    pub video_delay: i32,
    pub extradata: Vec<u8>,
    /// Picture width and height (what a decoder context made from these parameters starts with).
    pub width: u32,
    pub height: u32,
    /// The pixel format (`None` for values this FFmpeg build does not define).
    pub pixel_format: ff::format::Pixel,
    pub color_range: ff::color::Range,
    pub color_space: ff::color::Space,
    pub color_primaries: ff::color::Primaries,
    pub color_trc: ff::color::TransferCharacteristic,
}

/// `AV_PKT_FLAG_DISCARD`: decode the packet but drop its frame (edit-list pre-roll).
const PKT_FLAG_DISCARD: i32 = 0x4;

/// Whether `packet` carries `AV_PKT_FLAG_DISCARD`, which ffmpeg-next's `flags()` truncates away (it knows only
/// the key and corrupt flags). The MP4/MOV demuxer sets it on packets that an edit list hides.
pub(crate) fn packet_is_discard(packet: &ff::Packet) -> bool {
    use ff::codec::packet::Ref as _;
    // SAFETY: `as_ptr` points at the AVPacket the borrowed `packet` owns, valid for this read of a plain field.
    let flags = unsafe { (*packet.as_ptr()).flags };
    flags & PKT_FLAG_DISCARD != 0
}

/// Reads the codec parameters of `stream` that have no safe accessor.
pub(crate) fn codecpar_extras(stream: &ff::format::stream::Stream<'_>) -> CodecParExtras {
    let par = stream.parameters();
    // SAFETY: `par` borrows the stream's AVCodecParameters, valid while the input lives; we only read plain
    // fields and copy the extradata bytes (whose length FFmpeg keeps in extradata_size). The pixel format int is
    // turned into the enum only when it is one of the enum's values (checked below).
    unsafe {
        let p = par.as_ptr();
        let extradata = if (*p).extradata.is_null() || (*p).extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*p).extradata, (*p).extradata_size as usize).to_vec()
        };
        // `format` is a plain int; FFmpeg's pixel formats are the contiguous values -1 (none) ..
        // AV_PIX_FMT_NB, so one in that range is a value of the enum.
        let format = (*p).format;
        let pixel_format = if (ffi::AVPixelFormat::AV_PIX_FMT_NONE as i32
            ..ffi::AVPixelFormat::AV_PIX_FMT_NB as i32)
            .contains(&format)
        {
            ff::format::Pixel::from(std::mem::transmute::<i32, ffi::AVPixelFormat>(format))
        } else {
            ff::format::Pixel::None
        };
        CodecParExtras {
            bits_per_raw_sample: (*p).bits_per_raw_sample,
            profile: (*p).profile,
            bit_rate: (*p).bit_rate,
            video_delay: (*p).video_delay,
            extradata,
            width: (*p).width.max(0) as u32,
            height: (*p).height.max(0) as u32,
            pixel_format,
            color_range: (*p).color_range.into(),
            color_space: (*p).color_space.into(),
            color_primaries: (*p).color_primaries.into(),
            color_trc: (*p).color_trc.into(),
        }
    }
}

/// Rotation in degrees (counter-clockwise, as FFmpeg reports it) from a display-matrix side data blob.
pub(crate) fn display_matrix_rotation(matrix: &[u8]) -> Option<f64> {
    if matrix.len() < 36 {
        return None;
    }
    // SAFETY: the display matrix is nine 32-bit integers; we checked the length and av_display_rotation_get only
    // reads those 36 bytes. The bytes are copied into an aligned local array first.
    let mut m = [0i32; 9];
    for (i, v) in m.iter_mut().enumerate() {
        *v = i32::from_ne_bytes([
            matrix[4 * i],
            matrix[4 * i + 1],
            matrix[4 * i + 2],
            matrix[4 * i + 3],
        ]);
    }
    let deg = unsafe { ffi::av_display_rotation_get(m.as_ptr()) };
    if deg.is_nan() {
        None
    } else {
        Some(deg)
    }
}

/// Opens the file at `path` and reads its streams' parameters (`avformat_open_input` +
/// `avformat_find_stream_info`): from the H.264 headers alone when `from_headers` is set (see [`describe_h264`]),
/// otherwise with FFmpeg's full probe. The second value says whether the headers were used (`false` when they were
/// not asked for or did not describe every H.264 stream).
///
/// `head` is the file's first bytes. Where they and the file's name say which demuxer FFmpeg's format probe would
/// choose (see [`container_hint`]), that demuxer is given to FFmpeg and the probe, which runs every demuxer's
/// prober over the first kilobytes, is skipped; should opening it that way fail, the file is opened again with the
/// probe, so a file whose name or first bytes mislead is opened as before.
pub(crate) fn open_input(
    path: &std::path::Path,
    head: &[u8],
    from_headers: bool,
) -> std::result::Result<(ff::format::context::Input, bool), ff::Error> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| ff::Error::InvalidData)?;
    if let Some(format) = container_hint(path, head) {
        if let Ok(opened) = open_path(&c_path, format, from_headers) {
            return Ok(opened);
        }
    }
    open_path(&c_path, ptr::null(), from_headers)
}

/// [`open_input`] with the demuxer `format` (null: FFmpeg's format probe chooses it).
fn open_path(
    c_path: &std::ffi::CStr,
    format: *const ffi::AVInputFormat,
    from_headers: bool,
) -> std::result::Result<(ff::format::context::Input, bool), ff::Error> {
    let open = || -> std::result::Result<*mut ffi::AVFormatContext, ff::Error> {
        let mut ps: *mut ffi::AVFormatContext = ptr::null_mut();
        // SAFETY: `ps` is null (avformat_open_input allocates the context), `c_path` outlives the call and
        // `format` is null or a demuxer descriptor from av_find_input_format (static); on failure FFmpeg frees the
        // context and leaves `ps` null.
        let rc =
            unsafe { ffi::avformat_open_input(&mut ps, c_path.as_ptr(), format, ptr::null_mut()) };
        if rc < 0 {
            return Err(ff::Error::from(rc));
        }
        Ok(ps)
    };
    let full = |mut ps: *mut ffi::AVFormatContext| {
        // SAFETY: `ps` was just opened by avformat_open_input and nothing else holds it; without options FFmpeg
        // probes every stream as usual.
        let rc = unsafe { ffi::avformat_find_stream_info(ps, ptr::null_mut()) };
        if rc < 0 {
            // SAFETY: `ps` is valid and closed exactly once (FFmpeg nulls it).
            unsafe { ffi::avformat_close_input(&mut ps) };
            return Err(ff::Error::from(rc));
        }
        // SAFETY: `ps` is an opened context with stream info; the Input owns it from here on and closes it.
        Ok((unsafe { ff::format::context::Input::wrap(ps) }, false))
    };
    let mut ps = open()?;
    if !from_headers {
        return full(ps);
    }
    // SAFETY: `ps` was just opened by avformat_open_input and nothing else holds it.
    match unsafe { find_stream_info_from_headers(ps) } {
        // SAFETY: `ps` is an opened context with stream info; the Input owns it from here on and closes it.
        Ok(Some(headers)) => Ok((unsafe { ff::format::context::Input::wrap(ps) }, headers)),
        Ok(None) => {
            // SAFETY: `ps` is valid and closed exactly once (FFmpeg nulls it).
            unsafe { ffi::avformat_close_input(&mut ps) };
            full(open()?)
        }
        Err(e) => {
            // SAFETY: as above.
            unsafe { ffi::avformat_close_input(&mut ps) };
            Err(e)
        }
    }
}

/// File name extensions of ISO base media and QuickTime files.
const ISO_MEDIA_EXTENSIONS: [&str; 10] = [
    "mp4", "m4v", "mov", "qt", "m4a", "3gp", "3g2", "mj2", "f4v", "ismv",
];

/// The demuxer FFmpeg's format probe would choose for the file at `path` whose first bytes are `head`, where that is
/// certain from a few bytes; `None` otherwise (the probe decides).
///
/// Only ISO base media / QuickTime files are recognised: a name with one of their extensions and a first box
/// `ftyp` (not a JPEG 2000 or JPEG XL brand), `moov` or `mdat` of at least 8 bytes. FFmpeg's MOV prober gives such
/// a start its highest score, which no other prober reaches for such a name, with one exception that is left to the
/// probe: a QuickTime-wrapped MPEG program stream (a `hdlr` box of handler `mhlr`/`MPEG` in the first bytes).
pub(crate) fn container_hint(
    path: &std::path::Path,
    head: &[u8],
) -> Option<*const ffi::AVInputFormat> {
    let ext = path.extension()?.to_str()?;
    if !ISO_MEDIA_EXTENSIONS
        .iter()
        .any(|e| e.eq_ignore_ascii_case(ext))
    {
        return None;
    }
    if head.len() < 16 || u32::from_be_bytes([head[0], head[1], head[2], head[3]]) < 8 {
        return None;
    }
    let first_box = match &head[4..8] {
        b"ftyp" => !matches!(&head[8..12], b"jp2 " | b"jpx " | b"jxl "),
        b"moov" | b"mdat" => true,
        _ => false,
    };
    if !first_box
        || head
            .windows(16)
            .any(|w| &w[..4] == b"hdlr" && &w[8..16] == b"mhlrMPEG")
    {
        return None;
    }
    mov_demuxer()
}

/// FFmpeg's MOV/MP4 demuxer, looked up once; `None` when this FFmpeg build has none.
fn mov_demuxer() -> Option<*const ffi::AVInputFormat> {
    static MOV: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: looks up a static demuxer descriptor by a NUL-terminated name; the result (null when absent) lives as
    // long as the library and is only passed back to FFmpeg.
    let p = *MOV.get_or_init(|| unsafe { ffi::av_find_input_format(c"mov".as_ptr()) } as usize);
    (p != 0).then_some(p as *const ffi::AVInputFormat)
}

/// [`open_input`] for a container read through a custom reader: `make_io` gives a fresh reader positioned at the
/// start (called again when the headers do not suffice and FFmpeg's full probe reads from the start), `name` is
/// the format hint (its extension).
pub(crate) fn open_input_io(
    make_io: &dyn Fn() -> std::result::Result<ff::format::context::StreamIo, ff::Error>,
    name: &str,
    from_headers: bool,
) -> std::result::Result<(ff::format::context::Input, bool), ff::Error> {
    if !from_headers {
        return ff::format::input_from_stream(make_io()?, Some(name), None).map(|i| (i, false));
    }
    let c_name = CString::new(name).map_err(|_| ff::Error::InvalidData)?;
    let mut io = make_io()?;
    // SAFETY: allocates an empty context (null when out of memory).
    let mut ps = unsafe { ffi::avformat_alloc_context() };
    if ps.is_null() {
        return Err(ff::Error::Other {
            errno: libc::ENOMEM,
        });
    }
    // SAFETY: `ps` is a fresh context; `pb` is the AVIOContext `io` owns, which lives as long as the context
    // (the Input below takes both; on failure the context is closed before `io` drops). The custom-IO flag keeps
    // FFmpeg from closing `pb` itself.
    unsafe {
        (*ps).pb = io.as_mut_ptr();
        (*ps).flags |= ffi::AVFMT_FLAG_CUSTOM_IO;
    }
    // SAFETY: `ps` was allocated above and `c_name` outlives the call; on failure FFmpeg frees the context (not
    // `pb`) and nulls `ps`.
    let rc =
        unsafe { ffi::avformat_open_input(&mut ps, c_name.as_ptr(), ptr::null(), ptr::null_mut()) };
    if rc < 0 {
        return Err(ff::Error::from(rc));
    }
    // SAFETY: `ps` was just opened and nothing else holds it.
    match unsafe { find_stream_info_from_headers(ps) } {
        // SAFETY: `ps` is an opened context with stream info whose `pb` is `io`'s; the Input owns both from here
        // on and closes the context before it frees the reader.
        Ok(Some(headers)) => Ok((
            unsafe { ff::format::context::Input::wrap_with_custom_io(ps, io) },
            headers,
        )),
        Ok(None) => {
            // SAFETY: `ps` is valid and closed exactly once, before `io` (its `pb`) drops.
            unsafe { ffi::avformat_close_input(&mut ps) };
            drop(io);
            ff::format::input_from_stream(make_io()?, Some(name), None).map(|i| (i, false))
        }
        Err(e) => {
            // SAFETY: as above.
            unsafe { ffi::avformat_close_input(&mut ps) };
            Err(e)
        }
    }
}

/// `avformat_find_stream_info` with the parameters of H.264 streams read from their headers (see
/// [`describe_h264`]) and no picture decoded for them: `Ok(Some(true))` when some stream was described that way,
/// `Ok(Some(false))` when there was none to describe (FFmpeg probed as usual). `Ok(None)`: some H.264 stream's
/// headers do not describe it and nothing was probed; the caller reopens the input for FFmpeg's full probe, which
/// also discards what `describe_h264` wrote.
///
/// # Safety
/// `ps` must be a context opened by `avformat_open_input` that nothing else uses during the call.
unsafe fn find_stream_info_from_headers(
    ps: *mut ffi::AVFormatContext,
) -> std::result::Result<Option<bool>, ff::Error> {
    // SAFETY: `ps` is an opened context whose `streams` holds `nb_streams` valid streams, each with codec
    // parameters that nothing else touches during this call.
    let pars: Vec<*mut ffi::AVCodecParameters> = unsafe {
        (0..(*ps).nb_streams as usize)
            .map(|i| (*(*(*ps).streams.add(i))).codecpar)
            .collect()
    };
    let mut options: Vec<*mut ffi::AVDictionary> = vec![ptr::null_mut(); pars.len()];
    let (mut described, mut any) = (true, false);
    for (o, &par) in options.iter_mut().zip(&pars) {
        // SAFETY: `par` is valid (above); describe_h264 reads the extradata within extradata_size and writes
        // plain fields.
        match unsafe { describe_h264(par) } {
            Some(true) => {
                any = true;
                // SAFETY: `o` is a null or valid dictionary; keys and values are NUL-terminated literals.
                unsafe { ffi::av_dict_set(o, c"skip_frame".as_ptr(), c"all".as_ptr(), 0) };
            }
            Some(false) => described = false,
            None => {}
        }
    }
    if !described {
        for o in &mut options {
            // SAFETY: each entry is null or a dictionary set above.
            unsafe { ffi::av_dict_free(o) };
        }
        return Ok(None);
    }
    // SAFETY: `ps` is valid; `options` has one dictionary per stream (nb_streams entries, as FFmpeg requires);
    // FFmpeg may replace each with the options it did not use, which we free right after.
    let rc = unsafe { ffi::avformat_find_stream_info(ps, options.as_mut_ptr()) };
    for o in &mut options {
        // SAFETY: each entry is null or a dictionary FFmpeg left to us.
        unsafe { ffi::av_dict_free(o) };
    }
    if rc < 0 {
        return Err(ff::Error::from(rc));
    }
    Ok(Some(any))
}

/// For an H.264 stream whose extradata is an `avcC` record with a sequence parameter set this crate reads
/// completely: fills in what FFmpeg's probe would get by decoding a picture (pixel format, cropped size, bit
/// depth, profile, level, progressive field order, reorder delay, and the colour description and chroma location
/// where the SPS has them, as FFmpeg's decoder sets them) and returns `Some(true)`. `Some(false)`: an H.264
/// stream that needs the full probe (interlaced, monochrome, unusual bit depth, RGB or YCgCo matrix, no reorder
/// depth in the VUI, no or foreign extradata). `None`: another codec.
///
/// # Safety
/// `par` must point at valid codec parameters that nothing else accesses during the call.
unsafe fn describe_h264(par: *mut ffi::AVCodecParameters) -> Option<bool> {
    use crate::bitstream::sps::h264::sps_from_avcc;
    use ffi::AVPixelFormat as F;
    // SAFETY: the caller guarantees `par`; the extradata is read within extradata_size.
    let p = unsafe { &mut *par };
    if p.codec_id != ffi::AVCodecID::AV_CODEC_ID_H264 {
        return None;
    }
    if p.extradata.is_null() || p.extradata_size <= 0 {
        return Some(false);
    }
    // SAFETY: FFmpeg keeps extradata_size readable bytes at extradata.
    let extradata = unsafe { std::slice::from_raw_parts(p.extradata, p.extradata_size as usize) };
    let Some(sps) = sps_from_avcc(extradata) else {
        return Some(false);
    };
    // 8-bit full-range streams decode to the "J" formats.
    let full = sps.full_range == Some(true);
    let format = match (sps.chroma_format_idc, sps.bit_depth_luma, full) {
        _ if sps.separate_colour_plane || sps.bit_depth_chroma != sps.bit_depth_luma => {
            return Some(false)
        }
        (1, 8, false) => F::AV_PIX_FMT_YUV420P,
        (1, 8, true) => F::AV_PIX_FMT_YUVJ420P,
        (2, 8, false) => F::AV_PIX_FMT_YUV422P,
        (2, 8, true) => F::AV_PIX_FMT_YUVJ422P,
        (3, 8, false) => F::AV_PIX_FMT_YUV444P,
        (3, 8, true) => F::AV_PIX_FMT_YUVJ444P,
        (1, 10, _) => F::AV_PIX_FMT_YUV420P10LE,
        (2, 10, _) => F::AV_PIX_FMT_YUV422P10LE,
        (3, 10, _) => F::AV_PIX_FMT_YUV444P10LE,
        _ => return Some(false),
    };
    let Some(reorder) = sps.reorder_frames else {
        return Some(false);
    };
    if !sps.progressive || sps.width == 0 || sps.height == 0 {
        return Some(false);
    }
    let colour = match sps.colour {
        Some((pri, trc, spc)) => match (primaries(pri), transfer(trc), matrix(spc)) {
            (Some(pri), Some(trc), Some(spc)) => Some((pri, trc, spc)),
            _ => return Some(false),
        },
        None => None,
    };
    p.format = format as i32;
    p.width = sps.width as i32;
    p.height = sps.height as i32;
    p.bits_per_raw_sample = sps.bit_depth_luma as i32;
    p.profile = sps.profile;
    p.level = sps.level;
    p.video_delay = reorder as i32;
    p.field_order = ffi::AVFieldOrder::AV_FIELD_PROGRESSIVE;
    if let Some((num, den)) = sps.sample_aspect_ratio {
        p.sample_aspect_ratio = ffi::AVRational {
            num: num as i32,
            den: den as i32,
        };
    }
    // Where the SPS is silent the decoder leaves what the container said.
    if let Some(f) = sps.full_range {
        p.color_range = if f {
            ffi::AVColorRange::AVCOL_RANGE_JPEG
        } else {
            ffi::AVColorRange::AVCOL_RANGE_MPEG
        };
    }
    if let Some((pri, trc, spc)) = colour {
        p.color_primaries = pri;
        p.color_trc = trc;
        p.color_space = spc;
    }
    p.chroma_location = match sps.chroma_location {
        None | Some(0) => ffi::AVChromaLocation::AVCHROMA_LOC_LEFT,
        Some(1) => ffi::AVChromaLocation::AVCHROMA_LOC_CENTER,
        Some(2) => ffi::AVChromaLocation::AVCHROMA_LOC_TOPLEFT,
        Some(3) => ffi::AVChromaLocation::AVCHROMA_LOC_TOP,
        Some(4) => ffi::AVChromaLocation::AVCHROMA_LOC_BOTTOMLEFT,
        Some(_) => ffi::AVChromaLocation::AVCHROMA_LOC_BOTTOM,
    };
    Some(true)
}

/// `colour_primaries` of the VUI as FFmpeg's enum (`None` for reserved or unknown codes).
fn primaries(code: u8) -> Option<ffi::AVColorPrimaries> {
    use ffi::AVColorPrimaries as P;
    Some(match code {
        1 => P::AVCOL_PRI_BT709,
        2 => P::AVCOL_PRI_UNSPECIFIED,
        4 => P::AVCOL_PRI_BT470M,
        5 => P::AVCOL_PRI_BT470BG,
        6 => P::AVCOL_PRI_SMPTE170M,
        7 => P::AVCOL_PRI_SMPTE240M,
        8 => P::AVCOL_PRI_FILM,
        9 => P::AVCOL_PRI_BT2020,
        10 => P::AVCOL_PRI_SMPTE428,
        11 => P::AVCOL_PRI_SMPTE431,
        12 => P::AVCOL_PRI_SMPTE432,
        22 => P::AVCOL_PRI_EBU3213,
        _ => return None,
    })
}

/// `transfer_characteristics` of the VUI as FFmpeg's enum (`None` for reserved or unknown codes).
fn transfer(code: u8) -> Option<ffi::AVColorTransferCharacteristic> {
    use ffi::AVColorTransferCharacteristic as T;
    Some(match code {
        1 => T::AVCOL_TRC_BT709,
        2 => T::AVCOL_TRC_UNSPECIFIED,
        4 => T::AVCOL_TRC_GAMMA22,
        5 => T::AVCOL_TRC_GAMMA28,
        6 => T::AVCOL_TRC_SMPTE170M,
        7 => T::AVCOL_TRC_SMPTE240M,
        8 => T::AVCOL_TRC_LINEAR,
        9 => T::AVCOL_TRC_LOG,
        10 => T::AVCOL_TRC_LOG_SQRT,
        11 => T::AVCOL_TRC_IEC61966_2_4,
        12 => T::AVCOL_TRC_BT1361_ECG,
        13 => T::AVCOL_TRC_IEC61966_2_1,
        14 => T::AVCOL_TRC_BT2020_10,
        15 => T::AVCOL_TRC_BT2020_12,
        16 => T::AVCOL_TRC_SMPTE2084,
        17 => T::AVCOL_TRC_SMPTE428,
        18 => T::AVCOL_TRC_ARIB_STD_B67,
        _ => return None,
    })
}

/// `matrix_coefficients` of the VUI as FFmpeg's enum; `None` for reserved codes and for RGB and YCgCo, which
/// change the decoder's pixel format (those streams get the full probe).
fn matrix(code: u8) -> Option<ffi::AVColorSpace> {
    use ffi::AVColorSpace as S;
    Some(match code {
        1 => S::AVCOL_SPC_BT709,
        2 => S::AVCOL_SPC_UNSPECIFIED,
        4 => S::AVCOL_SPC_FCC,
        5 => S::AVCOL_SPC_BT470BG,
        6 => S::AVCOL_SPC_SMPTE170M,
        7 => S::AVCOL_SPC_SMPTE240M,
        9 => S::AVCOL_SPC_BT2020_NCL,
        10 => S::AVCOL_SPC_BT2020_CL,
        11 => S::AVCOL_SPC_SMPTE2085,
        12 => S::AVCOL_SPC_CHROMA_DERIVED_NCL,
        13 => S::AVCOL_SPC_CHROMA_DERIVED_CL,
        14 => S::AVCOL_SPC_ICTCP,
        _ => return None,
    })
}

/// Whether FFmpeg recognises `head` (the first bytes of a file) as any container format, by content alone (a
/// text file named `.mp4` is not a video).
pub(crate) fn probe_is_known_format(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    // AVProbeData needs AVPROBE_PADDING_SIZE (32) zero bytes after the data.
    let mut buf = head.to_vec();
    buf.extend_from_slice(&[0u8; 64]);
    let name = CString::default();
    let pd = ffi::AVProbeData {
        filename: name.as_ptr(),
        buf: buf.as_mut_ptr(),
        buf_size: head.len() as i32,
        mime_type: ptr::null(),
    };
    // SAFETY: `pd` points at live, padded buffers for the duration of the call; the result is a static format
    // descriptor (or null) that we only test for null.
    let fmt = unsafe { ffi::av_probe_input_format(&pd, 1) };
    !fmt.is_null()
}

/// Seeks the input to the last keyframe at or before `ts` (in the stream's time base) on `stream_index`.
pub(crate) fn seek_stream_backward(
    input: &mut ff::format::context::Input,
    stream_index: usize,
    ts: i64,
) -> Result<()> {
    // SAFETY: the Input owns a valid AVFormatContext for its lifetime; av_seek_frame takes it mutably.
    let rc = unsafe {
        ffi::av_seek_frame(
            input.as_mut_ptr(),
            stream_index as i32,
            ts,
            ffi::AVSEEK_FLAG_BACKWARD,
        )
    };
    if rc < 0 {
        return Err(av_err("av_seek_frame", rc));
    }
    Ok(())
}

/// Bytes per row of each plane of a `width` x `height` frame of `format`, packed with no padding: the layout
/// `ffmpeg -f rawvideo` writes. Returns `(row_bytes, rows)` per plane.
pub(crate) fn packed_plane_layout(
    format: ff::format::Pixel,
    width: u32,
    height: u32,
) -> Result<Vec<(usize, usize)>> {
    let fmt: ffi::AVPixelFormat = format.into();
    let mut linesizes = [0i32; 4];
    // SAFETY: `linesizes` has the four entries av_image_fill_linesizes writes.
    let rc = unsafe { ffi::av_image_fill_linesizes(linesizes.as_mut_ptr(), fmt, width as i32) };
    if rc < 0 {
        return Err(Error::Unsupported(format!("pixel format {format:?}")));
    }
    // SAFETY: av_pix_fmt_desc_get returns a pointer to a static descriptor, or null for an unknown format.
    let desc = unsafe { ffi::av_pix_fmt_desc_get(fmt) };
    if desc.is_null() {
        return Err(Error::Unsupported(format!("pixel format {format:?}")));
    }
    // SAFETY: checked non-null above; the descriptor is static.
    let log2_ch = unsafe { (*desc).log2_chroma_h } as u32;
    let mut out = Vec::new();
    for (p, &ls) in linesizes.iter().enumerate() {
        if ls <= 0 {
            break;
        }
        let rows = if p == 1 || p == 2 {
            (height + (1 << log2_ch) - 1) >> log2_ch
        } else {
            height
        };
        out.push((ls as usize, rows as usize));
    }
    Ok(out)
}

/// An `*_mp4toannexb` bitstream filter: turns length-prefixed H.264/HEVC packets into Annex-B start-code form
/// and puts the parameter sets in front of keyframes.
pub(crate) struct AnnexBFilter {
    ctx: *mut ffi::AVBSFContext,
}

// SAFETY: the filter context is owned exclusively by this value and only used through &mut self.
unsafe impl Send for AnnexBFilter {}

impl AnnexBFilter {
    /// Creates the filter for `stream` (H.264 or HEVC); `None` for other codecs.
    pub(crate) fn new(stream: &ff::format::stream::Stream<'_>) -> Result<Option<Self>> {
        let name = match stream.parameters().id() {
            ff::codec::Id::H264 => "h264_mp4toannexb",
            ff::codec::Id::HEVC => "hevc_mp4toannexb",
            _ => return Ok(None),
        };
        let cname = CString::new(name).expect("static name");
        // SAFETY: looks up a static filter descriptor by a NUL-terminated name.
        let filter = unsafe { ffi::av_bsf_get_by_name(cname.as_ptr()) };
        if filter.is_null() {
            return Err(Error::Unsupported(format!(
                "FFmpeg was built without the {name} filter"
            )));
        }
        let mut ctx = ptr::null_mut();
        // SAFETY: av_bsf_alloc writes a new context into `ctx` or leaves it null on failure.
        let rc = unsafe { ffi::av_bsf_alloc(filter, &mut ctx) };
        if rc < 0 {
            return Err(av_err("av_bsf_alloc", rc));
        }
        let this = AnnexBFilter { ctx };
        let tb = stream.time_base();
        // SAFETY: `ctx` is a freshly allocated context; par_in is allocated by av_bsf_alloc; the stream's
        // parameters are valid while the input lives and are copied, not borrowed.
        let rc = unsafe {
            let rc = ffi::avcodec_parameters_copy((*ctx).par_in, stream.parameters().as_ptr());
            if rc >= 0 {
                (*ctx).time_base_in = ffi::AVRational {
                    num: tb.numerator(),
                    den: tb.denominator(),
                };
                ffi::av_bsf_init(ctx)
            } else {
                rc
            }
        };
        if rc < 0 {
            return Err(av_err("av_bsf_init", rc));
        }
        Ok(Some(this))
    }

    /// Parameter sets in Annex-B form (the filter's output extradata).
    pub(crate) fn extradata(&self) -> Vec<u8> {
        // SAFETY: par_out is owned by the initialised context; extradata is valid for extradata_size bytes.
        unsafe {
            let par = (*self.ctx).par_out;
            if par.is_null() || (*par).extradata.is_null() || (*par).extradata_size <= 0 {
                return Vec::new();
            }
            std::slice::from_raw_parts((*par).extradata, (*par).extradata_size as usize).to_vec()
        }
    }

    /// Filters one packet; the Annex-B outputs are appended to `out` (usually exactly one).
    pub(crate) fn filter(&mut self, packet: &ff::Packet, out: &mut Vec<ff::Packet>) -> Result<()> {
        let mut input = packet.clone();
        // SAFETY: av_bsf_send_packet takes the reference held by `input` (leaving it blank, which ff::Packet's
        // Drop handles); the context is valid.
        let rc = unsafe { ffi::av_bsf_send_packet(self.ctx, input.as_mut_ptr()) };
        if rc < 0 {
            return Err(av_err("av_bsf_send_packet", rc));
        }
        loop {
            let mut p = ff::Packet::empty();
            // SAFETY: `p` is an allocated empty packet that av_bsf_receive_packet fills with a new reference.
            let rc = unsafe { ffi::av_bsf_receive_packet(self.ctx, p.as_mut_ptr()) };
            if rc == EAGAIN || rc == ffi::AVERROR_EOF {
                return Ok(());
            }
            if rc < 0 {
                return Err(av_err("av_bsf_receive_packet", rc));
            }
            out.push(p);
        }
    }

    /// Drops any state after a seek.
    pub(crate) fn flush(&mut self) {
        // SAFETY: the context is valid and initialised.
        unsafe { ffi::av_bsf_flush(self.ctx) }
    }
}

impl Drop for AnnexBFilter {
    fn drop(&mut self) {
        // SAFETY: frees the context we allocated; av_bsf_free nulls the pointer.
        unsafe { ffi::av_bsf_free(&mut self.ctx) }
    }
}
