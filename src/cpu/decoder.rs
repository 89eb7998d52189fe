//! The CPU backend: libavcodec with frame threading.

use ffmpeg_next as ff;

use crate::backend::{FrameDecoder, FrameSink, HostPicture};
use crate::cpu::convert::{stage_frame, staged_layout, write_frame, write_frame_resized};
use crate::cuda::{GpuContext, HostUpload};
use crate::error::{Error, Result};
use crate::frame::color::{ColorMatrix, ColorRange, ColorType, YuvToRgb};
use crate::io::demux::{Demuxer, Packet};

/// libavcodec decoder of one stream.
pub(crate) struct CpuDecoder {
    decoder: ff::decoder::Video,
    frame: ff::frame::Video,
    has_frame: bool,
    threads: usize,
    /// Where pictures are written.
    writes: WritePlan,
    extradata: Vec<u8>,
    matrix: ColorMatrix,
    range: ColorRange,
    /// Staging for CUDA destinations (created at the first one): frames are uploaded and converted by the kernel
    /// NVDEC frames use.
    upload: Option<HostUpload>,
    /// The stream's codec parameters, time base and name: for opening a new decoder ([`FrameDecoder::reset`]) and
    /// for naming the source in errors.
    stream: StreamParams,
}

/// Whether frames of `format` can go to a CUDA slot through [`HostUpload`] (the GPU conversion kernel has a
/// layout for them).
pub(crate) fn uploads_to_gpu(format: ff::format::Pixel) -> bool {
    staged_layout(format, 2, 2).is_some()
}

/// What opening a decoder for a stream needs, kept so that [`FrameDecoder::reset`] can open a new one.
#[derive(Clone)]
struct StreamParams {
    parameters: ff::codec::Parameters,
    time_base: (i32, i32),
    source_name: String,
}

impl StreamParams {
    fn of(demuxer: &Demuxer) -> Self {
        StreamParams {
            parameters: demuxer.parameters(),
            time_base: demuxer.info().time_base,
            source_name: demuxer.source().name(),
        }
    }
}

fn open_decoder(stream: &StreamParams, threads: usize) -> Result<ff::decoder::Video> {
    let params = stream.parameters.clone();
    let id = params.id();
    let codec = ff::codec::decoder::find(id).ok_or_else(|| {
        Error::Unsupported(format!(
            "no CPU decoder for codec {id:?} in this FFmpeg build"
        ))
    })?;
    let mut ctx = ff::codec::Context::from_parameters(params)
        .map_err(|e| Error::ffmpeg("avcodec_parameters_to_context", e))?;
    ctx.set_threading(ff::codec::threading::Config {
        kind: ff::codec::threading::Type::Frame,
        count: threads,
        ..Default::default()
    });
    let mut decoder = ctx.decoder();
    // Pass the stream's time base so that frame time stamps stay in it.
    let tb = stream.time_base;
    decoder.set_time_base(ff::Rational::new(tb.0, tb.1));
    decoder.open_as(codec).and_then(|o| o.video()).map_err(|e| {
        Error::Unsupported(format!(
            "{}: cannot open the {} decoder: {e}",
            stream.source_name,
            codec.name()
        ))
    })
}

/// Where a decoder's pictures are written, decided once from its decoding threads and the cores the process may
/// use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WritePlan {
    /// Pictures go to the lane's writer thread ([`FrameDecoder::detach_current`]).
    off_thread: bool,
    /// A full-frame RGB conversion on the decoding (calling) thread spreads over rayon's threads.
    parallel_here: bool,
    /// The same on the writer thread.
    parallel_off_thread: bool,
}

impl WritePlan {
    /// The plan for a decoder of `threads` decoding threads (0 = one per core) on `cores` cores.
    ///
    /// - Writer thread: only with frame threads. The calling thread's `avcodec_send_packet` hands a packet to a
    ///   decoding thread and waits for the next picture in order; a picture written on the calling thread left
    ///   the decoding thread that made it without a packet until the write was done (on the GPU machine's 16
    ///   cores with 2 threads, 1080p: NATIVE 0.94-0.96 -> 1.03-1.04 of `ffmpeg -f null`). A decoder of one thread
    ///   decodes on the calling thread, where writing costs nothing extra.
    /// - Rayon on the calling thread: only while the decoder's threads leave cores free. With one thread per core
    ///   the cores are busy decoding, and rayon's threads wake and spin for each frame (0.1-0.3 ms of CPU a 1080p
    ///   frame on 2 cores, and 15-30 % of the frames/s when another process loads those cores).
    /// - Rayon on the writer thread: also with four decoding threads or more, where one writer falls behind the
    ///   decoders (16 threads on 16 cores, 1080p RGB into new batch tensors, whose pages the kernel zeroes on the
    ///   first write: 437 -> 594 frames/s, and 680 -> 707 into a reused tensor).
    fn new(threads: usize, cores: usize) -> Self {
        let threads = if threads == 0 { cores } else { threads };
        let frame_threads = threads > 1 && cores > 1;
        let cores_free = threads > 1 && threads < cores;
        WritePlan {
            off_thread: frame_threads,
            parallel_here: cores_free,
            parallel_off_thread: cores_free || (frame_threads && threads >= 4),
        }
    }
}

