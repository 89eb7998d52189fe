//! `Encoder`: frames (tch tensors on the CPU or a CUDA device, in the layouts of [`InputFormat`]) in, compressed
//! packets out, through one FFmpeg encoder chosen by [`EncoderBackend`]: NVENC where a session opens, the
//! codec's software encoder otherwise. Per-picture flags (IDR, parameter sets, end of stream), SEI insertion and
//! mid-stream reconfiguration follow PyNvVideoCodec's encoder.

use std::collections::HashMap;
use std::sync::Mutex;

use ff::format::Pixel;
use ffmpeg_next as ff;
use tch::{Device, Kind, Tensor};

use super::backend::{self, EncoderSetup, Family};
use super::input::{high_bits_to_10, ColorTags, Conversion, InputLayout};
use super::options::{
    Codec, EncoderBackend, EncoderOptions, InputFormat, PicFlags, ReconfigureParams,
};
use super::sei::Sei;
use crate::bitstream::nal::{annexb_parameter_sets, NalCodec};
use crate::ffi::encode as ffe;
use crate::{ColorMatrix, ColorRange, Error, Result};

/// One compressed packet: an access unit of Annex-B H.264 / HEVC or AV1 OBUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedPacket {
    /// The compressed bytes.
    pub data: Vec<u8>,
    /// Presentation time stamp in frames (the encoder's time base is 1 / fps).
    pub pts: i64,
    /// Decode time stamp in the same time base (below `pts` for pictures that B-frames reorder).
    pub dts: i64,
    /// Whether the packet is a random-access point (IDR / key frame).
    pub keyframe: bool,
}

/// What [`Encoder::reconfigure`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reconfigured {
    /// The running encoder took the new settings; no new IDR picture (libx264's rate control, NVENC).
    InPlace,
    /// The encoder was drained and reopened with the new settings; the next picture is an IDR picture. The
    /// drained packets are returned by the next [`Encoder::encode`] call.
    Restarted,
}

/// Per (GPU, codec): whether NVENC opened, and if not why.
type NvencProbes = HashMap<(usize, Codec), std::result::Result<(), String>>;

/// What NVENC did in this process: asked once per GPU and codec, since a failed open costs a driver load attempt.
static NVENC_PROBES: Mutex<Option<NvencProbes>> = Mutex::new(None);

/// A video encoder. Not `Sync`; one per thread.
pub struct Encoder {
    enc: ff::encoder::video::Encoder,
    setup: EncoderSetup,
    opts: EncoderOptions,
    width: u32,
    height: u32,
    layout: InputLayout,
    /// `(row bytes, rows)` of each plane of the input bytes, packed as `ffmpeg -f rawvideo` writes them.
    rows: Vec<(usize, usize)>,
    global_header: bool,
    conversion: Conversion,
    /// The input bytes as a frame, when they need converting.
    src_frame: ff::frame::Video,
    /// The picture the encoder gets.
    enc_frame: ff::frame::Video,
    next_pts: i64,
    /// Pictures (by pts) whose packet must start with the parameter sets.
    want_headers: Vec<i64>,
    /// The latest parameter sets seen (Annex-B, with start codes).
    headers: Vec<u8>,
    /// Packets drained by a restart, handed out with the next call.
    pending: Vec<EncodedPacket>,
    force_next_idr: bool,
    /// Pictures the running encoder has been given (since it was opened).
    sent: u64,
    tags: Option<ColorTags>,
    note: String,
    ended: bool,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("encoder", &self.setup.name)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("layout", &self.layout)
            .finish()
    }
}

