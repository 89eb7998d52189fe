//! [`MappedSurface`]: a decoded picture mapped for reading (device pointer, pitch, layout), unmapped on drop.

use std::marker::PhantomData;
use std::sync::Arc;

use super::api::NvcuvidApi;
use super::callbacks::align2;
use super::config::Rect;
use super::result;
use super::session::NvdecSession;
use super::sys;
use crate::cuda::{GpuContext, GpuStream, SourceSurface, SurfaceFormat};
use crate::error::Result;

/// A mapped NVDEC frame: device pointer, pitch and layout of the post-processed surface. Unmapped on drop, after
/// waiting for the stream it was mapped on (so conversions queued on that stream have read it).
pub struct MappedSurface<'a> {
    pub(crate) api: &'static NvcuvidApi,
    pub(crate) gpu: Arc<GpuContext>,
    pub(crate) handle: sys::CUvideodecoder,
    pub(crate) dptr: u64,
    pub(crate) pitch: usize,
    pub(crate) surface: (u32, u32),
    pub(crate) format: SurfaceFormat,
    pub(crate) bit_depth: u32,
    pub(crate) display: Rect,
    pub(crate) picture_index: i32,
    pub(crate) timestamp: i64,
    pub(crate) stream: &'a GpuStream,
    pub(crate) mapped: bool,
    pub(crate) _session: PhantomData<&'a mut NvdecSession>,
}

impl std::fmt::Debug for MappedSurface<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedSurface")
            .field("dptr", &format_args!("{:#x}", self.dptr))
            .field("pitch", &self.pitch)
            .field("surface", &self.surface)
            .field("format", &self.format)
            .field("bit_depth", &self.bit_depth)
            .field("display", &self.display)
            .field("picture_index", &self.picture_index)
            .finish()
    }
}

impl MappedSurface<'_> {
    /// Device address of the surface (luma plane, row 0).
    pub fn device_ptr(&self) -> u64 {
        self.dptr
    }
    /// Row pitch in bytes (all planes).
    pub fn pitch(&self) -> usize {
        self.pitch
    }
    /// Surface width (the decoder's target width: the coded width rounded up to even).
    pub fn surface_width(&self) -> u32 {
        self.surface.0
    }
    /// Surface height (the decoder's target height).
    pub fn surface_height(&self) -> u32 {
        self.surface.1
    }
    /// Byte offset of the chroma plane: `pitch * align2(surface_height)` (the 4:4:4 V plane is twice that).
    pub fn chroma_offset(&self) -> usize {
        self.pitch * align2(self.surface.1) as usize
    }
    /// Surface format.
    pub fn format(&self) -> SurfaceFormat {
        self.format
    }
    /// Bit depth of the stream.
    pub fn bit_depth(&self) -> u32 {
        self.bit_depth
    }
    /// The visible area inside the surface.
    pub fn display_area(&self) -> Rect {
        self.display
    }
    /// Visible width.
    pub fn width(&self) -> u32 {
        self.display.width
    }
    /// Visible height.
    pub fn height(&self) -> u32 {
        self.display.height
    }
    /// The frame's picture index.
    pub fn picture_index(&self) -> i32 {
        self.picture_index
    }
    /// The frame's timestamp.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The visible picture as conversion input (plane addresses at the visible origin). Conversions must be
    /// issued on the stream the frame was mapped on.
    pub fn source(&self) -> Result<SourceSurface<'_>> {
        let d = self.display;
        // SAFETY: the surface (luma + chroma planes at pitch * align2(target height), nvdec.md 5.9) stays mapped
        // while `self` is borrowed, and the drop waits for the stream the conversions are required to use.
        let s = unsafe {
            SourceSurface::from_raw_nvdec(
                self.dptr,
                self.pitch,
                self.surface.0,
                self.surface.1,
                self.format,
                self.bit_depth,
                (d.left, d.top, d.width, d.height),
            )
        }?;
        Ok(s.with_required_stream(self.stream))
    }

    /// Waits for the stream, then unmaps, reporting errors (dropping does the same and ignores them).
    pub fn unmap(mut self) -> Result<()> {
        self.release()
    }

    /// Keeps the surface mapped while the work queued on its stream goes on: the caller may feed the decoder
    /// more pictures before [`PendingUnmap::finish`] waits for that stream and unmaps. Work queued on NVDEC after
    /// the map does not delay what was queued on the stream for this surface.
    pub(crate) fn defer(mut self) -> PendingUnmap {
        self.take_mapping()
    }

    /// The mapping as a [`PendingUnmap`]; `self` no longer unmaps.
    fn take_mapping(&mut self) -> PendingUnmap {
        self.mapped = false;
        PendingUnmap {
            api: self.api,
            gpu: self.gpu.clone(),
            handle: self.handle,
            dptr: self.dptr,
            done: false,
        }
    }

    fn release(&mut self) -> Result<()> {
        if !self.mapped {
            return Ok(());
        }
        let stream = self.stream;
        self.take_mapping().finish(stream)
    }
}

impl Drop for MappedSurface<'_> {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

/// A surface left mapped by [`MappedSurface::defer`] until the work on its stream is done. The session that
/// mapped it must not destroy its decoder before [`PendingUnmap::finish`] (the NVDEC frame decoder finishes it
/// before every call that could).
#[must_use = "a deferred surface must be finished with the stream it was mapped on"]
pub(crate) struct PendingUnmap {
    api: &'static NvcuvidApi,
    gpu: Arc<GpuContext>,
    handle: sys::CUvideodecoder,
    dptr: u64,
    done: bool,
}

// SAFETY: the decoder handle and device pointer are only passed to NVDEC calls made with the owning context
// bound (`finish` and `drop` bind it first), from whichever thread owns the value; NVDEC handles are not tied to
// the thread that created them, as for `NvdecSession`.
unsafe impl Send for PendingUnmap {}

impl PendingUnmap {
    /// Waits for `stream` (the one the surface was mapped on), then unmaps.
    pub(crate) fn finish(mut self, stream: &GpuStream) -> Result<()> {
        self.done = true;
        let synced = stream.synchronize();
        self.gpu.bind()?;
        // SAFETY: unmapping the exact pointer cuvidMapVideoFrame64 returned for this decoder, once (taking the
        // mapping disarmed the `MappedSurface`'s own unmap, and `done` this value's drop); the work that read it has
        // finished (stream synchronised above), and the decoder handle is alive (see the type's contract).
        let unmapped = unsafe { result::unmap_video_frame(self.api, self.handle, self.dptr) };
        synced.and(unmapped)
    }
}

impl Drop for PendingUnmap {
    /// Not finished (an error path): waits for all of the context's work instead of the one stream, then unmaps.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let _ = self.gpu.synchronize();
        if self.gpu.bind().is_ok() {
            // SAFETY: as in `finish`: the exact mapped pointer, once; every stream of the context has finished.
            let _ = unsafe { result::unmap_video_frame(self.api, self.handle, self.dptr) };
        }
    }
}