impl CpuDecoder {
    /// A decoder for `demuxer`'s stream with `threads` decoding threads (0 = one per core).
    pub(crate) fn new(demuxer: &Demuxer, threads: usize) -> Result<Self> {
        let stream = StreamParams::of(demuxer);
        let decoder = open_decoder(&stream, threads)?;
        let info = demuxer.info();
        Ok(CpuDecoder {
            decoder,
            frame: ff::frame::Video::empty(),
            has_frame: false,
            threads,
            writes: WritePlan::new(
                threads,
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            extradata: demuxer.extradata(),
            matrix: info.color_matrix,
            range: info.color_range,
            upload: None,
            stream,
        })
    }

    /// The current frame with what writing it needs.
    fn picture_ref(&self) -> CpuPicture<&ff::frame::Video> {
        CpuPicture {
            frame: &self.frame,
            matrix: self.matrix,
            range: self.range,
            parallel_convert: self.writes.parallel_here,
        }
    }

    fn corrupt(&self, e: ff::Error) -> Error {
        Error::Corrupt {
            source_name: self.stream.source_name.clone(),
            reason: e.to_string(),
        }
    }
}

impl FrameDecoder for CpuDecoder {
    fn reconfigure(&mut self, demuxer: &Demuxer) -> Result<()> {
        let extradata = demuxer.extradata();
        self.stream = StreamParams::of(demuxer);
        if extradata != self.extradata || extradata.is_empty() {
            // New parameter sets: libavcodec has no in-place reconfigure, so open a context for them.
            self.decoder = open_decoder(&self.stream, self.threads)?;
            self.extradata = extradata;
        } else {
            self.decoder.flush();
        }
        self.has_frame = false;
        let info = demuxer.info();
        self.matrix = info.color_matrix;
        self.range = info.color_range;
        Ok(())
    }

    fn send_packet(&mut self, packet: &Packet) -> Result<()> {
        match self.decoder.send_packet(packet.ffmpeg()) {
            Ok(()) => Ok(()),
            // Corrupt packets are concealed by the decoder where it can; a hard error on one packet is reported.
            Err(ff::Error::InvalidData) => Ok(()),
            Err(e) => Err(self.corrupt(e)),
        }
    }

    fn send_eof(&mut self) -> Result<()> {
        match self.decoder.send_eof() {
            Ok(()) | Err(ff::Error::Eof) => Ok(()),
            Err(e) => Err(self.corrupt(e)),
        }
    }

    fn receive(&mut self) -> Result<Option<Option<i64>>> {
        loop {
            match self.decoder.receive_frame(&mut self.frame) {
                Ok(()) => {
                    self.has_frame = true;
                    return Ok(Some(self.frame.pts().or(self.frame.timestamp())));
                }
                Err(ff::Error::Eof) => return Ok(None),
                Err(ff::Error::Other { errno }) if errno == libc::EAGAIN => return Ok(None),
                Err(ff::Error::InvalidData) => continue,
                Err(e) => return Err(self.corrupt(e)),
            }
        }
    }

    fn current_size(&self) -> Option<(u32, u32)> {
        self.has_frame
            .then(|| (self.frame.width(), self.frame.height()))
    }

