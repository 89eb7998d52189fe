//! `Transcoder`: a file (or a time segment of it) decoded by vidloader's own decoders (NVDEC where present, the
//! CPU otherwise), re-encoded by an [`Encoder`], muxed with the input's audio copied and its rotation and colour
//! description kept.
//!
//! Segment rule: times are seconds from the first frame; the segment `[start, end)` holds exactly the frames
//! whose presentation time `t` has `start <= t < end`. Its first frame is an IDR picture with the parameter
//! sets, its time stamps start at 0, and the audio packets whose time falls in `[t_first, end)` are copied with
//! the same shift (audio is cut at packet boundaries, a few ms at most; it is not re-encoded).

use std::path::{Path, PathBuf};
use std::time::Instant;

use ffmpeg_next as ff;

use super::input::{ColorTags, InputLayout};
use super::mux::VideoWriter;
use super::options::{parse_fps, EncoderOptions, PicFlags};
use super::sei::Sei;
use crate::{Backend, ColorType, DecoderOptions, Error, Result, SimpleDecoder};

/// The UUID of the text SEI that [`TranscodeOptions::sei_text`] inserts.
pub const TEXT_SEI_UUID: [u8; 16] = *b"vidloader:text\0\x01";

/// Transcoder settings.
#[derive(Clone, Debug)]
pub struct TranscodeOptions {
    /// The encoder's settings (`fps` is replaced by the input's frame rate unless `keep_fps` is false).
    pub encoder: EncoderOptions,
    /// Which decoder reads the input ([`Backend::Auto`]: NVDEC where the GPU supports the stream).
    pub decoder: Backend,
    /// Copy the input's first audio stream (default true).
    pub copy_audio: bool,
    /// Put this text into a user-data-unregistered SEI ([`TEXT_SEI_UUID`]) on every keyframe; the GOP is then
    /// fixed (`gop`, default 250) so that keyframes fall where the SEI is.
    pub sei_text: Option<String>,
    /// Encode at the input's frame rate (default true); false keeps `encoder.fps`.
    pub keep_fps: bool,
    /// Frames decoded per request.
    pub batch: usize,
}

impl Default for TranscodeOptions {
    fn default() -> Self {
        TranscodeOptions {
            encoder: EncoderOptions::default(),
            decoder: Backend::Auto,
            copy_audio: true,
            sei_text: None,
            keep_fps: true,
            batch: 16,
        }
    }
}

/// What one transcode wrote.
#[derive(Clone, Debug)]
pub struct TranscodeStats {
    /// The file written.
    pub output: PathBuf,
    /// Video frames encoded.
    pub frames: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The decoder that read the input.
    pub decoder: Backend,
    /// The encoder that ran, and why it was chosen.
    pub encoder: String,
    /// Audio packets copied.
    pub audio_packets: u64,
}

/// `<stem>_<start>_<end>.<ext>` beside `output`, times written without trailing zeros (`out_1.5_3.mp4`).
pub fn segment_path(output: &Path, start: f64, end: f64) -> PathBuf {
    let fmt = |t: f64| {
        let s = format!("{t:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
        if s.is_empty() {
            "0".into()
        } else {
            s
        }
    };
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match output.extension() {
        Some(ext) => format!(
            "{stem}_{}_{}.{}",
            fmt(start),
            fmt(end),
            ext.to_string_lossy()
        ),
        None => format!("{stem}_{}_{}", fmt(start), fmt(end)),
    };
    output.with_file_name(name)
}

/// Transcodes one input at a time; the decoder is kept (and reconfigured) across segments and inputs.
pub struct Transcoder {
    input: PathBuf,
    output: PathBuf,
    opts: TranscodeOptions,
    decoder: SimpleDecoder,
}

impl std::fmt::Debug for Transcoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcoder")
            .field("input", &self.input)
            .field("output", &self.output)
            .finish()
    }
}

impl Transcoder {
    /// A transcoder from `input` to `output` (container by extension, see [`VideoWriter`]).
    ///
    /// Errors: those of [`SimpleDecoder::open`] for the input.
    pub fn new(
        input: impl AsRef<Path>,
        output: impl AsRef<Path>,
        opts: TranscodeOptions,
    ) -> Result<Self> {
        if opts.batch == 0 {
            return Err(Error::InvalidArgument("batch must be at least 1".into()));
        }
        let dopts = DecoderOptions::default()
            .color(ColorType::Native)
            .backend(opts.decoder)
            .use_device_memory(false);
        let decoder = SimpleDecoder::open(input.as_ref(), dopts)?;
        Ok(Transcoder {
            input: input.as_ref().to_path_buf(),
            output: output.as_ref().to_path_buf(),
            opts,
            decoder,
        })
    }