impl Encoder {
    /// An encoder of `width` x `height` frames laid out as `format`, writing a raw elementary stream (Annex-B
    /// H.264 / HEVC with the parameter sets in band, AV1 OBUs), as PyNvVideoCodec's encoder does. For a file in
    /// a container, use [`crate::VideoWriter`].
    ///
    /// Errors: [`Error::InvalidArgument`] for contradictory settings or an odd size of a 4:2:0 format;
    /// [`Error::Unsupported`] for a setting the backend cannot honour (named) or a codec this FFmpeg lacks;
    /// [`Error::GpuUnavailable`] for [`EncoderBackend::Nvenc`] where no NVENC session opens.
    pub fn new(width: u32, height: u32, format: InputFormat, opts: EncoderOptions) -> Result<Self> {
        Self::open(
            width,
            height,
            InputLayout::Format(format),
            opts,
            false,
            None,
        )
    }

    /// As [`Encoder::new`], with a global header (parameter sets in the extradata, for MP4 / Matroska) when
    /// `global_header`.
    pub(crate) fn open(
        width: u32,
        height: u32,
        layout: InputLayout,
        opts: EncoderOptions,
        global_header: bool,
        tags: Option<ColorTags>,
    ) -> Result<Self> {
        crate::init_ffmpeg();
        opts.validate()?;
        if width == 0 || height == 0 || width > 16384 || height > 16384 {
            return Err(Error::InvalidArgument(format!(
                "frame size {width}x{height}"
            )));
        }
        let (high, c444, _) = layout.traits();
        if !c444 && (width % 2 == 1 || height % 2 == 1) {
            return Err(Error::InvalidArgument(format!(
                "4:2:0 encoding needs an even frame size, not {width}x{height}"
            )));
        }
        if let Some((mw, mh)) = opts.max_res {
            if width > mw || height > mh {
                return Err(Error::InvalidArgument(format!(
                    "frame size {width}x{height} is above max_res {mw}x{mh}"
                )));
            }
        }
        let nv12 = matches!(layout, InputLayout::Format(InputFormat::Nv12))
            || matches!(layout, InputLayout::Raw(Pixel::NV12));
        let (enc, setup, note) =
            match opts.backend {
                EncoderBackend::Software => {
                    let setup = backend::software(&opts, high, c444, nv12)?;
                    let enc = open_setup(&setup, &opts, width, height, global_header, tags)
                        .map_err(|e| refused(&setup, e))?;
                    let note = format!("{} (software, as asked)", setup.name);
                    (enc, setup, note)
                }
                EncoderBackend::Nvenc(gpu) => {
                    let setup = backend::nvenc_setup(&opts, gpu, high, c444)?;
                    let enc = open_setup(&setup, &opts, width, height, global_header, tags)
                        .map_err(|e| match e {
                            Error::Ffmpeg { source: reason, .. } => Error::GpuUnavailable(format!(
                                "NVENC on GPU {gpu}: {} did not open ({reason})",
                                setup.name
                            )),
                            other => other,
                        })?;
                    let note = format!("{} on GPU {gpu} (NVENC, as asked)", setup.name);
                    (enc, setup, note)
                }
                EncoderBackend::Auto => auto(
                    &opts,
                    width,
                    height,
                    (high, c444, nv12),
                    global_header,
                    tags,
                )?,
            };
        let src_pix = layout.pixel();
        let rows = crate::ffi::ffmpeg::packed_plane_layout(src_pix, width, height)?;
        let conversion = if src_pix == setup.pixel {
            Conversion::Copy
        } else if matches!(src_pix, Pixel::P010LE | Pixel::YUV444P16LE)
            && matches!(setup.pixel, Pixel::YUV420P10LE | Pixel::YUV444P10LE)
        {
            Conversion::HighBitsTo10
        } else {
            let matrix = match opts.colorspace.unwrap_or(ColorMatrix::Bt601) {
                ColorMatrix::Bt601 => ff::color::Space::BT470BG,
                ColorMatrix::Bt709 => ff::color::Space::BT709,
                ColorMatrix::Bt2020 => ff::color::Space::BT2020NCL,
            };
            let full = opts.color_range == Some(ColorRange::Full);
            Conversion::Scale(ffe::Scaler::new(
                src_pix,
                setup.pixel,
                width,
                height,
                matrix,
                full,
            )?)
        };
        Ok(Encoder {
            enc,
            src_frame: ff::frame::Video::new(src_pix, width, height),
            enc_frame: ff::frame::Video::new(setup.pixel, width, height),
            setup,
            opts,
            width,
            height,
            layout,
            rows,
            global_header,
            conversion,
            next_pts: 0,
            want_headers: Vec::new(),
            headers: Vec::new(),
            pending: Vec::new(),
            force_next_idr: false,
            sent: 0,
            tags,
            note,
            ended: false,
        })
    }

