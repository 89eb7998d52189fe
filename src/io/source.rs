//! Where a video comes from: a file path, bytes in memory, or a reader (read once into memory).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

/// The origin of a video stream.
#[derive(Clone)]
pub enum Source {
    /// A file on disk.
    Path(PathBuf),
    /// A complete file held in memory (cheap to clone).
    Memory {
        /// The file's bytes.
        bytes: Arc<[u8]>,
        /// A name used in messages and as a format hint (e.g. `clip.mp4`).
        name: String,
    },
}

impl Source {
    /// A source from bytes in memory; `name` serves in error messages and as a container hint.
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>, name: impl Into<String>) -> Self {
        Source::Memory {
            bytes: bytes.into(),
            name: name.into(),
        }
    }

    /// Reads `reader` to its end and keeps the bytes in memory (random access needs seeking, which a bare
    /// reader or read callback cannot give).
    pub fn from_reader(mut reader: impl Read, name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(format!("{name}: reading"), e))?;
        Ok(Source::from_bytes(bytes, name))
    }

    /// A source fed by a read callback: `read(buf)` fills `buf` and returns the number of bytes written, 0 at
    /// the end. The whole stream is read into memory first.
    pub fn from_read_callback(
        mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
        name: impl Into<String>,
    ) -> Result<Self> {
        struct CallbackReader<F>(F);
        impl<F: FnMut(&mut [u8]) -> std::io::Result<usize>> Read for CallbackReader<F> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (self.0)(buf)
            }
        }
        Source::from_reader(CallbackReader(&mut read), name)
    }

    /// A name for messages: the path, or the name given with the bytes.
    pub fn name(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Memory { name, .. } => name.clone(),
        }
    }

    /// The path, for file sources.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Source::Path(p) => Some(p),
            Source::Memory { .. } => None,
        }
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Path(p) => f.debug_tuple("Path").field(p).finish(),
            Source::Memory { bytes, name } => f
                .debug_struct("Memory")
                .field("name", name)
                .field("len", &bytes.len())
                .finish(),
        }
    }
}

impl From<&Path> for Source {
    fn from(p: &Path) -> Self {
        Source::Path(p.to_path_buf())
    }
}
impl From<PathBuf> for Source {
    fn from(p: PathBuf) -> Self {
        Source::Path(p)
    }
}
impl From<&PathBuf> for Source {
    fn from(p: &PathBuf) -> Self {
        Source::Path(p.clone())
    }
}
impl From<&str> for Source {
    fn from(p: &str) -> Self {
        Source::Path(PathBuf::from(p))
    }
}
impl From<String> for Source {
    fn from(p: String) -> Self {
        Source::Path(PathBuf::from(p))
    }
}
