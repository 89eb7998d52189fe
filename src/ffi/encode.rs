//! FFmpeg calls for encoding and muxing that ffmpeg-next 9 does not wrap: opening an encoder while keeping the
//! options it did not use, attaching SEI side data to a frame, forcing a picture type, the stream's display
//! matrix, swscale's colour matrix, and a `Send` wrapper for the scaler.

use std::ptr;

use ff::ffi;
use ffmpeg_next as ff;

use crate::error::{Error, Result};

/// Opens `ctx` with `codec` and `options` (`avcodec_open2`) and returns the opened encoder together with the
/// keys of the options nobody consumed (ffmpeg-next's `open_with` drops them, so a misspelt or unsupported
/// option would pass silently).
pub(crate) fn open_encoder(
    mut ctx: ff::codec::encoder::video::Video,
    codec: ff::Codec,
    options: ff::Dictionary,
) -> Result<(ff::encoder::video::Encoder, Vec<String>)> {
    // SAFETY: disown hands the AVDictionary's ownership to us; it is owned again (and freed) below.
    let mut opts = unsafe { options.disown() };
    // SAFETY: `ctx` owns a valid, unopened AVCodecContext; `codec` is a static AVCodec; `opts` is an owned
    // AVDictionary (or null) that avcodec_open2 may replace with the unused entries, which we own again below.
    let rc = unsafe { ffi::avcodec_open2(ctx.as_mut_ptr(), codec.as_ptr(), &mut opts) };
    // SAFETY: `opts` is null or a dictionary that we own now; Dictionary::own frees it when dropped.
    let left = unsafe { ff::Dictionary::own(opts) };
    let unused: Vec<String> = left.iter().map(|(k, _)| k.to_string()).collect();
    if rc < 0 {
        return Err(Error::ffmpeg("avcodec_open2", ff::Error::from(rc)));
    }
    Ok((ff::codec::encoder::video::Encoder(ctx), unused))
}

/// Attaches a user-data-unregistered SEI payload (16-byte UUID + data) to `frame` as
/// `AV_FRAME_DATA_SEI_UNREGISTERED`, which libx264, libx265 and NVENC write with `udu_sei` on.
pub(crate) fn add_sei_unregistered(
    frame: &mut ff::frame::Video,
    uuid_and_payload: &[u8],
) -> Result<()> {
    // SAFETY: the frame is a valid AVFrame owned by `frame`; av_frame_new_side_data allocates `len` bytes of
    // side data owned by the frame (or returns null), which we fill completely before returning.
    unsafe {
        let sd = ffi::av_frame_new_side_data(
            frame.as_mut_ptr(),
            ffi::AVFrameSideDataType::AV_FRAME_DATA_SEI_UNREGISTERED,
            uuid_and_payload.len() as _,
        );
        if sd.is_null() || (*sd).data.is_null() {
            return Err(Error::ffmpeg(
                "av_frame_new_side_data",
                ff::Error::from(-12),
            ));
        }
        ptr::copy_nonoverlapping(
            uuid_and_payload.as_ptr(),
            (*sd).data,
            uuid_and_payload.len(),
        );
    }
    Ok(())
}

/// The user-data-unregistered SEI payloads (UUID + data) attached to a decoded `frame`, in order.
pub(crate) fn sei_unregistered(frame: &ff::frame::Video) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // SAFETY: the frame is valid; `side_data` holds `nb_side_data` pointers to entries owned by the frame, each
    // with `size` bytes at `data`; we only copy those bytes.
    unsafe {
        let f = frame.as_ptr();
        for i in 0..(*f).nb_side_data.max(0) as usize {
            let sd = *(*f).side_data.add(i);
            if sd.is_null()
                || (*sd).type_ != ffi::AVFrameSideDataType::AV_FRAME_DATA_SEI_UNREGISTERED
                || (*sd).data.is_null()
            {
                continue;
            }
            out.push(std::slice::from_raw_parts((*sd).data, (*sd).size).to_vec());
        }
    }
    out
}

/// Sets the picture type the encoder should use for `frame`: `Some(true)` an intra (IDR) picture, `None` the
/// encoder's choice.
pub(crate) fn set_forced_intra(frame: &mut ff::frame::Video, intra: bool) {
    // SAFETY: plain field write on the frame owned by `frame`.
    unsafe {
        (*frame.as_mut_ptr()).pict_type = if intra {
            ffi::AVPictureType::AV_PICTURE_TYPE_I
        } else {
            ffi::AVPictureType::AV_PICTURE_TYPE_NONE
        };
    }
}

