//! Where a video comes from: a file path, bytes in memory, a reader (read once into memory), or a byte range of a
//! file (a member of a tar shard, read in place).

use std::io::{Read, Seek, SeekFrom};
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
    /// `len` bytes of the file at `path` from byte `offset` on, read in place as a file of their own (a video
    /// stored in a tar shard): nothing is copied or extracted.
    Range {
        /// The file that holds the bytes.
        path: PathBuf,
        /// Where the bytes start in the file.
        offset: u64,
        /// How many bytes there are.
        len: u64,
        /// A name used in messages and as a format hint (`shard-000001.tar:clip.mp4`).
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

    /// A source of `len` bytes of the file at `path` from byte `offset` on (a member of a tar shard), read in
    /// place through a reader over that range; `name` serves in error messages and as a container hint.
    pub fn from_file_range(
        path: impl Into<PathBuf>,
        offset: u64,
        len: u64,
        name: impl Into<String>,
    ) -> Self {
        Source::Range {
            path: path.into(),
            offset,
            len,
            name: name.into(),
        }
    }

    /// A name for messages: the path, or the name given with the bytes or the range.
    pub fn name(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Memory { name, .. } | Source::Range { name, .. } => name.clone(),
        }
    }

    /// The path, for file sources (not for a range of a file: see [`Source::file`]).
    pub fn path(&self) -> Option<&Path> {
        match self {
            Source::Path(p) => Some(p),
            Source::Memory { .. } | Source::Range { .. } => None,
        }
    }

    /// The file the bytes are read from, with the range within it (`None`: the whole file); `None` for bytes in
    /// memory.
    pub fn file(&self) -> Option<(&Path, Option<(u64, u64)>)> {
        match self {
            Source::Path(p) => Some((p, None)),
            Source::Range {
                path, offset, len, ..
            } => Some((path, Some((*offset, *len)))),
            Source::Memory { .. } => None,
        }
    }
}

/// A reader over `len` bytes of a file from `offset` on, as if they were a file of their own: positioned reads
/// (`pread`), so readers of one file share nothing; reading past the range's end is the end of the stream.
pub(crate) struct FileRange {
    file: std::fs::File,
    offset: u64,
    len: u64,
    pos: u64,
}

impl FileRange {
    /// The range of `file`.
    pub(crate) fn new(file: std::fs::File, offset: u64, len: u64) -> Self {
        FileRange {
            file,
            offset,
            len,
            pos: 0,
        }
    }
}

impl Read for FileRange {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let left = self.len.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let at = self.offset.checked_add(self.pos).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "offset overflows")
        })?;
        let n = self.file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            // The file ends inside the range: it was cut short after it was indexed. Not an end of stream (which
            // FFmpeg would take for the end of the video) but a read error.
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the file ends before the range does (cut short)",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for FileRange {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start of the range",
            )
        })?;
        self.pos = target;
        Ok(target)
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
            Source::Range {
                path,
                offset,
                len,
                name,
            } => f
                .debug_struct("Range")
                .field("path", path)
                .field("offset", offset)
                .field("len", len)
                .field("name", name)
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
