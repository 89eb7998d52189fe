//! Encoding and transcoding: [`Encoder`] (tensors in, packets out, with per-picture flags, SEI insertion and
//! mid-stream reconfiguration), [`VideoWriter`] (an encoder writing a container or a raw stream),
//! [`Transcoder`] (whole files and time segments, decoded by vidloader's decoders, audio copied) and
//! [`read_sei`] (SEI read back on the CPU).
//!
//! # Backends
//! One FFmpeg encoder runs per [`Encoder`]: NVENC (`h264_nvenc`, `hevc_nvenc`, `av1_nvenc`) where a session
//! opens, else the codec's software encoder (`libx264`, `libx265`, `libsvtav1`). [`EncoderBackend::Auto`] tries
//! NVENC on GPU 0 once per process and codec and says what it chose and why ([`Encoder::backend_note`]);
//! [`EncoderBackend::Nvenc`] where none opens is [`crate::Error::GpuUnavailable`]. Frames on a CUDA device are
//! copied to host memory once, then converted (if their layout is not the encoder's) by swscale.
//!
//! # Parameters
//! PyNvVideoCodec's names, mapped explicitly onto every backend. "error" means [`crate::Error::Unsupported`]
//! naming the parameter when it is set; an FFmpeg option the encoder leaves unused is an error too.
//!
//! | parameter | libx264 | libx265 | SVT-AV1 (`libsvtav1`) | NVENC |
//! | --- | --- | --- | --- | --- |
//! | `preset` P1..P7 | ultrafast, superfast, veryfast, faster, fast, medium, slow | as libx264 | preset 12, 11, 10, 8, 6, 5, 4 | p1..p7 |
//! | `tuning_info` | high_quality: none; low_latency, ultra_low_latency: `tune=zerolatency`; lossless: `qp=0` | as libx264; lossless: `lossless=1` | low latency: `pred-struct=1`; lossless: error | hq, ll, ull, lossless |
//! | `rc` cbr | `b` = `maxrate` = bitrate, `bufsize` (default 1 s), `nal-hrd=cbr` (filler) | as libx264 with `strict-cbr=1` | error (CBR needs SVT's low-delay mode) | `rc=cbr` |
//! | `rc` vbr | `b`, `maxrate`, `bufsize`; no bitrate: CRF 23 | as libx264; no bitrate: CRF 28 | `b`; no bitrate: CRF 35 | `rc=vbr` |
//! | `rc` constqp + `constqp` | `qp` | `qp` | `qp`, `enable-tpl-la=0` | `rc=constqp`, `qp` |
//! | `bitrate`, `maxbitrate`, `vbvbufsize` | `b`, `maxrate`, `bufsize` | same | `b`; maxbitrate, vbvbufsize: error | same |
//! | `vbvinit` | `rc_init_occupancy` | `vbv-init` (fraction of the buffer) | error | `rc_init_occupancy` |
//! | `qmin`, `qmax` | `qmin`, `qmax` | `qpmin`, `qpmax` | `min-qp`, `max-qp` | `qmin`, `qmax` |
//! | `initqp` | error | error | error | `init_qpI/P/B` |
//! | `fps` | time base 1/fps | same | same | same |
//! | `gop` | `g` = `keyint_min`, `sc_threshold=0` (a fixed GOP) | `keyint` = `min-keyint`, `scenecut=0`, `open-gop=0` | `g` | `g` |
//! | `idrperiod` | must equal `gop` (every intra picture is an IDR) | same | same | same |
//! | `bf` | `bf` | `bframes` | error (no B-frames in AV1) | `bf` |
//! | `lookahead` | `rc-lookahead` | `rc-lookahead` | `lookahead` | `rc-lookahead` |
//! | `aq` | `aq-mode` 1 / 0 | `aq-mode` 1 / 0 | `aq-mode` 2 / 0 | `spatial-aq` |
//! | `repeatspspps` | `repeat-headers=1` | `repeat-headers=1` | error | raw output only |
//! | `colorspace`, `color_range` | stream tags; RGB input converted with that matrix and range | same | same | same |
//! | `max_res` | bound checked at creation | same | same | same |
//! | SEI (user data unregistered) | `udu_sei=1` + frame side data | same | error (no T.35 input in this FFmpeg) | `udu_sei` (H.264 / HEVC) |
//! | `reconfigure` bitrate / maxrate / VBV | in place, no IDR (x264's reconfig), when the stream started with a bit rate (and VBV for maxrate / VBV) | restart: drain, reopen, IDR | restart | restart |
//! | `reconfigure` fps | restart | restart | restart | restart |

mod backend;
mod encoder;
mod mux;
mod options;
mod sei;
mod transcode;

pub use encoder::{EncodedPacket, Encoder, Reconfigured};
pub use mux::{VideoWriter, WriteStats};
pub use options::{
    parse_bitrate, parse_fps, Codec, EncoderBackend, EncoderOptions, InputFormat, PicFlags, Preset,
    RateControl, ReconfigureParams, Tuning,
};
pub use sei::{read_sei, FrameSei, Sei, MAX_SEI_PAYLOAD, SEI_USER_DATA_UNREGISTERED};
pub use transcode::{segment_path, TranscodeOptions, TranscodeStats, Transcoder, TEXT_SEI_UUID};