/// The encoder's extradata (parameter sets in Annex-B form for libx264 / libx265 with a global header).
pub(crate) fn encoder_extradata(enc: &ff::encoder::video::Encoder) -> Vec<u8> {
    // SAFETY: reads the opened codec context's extradata, whose length FFmpeg keeps in extradata_size.
    unsafe {
        let c = enc.as_ptr();
        if (*c).extradata.is_null() || (*c).extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*c).extradata, (*c).extradata_size as usize).to_vec()
        }
    }
}

/// Copies the display matrix (rotation) of `input` onto the output stream `index` of `output`.
pub(crate) fn copy_display_matrix(
    input: &ff::format::stream::Stream<'_>,
    output: &mut ff::format::context::Output,
    index: usize,
) -> Result<()> {
    let Some(matrix) = input
        .side_data()
        .find(|sd| sd.kind() == ff::codec::packet::side_data::Type::DisplayMatrix)
        .map(|sd| sd.data().to_vec())
    else {
        return Ok(());
    };
    let Some(stream) = output.stream_mut(index) else {
        return Ok(());
    };
    // SAFETY: the output context owns the stream; av_stream_new_side_data allocates `len` bytes owned by the
    // stream (or returns null), which we fill completely.
    unsafe {
        let st = stream.as_ptr() as *mut ffi::AVStream;
        let dst = ffi::av_stream_new_side_data(
            st,
            ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX,
            matrix.len() as _,
        );
        if dst.is_null() {
            return Err(Error::ffmpeg(
                "av_stream_new_side_data",
                ff::Error::from(-12),
            ));
        }
        ptr::copy_nonoverlapping(matrix.as_ptr(), dst, matrix.len());
    }
    Ok(())
}

/// The FFmpeg `SWS_CS_*` constant of a YUV colour space (BT.601 for anything but BT.709 and BT.2020).
#[allow(clippy::unnecessary_cast)] // bindgen types these constants differently across versions
fn sws_colorspace(space: ff::color::Space) -> i32 {
    match space {
        ff::color::Space::BT709 => ffi::SWS_CS_ITU709 as i32,
        ff::color::Space::BT2020NCL | ff::color::Space::BT2020CL => ffi::SWS_CS_BT2020 as i32,
        _ => ffi::SWS_CS_ITU601 as i32,
    }
}

/// A swscale context, owned by one encoder and used through `&mut` only.
pub(crate) struct Scaler(ff::software::scaling::Context);

// SAFETY: an SwsContext has no thread affinity; the wrapper hands it out only through &mut self, so it is used by
// one thread at a time.
unsafe impl Send for Scaler {}

impl Scaler {
    /// A same-size converter from `src` to `dst` that writes YUV with `matrix` and `full_range` (RGB sources)
    /// and reads YUV sources with the same matrix.
    pub(crate) fn new(
        src: ff::format::Pixel,
        dst: ff::format::Pixel,
        width: u32,
        height: u32,
        matrix: ff::color::Space,
        full_range: bool,
    ) -> Result<Self> {
        let flags = ff::software::scaling::Flags::BILINEAR
            | ff::software::scaling::Flags::ACCURATE_RND
            | ff::software::scaling::Flags::FULL_CHR_H_INT;
        let mut ctx =
            ff::software::scaling::Context::get(src, width, height, dst, width, height, flags)
                .map_err(|e| Error::ffmpeg("sws_getContext", e))?;
        let cs = sws_colorspace(matrix);
        // SAFETY: the context is valid; sws_getCoefficients returns a pointer to a static table;
        // sws_setColorspaceDetails only reads the tables and updates the context.
        let rc = unsafe {
            let table = ffi::sws_getCoefficients(cs);
            let src_full = i32::from(matches!(
                src,
                ff::format::Pixel::RGB24
                    | ff::format::Pixel::BGRA
                    | ff::format::Pixel::RGBA
                    | ff::format::Pixel::GBRP
            ));
            ffi::sws_setColorspaceDetails(
                ctx.as_mut_ptr(),
                table,
                src_full,
                table,
                i32::from(full_range),
                0,
                1 << 16,
                1 << 16,
            )
        };
        if rc < 0 {
            return Err(Error::Unsupported(format!(
                "colour conversion {src:?} -> {dst:?}"
            )));
        }
        Ok(Scaler(ctx))
    }

    /// Converts `input` into `output`.
    pub(crate) fn run(
        &mut self,
        input: &ff::frame::Video,
        output: &mut ff::frame::Video,
    ) -> Result<()> {
        self.0
            .run(input, output)
            .map_err(|e| Error::ffmpeg("sws_scale", e))
    }
}

/// Sets the VBV buffer size of an opened encoder (libx264 compares it with x264's before every picture and
/// reconfigures x264 when it changed).
pub(crate) fn set_rc_buffer_size(enc: &mut ff::encoder::video::Encoder, bits: usize) {
    // SAFETY: plain field write on the codec context owned by `enc`, between calls into the encoder.
    unsafe {
        (*enc.as_mut_ptr()).rc_buffer_size = i32::try_from(bits).unwrap_or(i32::MAX);
    }
}