    fn write_current(&mut self, color: ColorType, sink: FrameSink<'_>) -> Result<()> {
        if !self.has_frame {
            return Err(Error::InvalidArgument("no decoded frame to write".into()));
        }
        match sink {
            FrameSink::Host(_) | FrameSink::HostResized { .. } => {
                self.picture_ref().write_to_host(color, sink)
            }
            FrameSink::Device { slot, transform } => {
                let (w, h) = (self.frame.width(), self.frame.height());
                let layout = staged_layout(self.frame.format(), w, h).ok_or_else(|| {
                    Error::Unsupported(format!(
                        "{:?} frames have no GPU surface layout; they go to CUDA through a host batch",
                        self.frame.format()
                    ))
                })?;
                let tch::Device::Cuda(gpu) = slot.device() else {
                    return Err(Error::InvalidArgument("expected a CUDA slot".into()));
                };
                if self
                    .upload
                    .as_ref()
                    .is_none_or(|u| u.gpu().ordinal() != gpu)
                {
                    self.upload = Some(HostUpload::new(&GpuContext::shared(gpu)?)?);
                }
                let yuv = YuvToRgb::new(self.matrix, self.range, layout.bit_depth);
                let frame = &self.frame;
                let upload = self
                    .upload
                    .as_mut()
                    .ok_or_else(|| Error::Worker("the staging area was not created".into()))?;
                upload.convert_into(
                    layout,
                    |out| stage_frame(frame, &layout, out),
                    color,
                    &yuv,
                    slot,
                    transform,
                )
            }
        }
    }

    fn flush(&mut self) {
        self.decoder.flush();
        self.has_frame = false;
    }

    fn reset(&mut self) -> Result<()> {
        self.decoder = open_decoder(&self.stream, self.threads)?;
        self.has_frame = false;
        Ok(())
    }

    fn writes_off_thread(&self) -> bool {
        self.writes.off_thread
    }

    fn detach_current(&mut self) -> Option<Box<dyn HostPicture>> {
        if !self.writes.off_thread || !self.has_frame {
            return None;
        }
        self.has_frame = false;
        // The frame's buffers are reference counted: libavcodec keeps its own references to the pictures it
        // still predicts from, and this one's planes stay valid until the writer drops it.
        let frame = std::mem::replace(&mut self.frame, ff::frame::Video::empty());
        Some(Box::new(CpuPicture {
            frame,
            matrix: self.matrix,
            range: self.range,
            parallel_convert: self.writes.parallel_off_thread,
        }))
    }
}

/// A decoded picture with what writing it needs: the current frame of a [`CpuDecoder`], borrowed
/// ([`CpuDecoder::picture_ref`]) or taken out of it ([`FrameDecoder::detach_current`]).
struct CpuPicture<F> {
    frame: F,
    matrix: ColorMatrix,
    range: ColorRange,
    parallel_convert: bool,
}

impl<F: std::borrow::Borrow<ff::frame::Video>> CpuPicture<F> {
    /// Writes the picture into a host sink ([`FrameSink::Host`] or [`FrameSink::HostResized`]).
    fn write_to_host(&self, color: ColorType, sink: FrameSink<'_>) -> Result<()> {
        let frame = self.frame.borrow();
        match sink {
            FrameSink::Host(out) => write_frame(
                frame,
                color,
                self.matrix,
                self.range,
                out,
                self.parallel_convert,
            ),
            FrameSink::HostResized { values, target } => {
                write_frame_resized(frame, self.matrix, self.range, target, values)
            }
            FrameSink::Device { .. } => Err(Error::InvalidArgument(
                "a picture taken out of its CPU decoder is written to host memory only".into(),
            )),
        }
    }
}

impl HostPicture for CpuPicture<ff::frame::Video> {
    fn write(self: Box<Self>, color: ColorType, sink: FrameSink<'_>) -> Result<()> {
        self.write_to_host(color, sink)
    }
}

#[cfg(test)]
mod tests {
    use super::WritePlan;

    fn plan(off_thread: bool, parallel_here: bool, parallel_off_thread: bool) -> WritePlan {
        WritePlan {
            off_thread,
            parallel_here,
            parallel_off_thread,
        }
    }

    #[test]
    fn write_plans_follow_threads_and_cores() {
        // One decoding thread (a loader worker's): everything on the calling thread.
        assert_eq!(WritePlan::new(1, 16), plan(false, false, false));
        // Frame threads on a machine they fill: a writer thread converting on its own.
        assert_eq!(WritePlan::new(2, 2), plan(true, false, false));
        assert_eq!(WritePlan::new(0, 2), plan(true, false, false));
        // Cores left free: rayon wherever the picture is written.
        assert_eq!(WritePlan::new(2, 16), plan(true, true, true));
        // Many threads filling the cores: the writer alone would fall behind.
        assert_eq!(WritePlan::new(16, 16), plan(true, false, true));
        assert_eq!(WritePlan::new(0, 16), plan(true, false, true));
        // One core: libavcodec decodes on the calling thread whatever the count.
        assert_eq!(WritePlan::new(0, 1), plan(false, false, false));
    }
}