    /// The FFmpeg encoder that runs (`libx264`, `h264_nvenc` ...).
    pub fn encoder_name(&self) -> &'static str {
        self.setup.name
    }

    /// Which backend runs and why (for [`EncoderBackend::Auto`]: why NVENC was not taken).
    pub fn backend_note(&self) -> &str {
        &self.note
    }

    /// Whether NVENC runs.
    pub fn is_nvenc(&self) -> bool {
        self.setup.family == Family::Nvenc
    }

    /// The settings in force (after reconfigurations).
    pub fn options(&self) -> &EncoderOptions {
        &self.opts
    }

    /// Frame width.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Frame height.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The parameter sets (Annex-B SPS / PPS, and VPS for HEVC) of the stream: the global header in a
    /// container, else those of the latest IDR picture (empty before the first packet).
    pub fn parameter_sets(&self) -> Vec<u8> {
        let extradata = ffe::encoder_extradata(&self.enc);
        if extradata.is_empty() {
            self.headers.clone()
        } else {
            extradata
        }
    }

    /// The time base of packet time stamps: 1 / fps.
    pub fn time_base(&self) -> (i32, i32) {
        (self.opts.fps.1 as i32, self.opts.fps.0 as i32)
    }

    pub(crate) fn codec_parameters(&self) -> ff::codec::Parameters {
        ff::codec::Parameters::from(&*self.enc)
    }

    /// Encodes one frame: a tensor on the CPU or a CUDA device in this encoder's [`InputFormat`] (CUDA frames are
    /// copied to host memory once for software encoders), with per-picture `flags` and SEI messages (H.264 /
    /// HEVC; an error for AV1). Returns the packets that are ready, in decode order; with `flags.eos` the encoder
    /// is flushed and every remaining packet is returned.
    ///
    /// Errors: [`Error::InvalidArgument`] for a tensor whose size, shape or dtype does not fit the format, or
    /// after the end of the stream; [`Error::Unsupported`] for SEI on AV1.
    pub fn encode(
        &mut self,
        frame: &Tensor,
        flags: PicFlags,
        sei: &[Sei],
    ) -> Result<Vec<EncodedPacket>> {
        let host = self.host_frame(frame)?;
        self.encode_host(&host, flags, sei)
    }

    /// Encodes one frame held in a contiguous host tensor of packed planes of the input layout: the encoder reads
    /// the tensor itself when no conversion is needed, else its bytes are converted into the encoder's picture.
    pub(crate) fn encode_host(
        &mut self,
        host: &Tensor,
        flags: PicFlags,
        sei: &[Sei],
    ) -> Result<Vec<EncodedPacket>> {
        if matches!(self.conversion, Conversion::Copy) {
            // The encoder reads the tensor's own memory: no copy on our side.
            self.check_flags(flags, sei)?;
            let pix = self.layout.pixel();
            let mut picture =
                ffe::frame_over_tensor(host, pix, self.width, self.height, &self.rows)?;
            return self.submit(&mut picture, flags, sei);
        }
        let bytes = crate::ffi::tensor::host_bytes(host)?;
        self.encode_bytes(bytes, flags, sei)
    }

    /// Checks `frame` against the format and brings it to contiguous host memory.
    fn host_frame(&self, frame: &Tensor) -> Result<Tensor> {
        let InputLayout::Format(format) = self.layout else {
            return Err(Error::InvalidArgument(
                "this encoder takes raw planes, not a tensor".into(),
            ));
        };
        let (w, h) = (self.width as i64, self.height as i64);
        let shape = frame.size();
        let bad_shape = |want: &str| {
            Error::InvalidArgument(format!(
                "{format:?} frame of shape {shape:?}: expected {want}"
            ))
        };
        match format {
            InputFormat::Rgb if shape != [h, w, 3] => {
                return Err(bad_shape(&format!("[{h}, {w}, 3]")))
            }
            InputFormat::Rgbp if shape != [3, h, w] => {
                return Err(bad_shape(&format!("[3, {h}, {w}]")))
            }
            InputFormat::Argb | InputFormat::Abgr if shape != [h, w, 4] => {
                return Err(bad_shape(&format!("[{h}, {w}, 4]")))
            }
            _ => {}
        }
        let kind = frame.kind();
        let ok_kind = match kind {
            Kind::Uint8 => true,
            Kind::Int16 => format.high_bit_depth(),
            _ => false,
        };
        if !ok_kind {
            return Err(Error::InvalidArgument(format!(
                "{format:?} frame of dtype {kind:?}: expected uint8{}",
                if format.high_bit_depth() {
                    " or 16-bit"
                } else {
                    ""
                }
            )));
        }
        let bytes = frame.numel() * kind.elt_size_in_bytes();
        let want = format.frame_bytes(self.width, self.height);
        if bytes != want {
            return Err(Error::InvalidArgument(format!(
                "{format:?} frame of {bytes} bytes: a {}x{} frame has {want}",
                self.width, self.height
            )));
        }
        let host = if frame.device() == Device::Cpu {
            frame.contiguous()
        } else {
            frame.to_device(Device::Cpu).contiguous()
        };
        Ok(host)
    }

    /// Encodes one frame given as packed planes of the input layout.
    fn encode_bytes(
        &mut self,
        bytes: &[u8],
        flags: PicFlags,
        sei: &[Sei],
    ) -> Result<Vec<EncodedPacket>> {
        self.check_flags(flags, sei)?;
        self.fill_frame(bytes)?;
        let mut picture = std::mem::replace(&mut self.enc_frame, ff::frame::Video::empty());
        let out = self.submit(&mut picture, flags, sei);
        self.enc_frame = picture;
        out
    }

    /// Errors for a picture that cannot be encoded whatever its pixels.
    fn check_flags(&self, flags: PicFlags, sei: &[Sei]) -> Result<()> {
        if self.ended {
            return Err(Error::InvalidArgument(
                "encode after the end of the stream".into(),
            ));
        }
        if !sei.is_empty() && self.opts.codec == Codec::Av1 {
            return Err(Error::Unsupported(format!(
                "SEI messages with AV1 ({} takes no ITU-T T.35 metadata in this FFmpeg)",
                self.setup.name
            )));
        }
        if flags.output_spspps && self.opts.codec == Codec::Av1 {
            return Err(Error::Unsupported(
                "output_spspps with AV1 (the sequence header comes with every key frame)".into(),
            ));
        }
        Ok(())
    }

    /// Sends one picture with its time stamp, flags and SEI, and collects the packets that are ready.
    fn submit(
        &mut self,
        frame: &mut ff::frame::Video,
        flags: PicFlags,
        sei: &[Sei],
    ) -> Result<Vec<EncodedPacket>> {
        let pts = self.next_pts;
        self.next_pts += 1;
        frame.set_pts(Some(pts));
        frame.remove_side_data(ff::util::frame::side_data::Type::SEI_UNREGISTERED);
        for m in sei {
            ffe::add_sei_unregistered(frame, &m.to_bytes())?;
        }
        ffe::set_forced_intra(frame, flags.force_idr || self.force_next_idr);
        self.force_next_idr = false;
        if flags.output_spspps {
            self.want_headers.push(pts);
        }
        self.enc
            .send_frame(frame)
            .map_err(|e| Error::ffmpeg("avcodec_send_frame", e))?;
        self.sent += 1;
        let mut out = std::mem::take(&mut self.pending);
        self.receive(&mut out)?;
        if flags.eos {
            out.extend(self.end_encode()?);
        }
        Ok(out)
    }

    /// Flushes the encoder and returns every remaining packet. Later `encode` calls are errors.
    pub fn end_encode(&mut self) -> Result<Vec<EncodedPacket>> {
        let mut out = std::mem::take(&mut self.pending);
        if self.ended {
            return Ok(out);
        }
        self.ended = true;
        if self.sent == 0 && self.setup.family == Family::SvtAv1 {
            // SVT-AV1 never answers the end of a stream that had no picture (and hangs when closed without one):
            // give it a picture whose packets nobody sees.
            self.close_empty_svt_stream();
            return Ok(out);
        }
        self.enc
            .send_eof()
            .map_err(|e| Error::ffmpeg("avcodec_send_frame", e))?;
        self.receive(&mut out)?;
        Ok(out)
    }

    /// Ends an SVT-AV1 stream that had no picture: one blank picture, the end of stream, every packet dropped.
    fn close_empty_svt_stream(&mut self) {
        self.enc_frame.set_pts(Some(0));
        if self.enc.send_frame(&self.enc_frame).is_ok() {
            self.sent += 1;
        }
        if self.enc.send_eof().is_ok() {
            let mut packet = ff::Packet::empty();
            while self.enc.receive_packet(&mut packet).is_ok() {}
        }
    }

    /// Changes bit rate, peak bit rate, VBV size or frame rate during the session. libx264 takes the rate
    /// settings in place (no new IDR picture) from the next picture on; every other change, and every change on
    /// the other software encoders, drains the encoder and reopens it, so the next picture is an IDR picture
    /// ([`Reconfigured::Restarted`]). Time stamps continue.
    ///
    /// Errors: [`Error::InvalidArgument`] for settings that contradict the rate-control mode.
    pub fn reconfigure(&mut self, params: ReconfigureParams) -> Result<Reconfigured> {
        if self.ended {
            return Err(Error::InvalidArgument(
                "reconfigure after the end of the stream".into(),
            ));
        }
        let mut next = self.opts.clone();
        if let Some(b) = params.bitrate {
            next.bitrate = Some(b);
            if next.rc == super::options::RateControl::Cbr && params.maxbitrate.is_none() {
                next.maxbitrate = None;
            }
        }
        if let Some(m) = params.maxbitrate {
            next.maxbitrate = Some(m);
        }
        if let Some(v) = params.vbvbufsize {
            next.vbvbufsize = Some(v);
        }
        if let Some(f) = params.fps {
            next.fps = f;
        }
        next.validate()?;
        // x264 reconfigures its rate control in place only within the method it started with: an average bit
        // rate (not constant quality) and VBV only where it was on from the start.
        let rate_only = params.fps.is_none() || params.fps == Some(self.opts.fps);
        // Under CBR the NAL HRD is on, and x264 refuses to change VBV settings with it: restart there.
        let vbv_on = self.opts.maxbitrate.is_some();
        let in_place = self.setup.family == Family::X264
            && rate_only
            && self.opts.rc == super::options::RateControl::Vbr
            && self.opts.bitrate.is_some()
            && (vbv_on || (params.maxbitrate.is_none() && params.vbvbufsize.is_none()));
        if in_place {
            // libx264's wrapper compares these fields with x264's parameters before every picture and calls
            // x264_encoder_reconfig when they differ.
            let setup = backend::software(&next, false, false, false)?;
            for (k, v) in &setup.options {
                let v: usize = match v.parse() {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                match k.as_str() {
                    "b" => self.enc.set_bit_rate(v),
                    "maxrate" => self.enc.set_max_bit_rate(v),
                    "bufsize" => ffe::set_rc_buffer_size(&mut self.enc, v),
                    _ => {}
                }
            }
            self.opts = next;
            return Ok(Reconfigured::InPlace);
        }
        // The drained packets stay pending even if the reopen fails (end_encode then hands them out).
        self.pending = self.end_encode()?;
        let (high, c444, _) = self.layout.traits();
        let nv12 = self.setup.pixel == Pixel::NV12;
        let setup = match self.setup.family {
            Family::Nvenc => {
                // The GPU the running encoder was opened on (for `Auto`, the one it chose then).
                let gpu = match next.backend {
                    EncoderBackend::Nvenc(g) => g,
                    _ => self.setup.gpu.unwrap_or_else(crate::cuda::default_gpu),
                };
                backend::nvenc_setup(&next, gpu, high, c444)?
            }
            _ => backend::software(&next, high, c444, nv12)?,
        };
        self.enc = open_setup(
            &setup,
            &next,
            self.width,
            self.height,
            self.global_header,
            self.tags,
        )
        .map_err(|e| refused(&setup, e))?;
        self.setup = setup;
        self.opts = next;
        self.ended = false;
        self.sent = 0;
        self.force_next_idr = true;
        Ok(Reconfigured::Restarted)
    }

    /// Copies (and converts) the input bytes into the encoder's frame.
    fn fill_frame(&mut self, bytes: &[u8]) -> Result<()> {
        let src_pix = self.layout.pixel();
        let need: usize = self.rows.iter().map(|(r, n)| r * n).sum();
        if bytes.len() != need {
            return Err(Error::InvalidArgument(format!(
                "frame of {} bytes: {src_pix:?} {}x{} has {need}",
                bytes.len(),
                self.width,
                self.height
            )));
        }
        let target = match self.conversion {
            Conversion::Copy => &mut self.enc_frame,
            _ => &mut self.src_frame,
        };
        let rgbp = matches!(self.layout, InputLayout::Format(InputFormat::Rgbp));
        let mut off = 0;
        for (p, &(row, rows)) in self.rows.iter().enumerate() {
            // The decoders' RGBP is R, G, B planes; FFmpeg's GBRP stores G, B, R.
            let dst_plane = if rgbp { [2, 0, 1][p] } else { p };
            let stride = target.stride(dst_plane);
            let data = target.data_mut(dst_plane);
            for r in 0..rows {
                data[r * stride..r * stride + row].copy_from_slice(&bytes[off..off + row]);
                off += row;
            }
        }
        match &mut self.conversion {
            Conversion::Copy => {}
            Conversion::Scale(s) => s.run(&self.src_frame, &mut self.enc_frame)?,
            Conversion::HighBitsTo10 => high_bits_to_10(&self.src_frame, &mut self.enc_frame),
        }
        Ok(())
    }

    fn receive(&mut self, out: &mut Vec<EncodedPacket>) -> Result<()> {
        let mut packet = ff::Packet::empty();
        loop {
            match self.enc.receive_packet(&mut packet) {
                Ok(()) => {}
                Err(ff::Error::Eof) => return Ok(()),
                Err(ff::Error::Other { errno }) if errno == libc::EAGAIN => return Ok(()),
                Err(e) => return Err(Error::ffmpeg("avcodec_receive_packet", e)),
            }
            let pts = packet.pts().unwrap_or(0);
            let mut data = packet.data().unwrap_or(&[]).to_vec();
            let nal = match self.opts.codec {
                Codec::H264 => Some(NalCodec::H264),
                Codec::Hevc => Some(NalCodec::Hevc),
                Codec::Av1 => None,
            };
            if let Some(nal) = nal {
                let sets = annexb_parameter_sets(nal, &data);
                if !sets.is_empty() {
                    self.headers = sets;
                } else if let Some(i) = self.want_headers.iter().position(|&p| p == pts) {
                    self.want_headers.swap_remove(i);
                    let mut with = self.parameter_sets();
                    with.extend_from_slice(&data);
                    data = with;
                }
            }
            out.push(EncodedPacket {
                data,
                pts,
                dts: packet.dts().unwrap_or(pts),
                keyframe: packet.is_key(),
            });
        }
    }
}