    /// Points the transcoder at another input and output, keeping its decoder.
    pub fn set_files(&mut self, input: impl AsRef<Path>, output: impl AsRef<Path>) -> Result<()> {
        self.decoder.reconfigure(input.as_ref())?;
        self.input = input.as_ref().to_path_buf();
        self.output = output.as_ref().to_path_buf();
        Ok(())
    }

    /// The number of frames of the input.
    pub fn len(&self) -> usize {
        self.decoder.len()
    }

    /// Whether the input has no frames.
    pub fn is_empty(&self) -> bool {
        self.decoder.is_empty()
    }

    /// Transcodes the whole input into the output file.
    pub fn transcode_with_mux(&mut self) -> Result<TranscodeStats> {
        let n = self.decoder.len();
        let out = self.output.clone();
        self.run(0, n, &out)
    }

    /// Transcodes the frames whose time (seconds from the first frame) lies in `[start, end)` into
    /// [`segment_path`]`(output, start, end)`.
    ///
    /// Errors: [`Error::InvalidArgument`] for `end <= start`, a negative start, or a range with no frame.
    pub fn segmented_transcode(&mut self, start: f64, end: f64) -> Result<TranscodeStats> {
        if !(start >= 0.0 && end > start) {
            return Err(Error::InvalidArgument(format!(
                "segment {start}..{end}: needs 0 <= start < end"
            )));
        }
        let index = self.decoder.scanned_stream_metadata();
        let t0 = if index.is_empty() {
            0.0
        } else {
            index.time_of(0)
        };
        let frames: Vec<usize> = (0..index.len())
            .filter(|&i| {
                let t = index.time_of(i) - t0;
                t >= start - 1e-9 && t < end - 1e-9
            })
            .collect();
        let (Some(&first), Some(&last)) = (frames.first(), frames.last()) else {
            return Err(Error::InvalidArgument(format!(
                "segment {start}..{end} of {} holds no frame (the video lasts {:.3} s)",
                self.input.display(),
                index.end_time() - t0
            )));
        };
        let out = segment_path(&self.output, start, end);
        self.run(first, last + 1, &out)
    }

    /// Transcodes frames `first..stop` into `out`.
    fn run(&mut self, first: usize, stop: usize, out: &Path) -> Result<TranscodeStats> {
        let started = Instant::now();
        let info = self.decoder.stream_metadata().clone();
        let pixel: ff::format::Pixel = info
            .pixel_format
            .parse()
            .map_err(|_| Error::Unsupported(format!("pixel format {:?}", info.pixel_format)))?;
        let mut eopts = self.opts.encoder.clone();
        if self.opts.keep_fps {
            let fps = self.decoder.scanned_stream_metadata().measured_fps();
            let fps = if info.fps > 0.0 { info.fps } else { fps };
            eopts.fps = parse_fps(&format!("{fps:.6}"))?;
        }
        let sei = match &self.opts.sei_text {
            Some(text) => {
                eopts.gop = Some(eopts.gop.unwrap_or(250));
                Some(Sei::unregistered(TEXT_SEI_UUID, text.as_bytes())?)
            }
            None => None,
        };
        let mut input = ff::format::input(&self.input).map_err(|e| Error::Open {
            source_name: self.input.display().to_string(),
            reason: e.to_string(),
        })?;
        let video = crate::io::demux::video_stream(&input);
        let tags = video.as_ref().and_then(ColorTags::of_stream);
        let mut writer = VideoWriter::with_layout_and_tags(
            out,
            info.width,
            info.height,
            InputLayout::Raw(pixel),
            eopts.clone(),
            tags,
        )?;
        if let Some(vs) = &video {
            writer.muxer_mut()?.copy_rotation(vs)?;
        }
        let index = self.decoder.scanned_stream_metadata().clone();
        let t_first = if index.is_empty() {
            0.0
        } else {
            index.time_of(first)
        };
        let t_end = if stop < index.len() {
            index.time_of(stop)
        } else {
            f64::INFINITY
        };
        let mut audio = if self.opts.copy_audio {
            AudioCopy::new(&mut input, &mut writer, t_first, t_end)?
        } else {
            None
        };
        let gop = eopts.gop.unwrap_or(0) as usize;
        let mut done = 0u64;
        let batch_size = self.opts.batch;
        let decoder = &mut self.decoder;
        // Decoding runs on its own thread, a few batches ahead, so that the decoder and the encoder work at
        // the same time; a failed encode drops the channel, which ends the decoding thread.
        let encoded: Result<()> = std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<crate::FrameBatch>>(2);
            let decoding = std::thread::Builder::new()
                .name("vidloader-transcode-decode".into())
                .spawn_scoped(scope, move || {
                    let mut at = first;
                    while at < stop {
                        let next = (at + batch_size).min(stop);
                        let batch = decoder.get_range(at, next, 1);
                        let failed = batch.is_err();
                        if tx.send(batch).is_err() || failed {
                            return;
                        }
                        at = next;
                    }
                })
                .map_err(|e| Error::Worker(format!("cannot start the decoding thread: {e}")))?;
            let mut encode_all = || -> Result<()> {
                for batch in rx.iter() {
                    let batch = batch?;
                    let frames = batch.frames.contiguous();
                    for (k, &i) in batch.indices.iter().enumerate() {
                        let n = i - first;
                        let key = n == 0 || (sei.is_some() && gop > 0 && n % gop == 0);
                        let flags = PicFlags {
                            force_idr: key,
                            // AV1 key frames carry the sequence header already.
                            output_spspps: n == 0 && eopts.codec != super::options::Codec::Av1,
                            eos: false,
                        };
                        let sei_now: &[Sei] = match (&sei, key) {
                            (Some(s), true) => std::slice::from_ref(s),
                            _ => &[],
                        };
                        writer.write_host(&frames.get(k as i64), flags, sei_now)?;
                        done += 1;
                        if let Some(a) = audio.as_mut() {
                            a.pump(&mut input, &mut writer, index.time_of(i))?;
                        }
                    }
                }
                Ok(())
            };
            let result = encode_all();
            drop(rx);
            decoding
                .join()
                .map_err(|_| Error::Worker("the decoding thread panicked".into()))?;
            result
        });
        encoded?;
        if let Some(a) = audio.as_mut() {
            a.pump(&mut input, &mut writer, f64::INFINITY)?;
        }
        let audio_packets = audio.map_or(0, |a| a.copied);
        let encoder = {
            let e = writer.encoder();
            e.backend_note().to_string()
        };
        let stats = writer.finish()?;
        Ok(TranscodeStats {
            output: stats.path,
            frames: done,
            bytes: stats.bytes,
            seconds: started.elapsed().as_secs_f64(),
            decoder: self.decoder.backend(),
            encoder,
            audio_packets,
        })
    }
}