/// Whether the container FFmpeg picks for `path` (by its extension) stores codec headers out of band
/// (`AVFMT_GLOBALHEADER`); `None` when no container matches the name.
pub(crate) fn output_needs_global_header(path: &std::path::Path) -> Option<bool> {
    let name = std::ffi::CString::new(path.to_string_lossy().as_bytes()).ok()?;
    // SAFETY: av_guess_format reads the NUL-terminated file name and returns a pointer to a static muxer
    // description, or null.
    unsafe {
        let fmt = ffi::av_guess_format(ptr::null(), name.as_ptr(), ptr::null());
        if fmt.is_null() {
            None
        } else {
            #[allow(clippy::unnecessary_cast)] // bindgen types the flag differently across versions
            let global = (*fmt).flags & ffi::AVFMT_GLOBALHEADER as i32 != 0;
            Some(global)
        }
    }
}

/// Resets the codec tag of output stream `index` so the muxer picks one that fits its container (a tag copied
/// from another container may not).
pub(crate) fn clear_codec_tag(output: &mut ff::format::context::Output, index: usize) {
    if let Some(stream) = output.stream_mut(index) {
        // SAFETY: plain field write on the codec parameters of a stream the output context owns, before the header
        // is written.
        unsafe {
            let st = stream.as_ptr() as *mut ffi::AVStream;
            (*(*st).codecpar).codec_tag = 0;
        }
    }
}

/// Frees the tensor that an [`frame_over_tensor`] buffer keeps alive.
unsafe extern "C" fn release_tensor(opaque: *mut std::ffi::c_void, _data: *mut u8) {
    // SAFETY: `opaque` is the Box<tch::Tensor> that frame_over_tensor leaked for this buffer; FFmpeg calls this
    // once, when the last reference to the buffer goes.
    drop(unsafe { Box::from_raw(opaque as *mut tch::Tensor) });
}

/// A frame of `format` whose planes are the bytes of `tensor` (a contiguous CPU tensor, packed planes as
/// `rows` says: `(row_bytes, rows)` per plane), without a copy: the frame's buffer holds a reference to the
/// tensor, released when FFmpeg lets go of the frame. The buffer is read-only for FFmpeg.
pub(crate) fn frame_over_tensor(
    tensor: &tch::Tensor,
    format: ff::format::Pixel,
    width: u32,
    height: u32,
    rows: &[(usize, usize)],
) -> Result<ff::frame::Video> {
    let bytes = crate::ffi::tensor::host_bytes(tensor)?;
    let need: usize = rows.iter().map(|(r, n)| r * n).sum();
    if bytes.len() != need || rows.len() > 4 {
        return Err(Error::InvalidArgument(format!(
            "frame of {} bytes: {format:?} {width}x{height} has {need}",
            bytes.len()
        )));
    }
    let ptr = bytes.as_ptr() as *mut u8;
    let keep = Box::into_raw(Box::new(tensor.shallow_clone()));
    // SAFETY: `ptr` points at `need` bytes owned by the tensor that `keep` holds a reference to; the buffer
    // returned by av_buffer_create owns `keep` and calls release_tensor exactly once (also on failure below we
    // free `keep` ourselves since no buffer took it). The flag makes the buffer read-only for FFmpeg.
    let buf = unsafe {
        ffi::av_buffer_create(
            ptr,
            need as _,
            Some(release_tensor),
            keep as *mut std::ffi::c_void,
            ffi::AV_BUFFER_FLAG_READONLY as _,
        )
    };
    if buf.is_null() {
        // SAFETY: no buffer took ownership of `keep`.
        drop(unsafe { Box::from_raw(keep) });
        return Err(Error::ffmpeg("av_buffer_create", ff::Error::from(-12)));
    }
    let mut frame = ff::frame::Video::empty();
    // SAFETY: the frame is a fresh, empty AVFrame owned by `frame`; it takes ownership of `buf` (freed by
    // av_frame_unref when the frame drops) and its plane pointers point into that buffer, `rows` apart.
    unsafe {
        let f = frame.as_mut_ptr();
        (*f).format = ffi::AVPixelFormat::from(format) as i32;
        (*f).width = width as i32;
        (*f).height = height as i32;
        (*f).buf[0] = buf;
        let mut off = 0usize;
        for (p, &(row, n)) in rows.iter().enumerate() {
            (*f).data[p] = ptr.add(off);
            (*f).linesize[p] = row as i32;
            off += row * n;
        }
    }
    Ok(frame)
}
