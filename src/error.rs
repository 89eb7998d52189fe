//! The crate's error type. Every failure a caller can cause or meet (bad path, not a video, unsupported codec,
//! corrupt data, index out of range, no GPU) is a variant here; nothing in the library panics on bad input.

use std::path::PathBuf;

/// Result with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in vidloader.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file does not exist.
    #[error("{path}: no such file")]
    NotFound {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// The file exists but could not be read or parsed as a container.
    #[error("{source_name}: cannot open: {reason}")]
    Open {
        /// The path or a description of the source.
        source_name: String,
        /// Why it could not be opened.
        reason: String,
    },
    /// The container holds no video stream.
    #[error("{source_name}: not a video (no video stream)")]
    NotVideo {
        /// The path or a description of the source.
        source_name: String,
    },
    /// The codec (or its profile, bit depth or chroma format) is not supported by the chosen backend.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The stream is truncated or corrupt.
    #[error("{source_name}: corrupt or truncated data: {reason}")]
    Corrupt {
        /// The path or a description of the source.
        source_name: String,
        /// What was found wrong.
        reason: String,
    },
    /// A frame index past the end of the video.
    #[error("frame index {index} out of range: the video has {len} frames")]
    OutOfRange {
        /// The index asked for.
        index: i64,
        /// The number of frames in the video.
        len: usize,
    },
    /// An argument that makes no sense (zero batch size, negative step, empty range...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A value a manifest row gives for its video (`num_frames`, `fps`, `width`, `height`, `duration_s`) is not
    /// what the video has: found when the video is opened to decode it, after it was planned from the manifest.
    #[error("{row}: {path}: the manifest gives {field} {given}, the video has {actual}")]
    ManifestMismatch {
        /// The row: `<manifest> line <n>` (`entry <i>` for an entry that was not read from a manifest).
        row: String,
        /// The video file.
        path: PathBuf,
        /// The column.
        field: &'static str,
        /// The manifest's value.
        given: String,
        /// What the video has.
        actual: String,
    },
    /// A sample of a tar shard that cannot be used: it has no video member, two of them, two members with one
    /// extension, or a label member (`.cls`, `.txt`, `.json`) that cannot be read as such.
    #[error("{shard}: sample '{key}': {reason}")]
    ShardSample {
        /// The shard.
        shard: PathBuf,
        /// The sample's key (the members' names up to the first dot of their file names).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// FFmpeg returned an error where none was expected.
    #[error("ffmpeg {call}: {source}")]
    Ffmpeg {
        /// The FFmpeg call that failed.
        call: &'static str,
        /// FFmpeg's error (its message is FFmpeg's own text for the error code).
        #[source]
        source: ffmpeg_next::Error,
    },
    /// No usable GPU: no driver, no libcuda or libnvcuvid, no device with this index, or no NVDEC engine.
    #[error("GPU unavailable: {0}")]
    GpuUnavailable(String),
    /// A CUDA driver, NVRTC or kernel call failed.
    #[error("CUDA {call}: {reason}")]
    Cuda {
        /// The call that failed.
        call: &'static str,
        /// The driver's message.
        reason: String,
        /// The driver's error when a driver call failed (see [`Error::cuda`]); `None` for NVRTC, whose failures
        /// are text, and for a panic caught in a decoder callback.
        #[source]
        source: Option<cudarc::driver::DriverError>,
    },
    /// An nvcuvid (NVDEC) call returned a failure code.
    #[error("NVDEC {call} failed with {name} (CUresult {code})")]
    Nvdec {
        /// The nvcuvid call that failed.
        call: &'static str,
        /// The CUresult it returned.
        code: i32,
        /// The CUresult's name (`CUDA_ERROR_NOT_SUPPORTED` ...).
        name: &'static str,
    },
    /// A torch (tch) operation failed.
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A background worker stopped unexpectedly.
    #[error("worker failed: {0}")]
    Worker(String),
}

impl Error {
    /// `i` as an index into `len` items, or [`Error::OutOfRange`].
    pub(crate) fn check_index(i: i64, len: usize) -> Result<usize> {
        match usize::try_from(i) {
            Ok(u) if u < len => Ok(u),
            _ => Err(Error::OutOfRange { index: i, len }),
        }
    }

    /// Opening the file at `path` failed with `e`: a missing file is [`Error::NotFound`], any other failure
    /// [`Error::Open`] of source `source_name`.
    pub(crate) fn opening(path: &std::path::Path, source_name: &str, e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound {
                path: path.to_path_buf(),
            },
            _ => Error::Open {
                source_name: source_name.to_string(),
                reason: e.to_string(),
            },
        }
    }

    /// Wraps an I/O error with a note of what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps a CUDA driver error returned by `call`; the message is the driver's (`CUDA cuMemAlloc_v2:
    /// DriverError(CUDA_ERROR_OUT_OF_MEMORY, "out of memory")`) and the error stays reachable as the source.
    pub fn cuda(call: &'static str, err: cudarc::driver::DriverError) -> Self {
        Error::Cuda {
            call,
            reason: format!("{err:?}"),
            source: Some(err),
        }
    }

    /// Wraps an FFmpeg error returned by `call`.
    pub fn ffmpeg(call: &'static str, err: ffmpeg_next::Error) -> Self {
        Error::Ffmpeg { call, source: err }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_errors_keep_their_cause() {
        let e = Error::ffmpeg("avcodec_send_frame", ffmpeg_next::Error::InvalidData);
        let cause = std::error::Error::source(&e).expect("the FFmpeg error is the source");
        assert_eq!(
            cause.to_string(),
            ffmpeg_next::Error::InvalidData.to_string()
        );
        assert_eq!(e.to_string(), format!("ffmpeg avcodec_send_frame: {cause}"));
    }

    #[test]
    fn cuda_driver_errors_keep_their_cause() {
        use cudarc::driver::{sys::CUresult, DriverError};
        // Built by hand: formatting a `DriverError` asks the driver for its text, and a test machine may have none.
        let e = Error::Cuda {
            call: "cuMemAlloc_v2",
            reason: "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")".into(),
            source: Some(DriverError(CUresult::CUDA_ERROR_OUT_OF_MEMORY)),
        };
        let cause = std::error::Error::source(&e).expect("the driver error is the source");
        let driver = cause
            .downcast_ref::<DriverError>()
            .expect("typed as the driver's error");
        assert_eq!(driver.0, CUresult::CUDA_ERROR_OUT_OF_MEMORY);
        // The message is what it was before the cause was kept: the call and the driver's text.
        assert_eq!(
            e.to_string(),
            "CUDA cuMemAlloc_v2: DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")"
        );
        // NVRTC failures are text: no typed cause.
        let nvrtc = Error::Cuda {
            call: "nvrtc",
            reason: "not found".into(),
            source: None,
        };
        assert!(std::error::Error::source(&nvrtc).is_none());
        assert_eq!(nvrtc.to_string(), "CUDA nvrtc: not found");
    }
}