impl Drop for Encoder {
    /// An encoder dropped before [`Encoder::end_encode`] is drained first: SVT-AV1 hangs when it is closed
    /// without the end of the stream.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        if self.sent == 0 && self.setup.family == Family::SvtAv1 {
            self.close_empty_svt_stream();
        } else if self.enc.send_eof().is_ok() {
            let mut packet = ff::Packet::empty();
            while self.enc.receive_packet(&mut packet).is_ok() {}
        }
    }
}

/// `Auto`: NVENC on the calling thread's current CUDA device ([`crate::cuda::default_gpu`]) when a session opens
/// there (asked once per process, GPU and codec), else software.
fn auto(
    opts: &EncoderOptions,
    width: u32,
    height: u32,
    (high, c444, nv12): (bool, bool, bool),
    global_header: bool,
    tags: Option<ColorTags>,
) -> Result<(ff::encoder::video::Encoder, EncoderSetup, String)> {
    let gpu = crate::cuda::default_gpu();
    let key = (gpu, opts.codec);
    let known = NVENC_PROBES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .get(&key)
        .cloned();
    let why_not = match known {
        Some(Err(why)) => why,
        _ => match backend::nvenc_setup(opts, gpu, high, c444) {
            Err(e) => format!("NVENC cannot honour these settings: {e}"),
            Ok(setup) => match open_setup(&setup, opts, width, height, global_header, tags) {
                Ok(enc) => {
                    record_probe(key, Ok(()));
                    let note = format!("{} on GPU {gpu} (NVENC)", setup.name);
                    return Ok((enc, setup, note));
                }
                Err(e) => {
                    let why = match &e {
                        Error::Ffmpeg { source: reason, .. } => {
                            format!("{} did not open: {reason}", setup.name)
                        }
                        other => format!("{}: {other}", setup.name),
                    };
                    if matches!(e, Error::Ffmpeg { .. }) {
                        record_probe(key, Err(why.clone()));
                    }
                    why
                }
            },
        },
    };
    let setup = backend::software(opts, high, c444, nv12)?;
    let enc = open_setup(&setup, opts, width, height, global_header, tags)
        .map_err(|e| refused(&setup, e))?;
    let note = format!("{} (software: {why_not})", setup.name);
    Ok((enc, setup, note))
}

