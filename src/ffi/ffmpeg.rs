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
#[derive(Clone, Debug, Default)]
pub(crate) struct CodecParExtras {
    pub bits_per_raw_sample: i32,
    pub profile: i32,
    pub bit_rate: i64,
    /// Frames of reordering delay (B-frames), as `avformat_find_stream_info` found it.
    pub video_delay: i32,
    pub extradata: Vec<u8>,
}

/// Reads the codec parameters of `stream` that have no safe accessor.
pub(crate) fn codecpar_extras(stream: &ff::format::stream::Stream<'_>) -> CodecParExtras {
    let par = stream.parameters();
    // SAFETY: `par` borrows the stream's AVCodecParameters, valid while the input lives; we only read plain
    // fields and copy the extradata bytes (whose length FFmpeg keeps in extradata_size).
    unsafe {
        let p = par.as_ptr();
        let extradata = if (*p).extradata.is_null() || (*p).extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*p).extradata, (*p).extradata_size as usize).to_vec()
        };
        CodecParExtras {
            bits_per_raw_sample: (*p).bits_per_raw_sample,
            profile: (*p).profile,
            bit_rate: (*p).bit_rate,
            video_delay: (*p).video_delay,
            extradata,
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
