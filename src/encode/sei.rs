//! SEI messages in both directions: [`Sei`] is what [`crate::Encoder::encode`] inserts (H.264 / HEVC user data
//! unregistered: a 16-byte UUID and a payload); [`read_sei`] decodes a file on the CPU with libavcodec and
//! returns the user-data-unregistered SEI of every displayed frame, as the NVDEC [`crate::PacketDecoder`]
//! reports them (payload type 5, payload = UUID + data), so a round trip is testable without a GPU.

use ffmpeg_next as ff;

use crate::nvdec::SeiMessage;
use crate::{Demuxer, Error, FrameIndex, Result, Source};

/// `user_data_unregistered`, the SEI payload type both H.264 and HEVC use for free-form data.
pub const SEI_USER_DATA_UNREGISTERED: u8 = 5;

/// The largest payload [`Sei::unregistered`] accepts: x264 and x265 write any size, but NVENC's SEI buffer and
/// many parsers stop well below a megabyte; 64 KiB keeps every backend and reader safe.
pub const MAX_SEI_PAYLOAD: usize = 64 * 1024;

/// One SEI message to insert into an encoded picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sei {
    uuid: [u8; 16],
    payload: Vec<u8>,
}

impl Sei {
    /// A user-data-unregistered message: `uuid` identifies who wrote it, `payload` is anything.
    ///
    /// Errors: [`Error::InvalidArgument`] for an empty payload or one over [`MAX_SEI_PAYLOAD`] bytes.
    pub fn unregistered(uuid: [u8; 16], payload: impl Into<Vec<u8>>) -> Result<Self> {
        let payload = payload.into();
        if payload.is_empty() || payload.len() > MAX_SEI_PAYLOAD {
            return Err(Error::InvalidArgument(format!(
                "SEI payload of {} bytes (1 to {MAX_SEI_PAYLOAD})",
                payload.len()
            )));
        }
        Ok(Sei { uuid, payload })
    }

    /// The UUID.
    pub fn uuid(&self) -> &[u8; 16] {
        &self.uuid
    }

    /// The payload after the UUID.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// UUID followed by the payload: the bytes of the SEI message body as decoders report it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(16 + self.payload.len());
        v.extend_from_slice(&self.uuid);
        v.extend_from_slice(&self.payload);
        v
    }
}

/// The SEI messages of one displayed frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameSei {
    /// The frame's index in presentation order (frame `i` of [`crate::SimpleDecoder`]).
    pub index: usize,
    /// Its presentation time stamp, in the stream's time base.
    pub pts: i64,
    /// Its user-data-unregistered messages, type [`SEI_USER_DATA_UNREGISTERED`], payload = UUID + data.
    pub messages: Vec<SeiMessage>,
}

/// Decodes `source` on the CPU and returns the SEI of every frame that carries some, in presentation order.
///
/// Errors: those of [`Demuxer::open`]; [`Error::Unsupported`] when FFmpeg has no decoder for the stream;
/// [`Error::Corrupt`] when decoding fails.
pub fn read_sei(source: impl Into<Source>) -> Result<Vec<FrameSei>> {
    let source = source.into();
    let mut demuxer = Demuxer::open(source.clone())?;
    let index = FrameIndex::scan_demuxer(&mut demuxer)?;
    let mut demuxer = Demuxer::open(source.clone())?;
    let ctx = ff::codec::Context::from_parameters(demuxer.parameters())
        .map_err(|e| Error::ffmpeg("avcodec_parameters_to_context", e))?;
    let mut decoder = ctx
        .decoder()
        .video()
        .map_err(|_| Error::Unsupported(format!("no decoder for {}", demuxer.info().codec)))?;
    let corrupt = |e: ff::Error| Error::Corrupt {
        source_name: source.name(),
        reason: e.to_string(),
    };
    let mut out = Vec::new();
    let mut frame = ff::frame::Video::empty();
    let mut drain = |decoder: &mut ff::decoder::Video, out: &mut Vec<FrameSei>| {
        while decoder.receive_frame(&mut frame).is_ok() {
            let Some(pts) = frame.pts() else { continue };
            let messages: Vec<SeiMessage> = crate::ffi::encode::sei_unregistered(&frame)
                .into_iter()
                .map(|payload| SeiMessage {
                    sei_type: SEI_USER_DATA_UNREGISTERED,
                    payload,
                })
                .collect();
            if messages.is_empty() {
                continue;
            }
            if let Some(i) = index.frame_of_pts(pts) {
                out.push(FrameSei {
                    index: i,
                    pts,
                    messages,
                });
            }
        }
    };
    while let Some(packet) = demuxer.read_packet()? {
        decoder.send_packet(packet.ffmpeg()).map_err(corrupt)?;
        drain(&mut decoder, &mut out);
    }
    decoder.send_eof().map_err(corrupt)?;
    drain(&mut decoder, &mut out);
    out.sort_by_key(|f| f.index);
    Ok(out)
}