fn record_probe(key: (usize, Codec), r: std::result::Result<(), String>) {
    NVENC_PROBES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(key, r);
}

/// A software encoder that did not open with our settings: the settings are what it refused.
fn refused(setup: &EncoderSetup, e: Error) -> Error {
    match e {
        Error::Ffmpeg { source: reason, .. } => Error::Unsupported(format!(
            "{} refused these settings ({reason}): {}",
            setup.name,
            setup
                .options
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        )),
        other => other,
    }
}

/// Opens the encoder of `setup`; an option it did not consume is an [`Error::Unsupported`].
fn open_setup(
    setup: &EncoderSetup,
    opts: &EncoderOptions,
    width: u32,
    height: u32,
    global_header: bool,
    tags: Option<ColorTags>,
) -> Result<ff::encoder::video::Encoder> {
    let codec = ff::encoder::find_by_name(setup.name).ok_or_else(|| {
        Error::Unsupported(format!("this FFmpeg build has no {} encoder", setup.name))
    })?;
    let mut ctx = ff::codec::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(|e| Error::ffmpeg("avcodec_alloc_context3", e))?;
    ctx.set_width(width);
    ctx.set_height(height);
    ctx.set_format(setup.pixel);
    let (num, den) = opts.fps;
    ctx.set_time_base(ff::Rational::new(den as i32, num as i32));
    ctx.set_frame_rate(Some(ff::Rational::new(num as i32, den as i32)));
    if global_header {
        ctx.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    if let Some(t) = tags {
        t.apply(&mut ctx);
    }
    let mut dict = ff::Dictionary::new();
    for (k, v) in &setup.options {
        dict.set(k, v);
    }
    let (enc, unused) = ffe::open_encoder(ctx, codec, dict)?;
    if !unused.is_empty() {
        return Err(Error::Unsupported(format!(
            "{} does not take the option(s) {}",
            setup.name,
            unused.join(", ")
        )));
    }
    Ok(enc)
}
