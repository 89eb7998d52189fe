//! The one place a requested backend becomes a decoder: the backend a device implies, what `Backend::Auto`
//! resolves to for a stream, how the demuxer is prepared for a backend, and the decoder itself. Nothing above this
//! module names a backend's decoder type.

use tch::Device;

use crate::backend::{Backend, DecoderKey, FrameDecoder};
use crate::cpu::decoder::CpuDecoder;
use crate::error::{Error, Result};
use crate::io::demux::Demuxer;
use crate::nvdec::frame_decoder::NvdecDecoder;
use crate::nvdec::{bit_exact, check_support};

use crate::cuda::default_gpu;

impl Backend {
    /// The backend a device implies: NVDEC on that GPU for a CUDA device, otherwise the CPU.
    pub(crate) fn for_device(device: Device) -> Backend {
        match device {
            Device::Cuda(n) => Backend::Nvdec(n),
            _ => Backend::Cpu,
        }
    }
}

/// The backend that `requested` resolves to for `demuxer`'s stream. `AutoOn(gpu)` takes NVDEC on that GPU when it
/// can decode the stream bit-exactly and says once per process (on stderr) why it uses the CPU when there is no
/// GPU; `Auto` is `AutoOn` the calling thread's current CUDA device, or GPU 0 when none is current
/// ([`default_gpu`]): never a context on GPU 0 for a process that `torch.cuda.set_device(1)`.
pub(crate) fn resolve(requested: Backend, demuxer: &Demuxer) -> Result<Backend> {
    match requested {
        Backend::Cpu => Ok(Backend::Cpu),
        Backend::Nvdec(gpu) => {
            check_support(gpu, demuxer)?;
            if !bit_exact(demuxer) {
                return Err(Error::Unsupported(format!(
                    "{} on NVDEC differs from libavcodec in the inverse DCT (the standard allows it); vidloader \
                     decodes it on the CPU so that frames stay exact (PacketDecoder still decodes it on NVDEC)",
                    demuxer.info().codec
                )));
            }
            Ok(Backend::Nvdec(gpu))
        }
        Backend::Auto => resolve(Backend::AutoOn(default_gpu()), demuxer),
        Backend::AutoOn(gpu) => match check_support(gpu, demuxer) {
            Ok(()) if bit_exact(demuxer) => Ok(Backend::Nvdec(gpu)),
            Ok(()) => Ok(Backend::Cpu),
            Err(why) => {
                static SAID: std::sync::Once = std::sync::Once::new();
                if matches!(why, Error::GpuUnavailable(_)) {
                    SAID.call_once(|| eprintln!("vidloader: decoding on the CPU ({why})"));
                }
                Ok(Backend::Cpu)
            }
        },
    }
}

/// A new decoder for `key` over `demuxer`'s stream (prepared with [`prepare`]); `threads` CPU decoding threads
/// (0 = one per core).
pub(crate) fn open(
    key: &DecoderKey,
    demuxer: &Demuxer,
    threads: usize,
) -> Result<Box<dyn FrameDecoder>> {
    match key.backend {
        Backend::Cpu | Backend::Auto | Backend::AutoOn(_) => {
            Ok(Box::new(CpuDecoder::new(demuxer, threads)?))
        }
        Backend::Nvdec(gpu) => Ok(Box::new(NvdecDecoder::new(
            gpu,
            demuxer,
            key.max_width,
            key.max_height,
        )?)),
    }
}

/// Prepares `demuxer` for `backend`: NVDEC reads Annex-B packets (`h264_mp4toannexb` / `hevc_mp4toannexb`).
pub(crate) fn prepare(backend: Backend, demuxer: &mut Demuxer) -> Result<()> {
    if matches!(backend, Backend::Nvdec(_)) {
        demuxer.set_annexb(true)?;
    }
    Ok(())
}