/// Copies the first audio stream's packets in `[t_first, t_end)` (seconds on the video's clock), shifted so that
/// `t_first` becomes 0, interleaved with the video as it is written.
struct AudioCopy {
    index: usize,
    out_index: usize,
    tb: ff::Rational,
    /// `t_first` in the audio time base.
    shift: i64,
    end: f64,
    start: f64,
    done: bool,
    held: Option<ff::Packet>,
    copied: u64,
}

impl AudioCopy {
    fn new(
        input: &mut ff::format::context::Input,
        writer: &mut VideoWriter,
        t_first: f64,
        t_end: f64,
    ) -> Result<Option<Self>> {
        let Some(stream) = input.streams().best(ff::media::Type::Audio) else {
            return Ok(None);
        };
        let index = stream.index();
        let tb = stream.time_base();
        let Some(out_index) = writer.muxer_mut()?.add_copy(&stream)? else {
            return Ok(None);
        };
        let secs = f64::from(tb.numerator()) / f64::from(tb.denominator().max(1));
        let shift = (t_first / secs).round() as i64;
        if t_first > 0.0 {
            let ts = (t_first * 1e6) as i64;
            // Seek before the window; packets before it are skipped below.
            let _ = input.seek(ts, ..ts);
        }
        Ok(Some(AudioCopy {
            index,
            out_index,
            tb,
            shift,
            end: t_end,
            start: t_first,
            done: false,
            held: None,
            copied: 0,
        }))
    }

    /// Writes audio packets up to time `until` (seconds).
    fn pump(
        &mut self,
        input: &mut ff::format::context::Input,
        writer: &mut VideoWriter,
        until: f64,
    ) -> Result<()> {
        let secs = f64::from(self.tb.numerator()) / f64::from(self.tb.denominator().max(1));
        loop {
            let packet = match self.held.take() {
                Some(p) => p,
                None => {
                    if self.done {
                        return Ok(());
                    }
                    let mut p = ff::Packet::empty();
                    match p.read(input) {
                        Ok(()) => {}
                        Err(ff::Error::Eof) => {
                            self.done = true;
                            return Ok(());
                        }
                        Err(e) => {
                            return Err(Error::Corrupt {
                                source_name: "audio".into(),
                                reason: e.to_string(),
                            })
                        }
                    }
                    if p.stream() != self.index {
                        continue;
                    }
                    p
                }
            };
            let Some(pts) = packet.pts().or(packet.dts()) else {
                continue;
            };
            let t = pts as f64 * secs;
            if t >= self.end - 1e-9 {
                self.done = true;
                return Ok(());
            }
            if t > until {
                self.held = Some(packet);
                return Ok(());
            }
            if t + 1e-9 < self.start {
                continue;
            }
            writer
                .muxer_mut()?
                .write_copy(&packet, self.out_index, self.shift)?;
            self.copied += 1;
        }
    }
}
