//! CPU conversion of a decoded FFmpeg frame into a slot of a batch: native planes (packed, the `ffmpeg -f
//! rawvideo` layout), interleaved RGB or planar RGB. RGB uses [`YuvToRgb`], the formula the GPU kernels share.

use ff::format::Pixel;
use ffmpeg_next as ff;
use rayon::prelude::*;

use crate::cpu::kernels::{
    horizontal_row, rgb_rows, vertical_row, ResizeColumns, RgbRows, RowGroup, RowSamples,
    RowScratch, Samples, Taps, YuvPlanes,
};
use crate::cuda::{StagedLayout, SurfaceFormat};
use crate::error::{Error, Result};
use crate::ffi::ffmpeg::packed_plane_layout;
use crate::frame::color::{ColorMatrix, ColorRange, ColorType, YuvToRgb};
use crate::frame::transform::ResizeTarget;

/// Rows per rayon task: small frames are converted on one thread.
const MIN_ROWS_PER_TASK: usize = 16;

/// Cuts each of `buffers` (one for interleaved RGB, three for planar: the same length each) into chunks of `step`
/// and calls `f(scratch, k, chunks)` with the `k`-th chunk of every buffer: spread over rayon's threads (at least
/// `min_len` chunks a task, one scratch per task) when `parallel`, else in order on the calling thread with one
/// scratch.
fn for_each_chunk<T: Send, S: Default, const N: usize>(
    buffers: [&mut [T]; N],
    step: usize,
    parallel: bool,
    min_len: usize,
    f: impl Fn(&mut S, usize, [&mut [T]; N]) + Sync + Send,
) {
    let mut iters = buffers.map(|b| b.chunks_mut(step.max(1)));
    let mut chunks = Vec::new();
    loop {
        let next = iters.each_mut().map(Iterator::next);
        if next.iter().any(Option::is_none) {
            break;
        }
        chunks.push(next.map(Option::unwrap_or_default));
    }
    if parallel {
        chunks
            .into_par_iter()
            .with_min_len(min_len)
            .enumerate()
            .for_each_init(S::default, |s, (k, c)| f(s, k, c));
    } else {
        let mut s = S::default();
        for (k, c) in chunks.into_iter().enumerate() {
            f(&mut s, k, c);
        }
    }
}

/// Bytes one frame takes in `color` at this size and pixel format.
pub fn frame_bytes(color: ColorType, format: Pixel, width: u32, height: u32) -> Result<usize> {
    Ok(match color {
        ColorType::Native => packed_plane_layout(format, width, height)?
            .iter()
            .map(|(r, n)| r * n)
            .sum(),
        ColorType::Rgb | ColorType::Rgbp => width as usize * height as usize * 3,
    })
}

/// Writes `frame` into `out` (exactly [`frame_bytes`] long) as `color`.
pub fn write_frame(
    frame: &ff::frame::Video,
    color: ColorType,
    matrix: ColorMatrix,
    range: ColorRange,
    out: &mut [u8],
    parallel: bool,
) -> Result<()> {
    match color {
        ColorType::Native => write_native(frame, out),
        ColorType::Rgb | ColorType::Rgbp => {
            let want = frame.width() as usize * frame.height() as usize * 3;
            if out.len() != want {
                return Err(Error::Unsupported(format!(
                    "frame size changed mid-stream to {}x{} ({} bytes for a {}-byte slot)",
                    frame.width(),
                    frame.height(),
                    want,
                    out.len()
                )));
            }
            let planar = color == ColorType::Rgbp;
            match yuv_layout(frame.format()) {
                Some(layout) => {
                    let conv = YuvToRgb::new(matrix, range, layout.bit_depth);
                    write_rgb_from_yuv(frame, &layout, &conv, planar, out, parallel);
                    Ok(())
                }
                None => write_rgb_with_swscale(frame, planar, out),
            }
        }
    }
}

/// The layout of `format` when [`write_frame_resized`] takes it (8-bit planar YUV: 4:2:0, 4:2:2, 4:4:4).
fn resize_layout(format: Pixel) -> Option<YuvLayout> {
    yuv_layout(format).filter(|l| l.bit_depth == 8 && !l.semi_planar && !l.grey)
}

/// Whether [`write_frame_resized`] takes frames of `format`.
pub(crate) fn resizes_directly(format: Pixel) -> bool {
    resize_layout(format).is_some()
}

/// Writes `frame` (8-bit planar YUV, see [`resizes_directly`]) into `out` (`3 x height x width` values) cropped,
/// resized and normalised in one pass, by the formula of the GPU kernel: each output pixel is the bilinear
/// interpolation (half-pixel centres) of the four neighbouring RGB pixels, each converted with [`YuvToRgb`] and
/// rounded; then `(v * scale - mean) / std` when normalising. Only the source pixels the output needs are
/// converted (a 1080p frame resized to 224x224 converts about a tenth of its pixels): per source row, the samples
/// at the taps' columns are gathered (chroma once per chroma row), converted and interpolated horizontally in one
/// vector loop, and each output row combines two such rows. Rows are spread over rayon's threads when
/// `target.parallel`, else converted on the calling thread.
pub(crate) fn write_frame_resized(
    frame: &ff::frame::Video,
    matrix: ColorMatrix,
    range: ColorRange,
    target: &ResizeTarget,
    out: &mut [f32],
) -> Result<()> {
    let parallel = target.parallel;
    let layout = resize_layout(frame.format()).ok_or_else(|| {
        Error::Unsupported(format!(
            "fused CPU resize of {:?} frames (8-bit planar YUV only)",
            frame.format()
        ))
    })?;
    let (fw, fh) = (frame.width() as usize, frame.height() as usize);
    let (left, top, sw, sh) = match target.crop {
        Some(c) => (
            c.left as usize,
            c.top as usize,
            c.width as usize,
            c.height as usize,
        ),
        None => (0, 0, fw, fh),
    };
    let (ow, oh) = (target.width, target.height);
    if sw == 0 || sh == 0 || left + sw > fw || top + sh > fh || ow == 0 || oh == 0 {
        return Err(Error::InvalidArgument(format!(
            "crop {sw}x{sh} at ({left}, {top}) of a {fw}x{fh} frame into {ow}x{oh}"
        )));
    }
    if out.len() != 3 * ow * oh {
        return Err(Error::InvalidArgument(format!(
            "resized slot of {} values for {ow}x{oh} RGB",
            out.len()
        )));
    }
    let conv = YuvToRgb::new(matrix, range, 8);
    let pic = YuvPlanes {
        planes: [0, 1, 2].map(|p| (frame.data(p), frame.stride(p))),
        left,
        top,
        shift_x: layout.shift_x,
        shift_y: layout.shift_y,
    };
    let cols = ResizeColumns::new(&pic, &Taps::new(sw, ow));
    let rows = Taps::new(sh, oh);
    let norm = |ch: usize| target.normalize.map(|n| (n.scale, n.mean[ch], n.std[ch]));
    let plane = ow * oh;
    // Per task: the samples of the source row gathered last, the two source rows interpolated horizontally last
    // (with their row numbers), and one output row per channel for interleaving.
    #[derive(Default)]
    struct Scratch {
        samples: RowSamples,
        rows: [(Option<usize>, [Vec<f32>; 3]); 2],
        lines: [Vec<f32>; 3],
    }
    impl Scratch {
        /// Source row `y` interpolated horizontally, reusing one of the two last (upscaling reads a source row
        /// for several output rows, and the next output row often starts at the row this one ended with).
        fn row(
            &mut self,
            y: usize,
            other: usize,
            make: impl FnOnce(&mut RowSamples, &mut [Vec<f32>; 3]),
        ) -> usize {
            if let Some(k) = self.rows.iter().position(|(at, _)| *at == Some(y)) {
                return k;
            }
            // Replace the slot that does not hold `other` (the row the caller also needs).
            let k = usize::from(self.rows[0].0 == Some(other));
            make(&mut self.samples, &mut self.rows[k].1);
            self.rows[k].0 = Some(y);
            k
        }
    }
    let (pic, cols, conv) = (&pic, &cols, &conv);
    // Output row `oy`, one channel into each of `dst`.
    let output_row = |s: &mut Scratch, oy: usize, dst: [&mut [f32]; 3]| {
        let (y0, y1) = (rows.i0[oy], rows.i1[oy]);
        let source = |y: usize| {
            move |samples: &mut RowSamples, h: &mut [Vec<f32>; 3]| {
                samples.gather(pic, cols, y);
                horizontal_row(conv, samples, cols, h);
            }
        };
        let k0 = s.row(y0, y1, source(y0));
        let k1 = s.row(y1, y0, source(y1));
        let (wy0, wy1) = (rows.w0[oy], rows.w1[oy]);
        for (ch, dst) in dst.into_iter().enumerate() {
            let (top, bottom) = (&s.rows[k0].1[ch], &s.rows[k1].1[ch]);
            vertical_row(top, bottom, wy0, wy1, norm(ch), dst);
        }
    };
    if target.planar {
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for_each_chunk([r, g, b], ow, parallel, MIN_ROWS_PER_TASK, output_row);
    } else {
        let row = |s: &mut Scratch, oy: usize, [dst]: [&mut [f32]; 1]| {
            let mut lines = std::mem::take(&mut s.lines);
            for l in lines.iter_mut() {
                l.resize(ow, 0.0);
            }
            let [r, g, b] = &mut lines;
            output_row(s, oy, [r, g, b]);
            for (px, ((&r, &g), &b)) in dst
                .chunks_exact_mut(3)
                .zip(lines[0].iter().zip(&lines[1]).zip(&lines[2]))
            {
                px.copy_from_slice(&[r, g, b]);
            }
            s.lines = lines;
        };
        for_each_chunk([out], ow * 3, parallel, MIN_ROWS_PER_TASK, row);
    }
    Ok(())
}

/// Copies each plane row by row with no padding.
fn write_native(frame: &ff::frame::Video, out: &mut [u8]) -> Result<()> {
    let layout = packed_plane_layout(frame.format(), frame.width(), frame.height())?;
    let total: usize = layout.iter().map(|(r, n)| r * n).sum();
    if out.len() != total {
        return Err(Error::InvalidArgument(format!(
            "native slot of {} bytes for a {total}-byte frame",
            out.len()
        )));
    }
    let mut offset = 0;
    for (p, &(row_bytes, rows)) in layout.iter().enumerate() {
        let src = frame.data(p);
        let stride = frame.stride(p);
        let dst = &mut out[offset..offset + row_bytes * rows];
        // One thread: a copy is bound by memory, not by a core, and handing rows to rayon's threads wakes them
        // (and lets them spin) on cores the decoder's own threads need.
        if stride == row_bytes {
            dst.copy_from_slice(&src[..row_bytes * rows]);
        } else {
            for (r, row) in dst.chunks_exact_mut(row_bytes).enumerate() {
                row.copy_from_slice(&src[r * stride..r * stride + row_bytes]);
            }
        }
        offset += row_bytes * rows;
    }
    Ok(())
}

/// Geometry of a planar YUV (or grey) pixel format.
struct YuvLayout {
    bit_depth: u32,
    /// log2 of the horizontal and vertical chroma subsampling.
    shift_x: u32,
    shift_y: u32,
    /// Chroma interleaved in plane 1 (NV12) rather than planes 1 and 2.
    semi_planar: bool,
    grey: bool,
}

fn yuv_layout(format: Pixel) -> Option<YuvLayout> {
    let l = |bit_depth, shift_x, shift_y| YuvLayout {
        bit_depth,
        shift_x,
        shift_y,
        semi_planar: false,
        grey: false,
    };
    Some(match format {
        Pixel::YUV420P | Pixel::YUVJ420P => l(8, 1, 1),
        Pixel::YUV422P | Pixel::YUVJ422P => l(8, 1, 0),
        Pixel::YUV444P | Pixel::YUVJ444P => l(8, 0, 0),
        Pixel::YUV420P10LE => l(10, 1, 1),
        Pixel::YUV422P10LE => l(10, 1, 0),
        Pixel::YUV444P10LE => l(10, 0, 0),
        Pixel::YUV420P12LE => l(12, 1, 1),
        Pixel::YUV422P12LE => l(12, 1, 0),
        Pixel::YUV444P12LE => l(12, 0, 0),
        Pixel::NV12 => YuvLayout {
            semi_planar: true,
            ..l(8, 1, 1)
        },
        Pixel::GRAY8 => YuvLayout {
            grey: true,
            ..l(8, 0, 0)
        },
        Pixel::GRAY10LE => YuvLayout {
            grey: true,
            ..l(10, 0, 0)
        },
        _ => return None,
    })
}

/// The samples of component `c` (0 = Cb, 1 = Cr) on chroma row `cy`.
fn chroma_samples<'a>(
    frame: &'a ff::frame::Video,
    layout: &YuvLayout,
    c: usize,
    cy: usize,
) -> Samples<'a> {
    let wide = layout.bit_depth > 8;
    if layout.semi_planar {
        Samples {
            row: &frame.data(1)[cy * frame.stride(1)..],
            wide,
            start: c,
            step: 2,
        }
    } else {
        Samples::contiguous(&frame.data(1 + c)[cy * frame.stride(1 + c)..], wide)
    }
}

/// The rows of one chroma row (`1 << shift_y` luma rows, fewer at the bottom) from luma row `y0`, for
/// [`rgb_rows`].
fn row_group<'a>(
    frame: &'a ff::frame::Video,
    layout: &YuvLayout,
    y0: usize,
    rows: usize,
    luma: &'a mut [Samples<'a>; 2],
) -> RowGroup<'a> {
    let width = frame.width() as usize;
    let wide = layout.bit_depth > 8;
    for (k, l) in luma.iter_mut().enumerate().take(rows) {
        *l = Samples::contiguous(&frame.data(0)[(y0 + k) * frame.stride(0)..], wide);
    }
    let chroma = (!layout.grey).then(|| {
        let cw = (width + (1 << layout.shift_x) - 1) >> layout.shift_x;
        let cy = y0 >> layout.shift_y;
        (
            chroma_samples(frame, layout, 0, cy),
            chroma_samples(frame, layout, 1, cy),
            cw,
            layout.shift_x,
        )
    });
    RowGroup {
        luma: &luma[..rows],
        chroma,
        width,
    }
}

/// Converts `frame` to RGB (`planar`: three planes) into `out`, one chroma row's luma rows at a time: spread over
/// rayon's threads when `parallel`, else on the calling thread.
fn write_rgb_from_yuv(
    frame: &ff::frame::Video,
    layout: &YuvLayout,
    conv: &YuvToRgb,
    planar: bool,
    out: &mut [u8],
    parallel: bool,
) {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    // Rows sharing a chroma row are converted together (the chroma terms are computed once for them).
    let group = 1usize << layout.shift_y;
    let min_groups = MIN_ROWS_PER_TASK.div_ceil(group);
    let empty = Samples::contiguous(&[], false);
    // Group `k` of the picture: its rows (`rows` of them) into `dst`.
    let convert = |s: &mut RowScratch, k: usize, rows: usize, dst: RgbRows<'_>| {
        let mut luma = [empty; 2];
        let group = row_group(frame, layout, k * group, rows, &mut luma);
        rgb_rows(conv, &group, s, dst);
    };
    if planar {
        let (r, gb) = out.split_at_mut(w * h);
        let (g, b) = gb.split_at_mut(w * h);
        for_each_chunk(
            [r, g, b],
            w * group,
            parallel,
            min_groups,
            |s, k, [r, g, b]| convert(s, k, r.len() / w, RgbRows::Planar([r, g, b])),
        );
    } else {
        for_each_chunk([out], 3 * w * group, parallel, min_groups, |s, k, [dst]| {
            convert(s, k, dst.len() / (3 * w), RgbRows::Interleaved(dst))
        });
    }
}

/// Pixel formats without a direct path (palettes, packed RGB, ...) go through swscale to RGB24.
fn write_rgb_with_swscale(frame: &ff::frame::Video, planar: bool, out: &mut [u8]) -> Result<()> {
    let (w, h) = (frame.width(), frame.height());
    let mut scaler = ff::software::scaling::Context::get(
        frame.format(),
        w,
        h,
        Pixel::RGB24,
        w,
        h,
        ff::software::scaling::Flags::POINT | ff::software::scaling::Flags::ACCURATE_RND,
    )
    .map_err(|e| Error::Unsupported(format!("pixel format {:?}: {e}", frame.format())))?;
    let mut rgb = ff::frame::Video::empty();
    scaler
        .run(frame, &mut rgb)
        .map_err(|e| Error::ffmpeg("sws_scale", e))?;
    let (w, h) = (w as usize, h as usize);
    let src = rgb.data(0);
    let stride = rgb.stride(0);
    for y in 0..h {
        let row = &src[y * stride..y * stride + 3 * w];
        if planar {
            for x in 0..w {
                for c in 0..3 {
                    out[c * w * h + y * w + x] = row[3 * x + c];
                }
            }
        } else {
            out[y * 3 * w..(y + 1) * 3 * w].copy_from_slice(row);
        }
    }
    Ok(())
}

/// The NVDEC surface layout a picture of `format` is staged in for the GPU conversion kernel (see
/// [`crate::cuda::HostUpload`]): planar 4:2:0 as NV12 / P016, planar 4:4:4 as NVDEC's 4:4:4 surfaces; `None` for
/// the formats the kernel has no layout for (4:2:2, grey, packed RGB, ...).
pub(crate) fn staged_layout(format: Pixel, width: u32, height: u32) -> Option<StagedLayout> {
    let l = yuv_layout(format).filter(|l| !l.grey && !l.semi_planar)?;
    let surface = match (l.shift_x, l.shift_y, l.bit_depth > 8) {
        (1, 1, false) => SurfaceFormat::Nv12,
        (1, 1, true) => SurfaceFormat::P016,
        (0, 0, false) => SurfaceFormat::Yuv444,
        (0, 0, true) => SurfaceFormat::Yuv444_16Bit,
        _ => return None,
    };
    Some(StagedLayout {
        format: surface,
        width,
        height,
        bit_depth: l.bit_depth,
    })
}

/// Writes `frame` into `out` in `layout` (from [`staged_layout`] for this frame): luma rows of `pitch` bytes, then
/// the chroma plane(s); 16-bit samples shifted to the most significant bits as NVDEC stores them.
pub(crate) fn stage_frame(frame: &ff::frame::Video, layout: &StagedLayout, out: &mut [u8]) {
    let (w, h) = (layout.width as usize, layout.height as usize);
    let pitch = layout.pitch();
    let wide = layout.format.bytes_per_sample() == 2;
    let shift = if wide { 16 - layout.bit_depth } else { 0 };
    // One plane's rows (`samples` per row) copied to `dst` rows of `pitch` bytes.
    let copy_plane = |p: usize, rows: usize, samples: usize, dst: &mut [u8]| {
        let (src, stride) = (frame.data(p), frame.stride(p));
        let row_bytes = samples * layout.format.bytes_per_sample();
        for (r, d) in dst.chunks_mut(pitch).take(rows).enumerate() {
            let s = &src[r * stride..r * stride + row_bytes];
            if wide {
                for (d, s) in d[..row_bytes].chunks_exact_mut(2).zip(s.chunks_exact(2)) {
                    let v = u16::from_le_bytes([s[0], s[1]]) << shift;
                    d.copy_from_slice(&v.to_le_bytes());
                }
            } else {
                d[..row_bytes].copy_from_slice(s);
            }
        }
    };
    let chroma_at = layout.chroma_offset();
    let (luma, chroma) = out.split_at_mut(chroma_at);
    copy_plane(0, h, w, luma);
    if layout.format.is_420() {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let bps = layout.format.bytes_per_sample();
        let (u, us) = (frame.data(1), frame.stride(1));
        let (v, vs) = (frame.data(2), frame.stride(2));
        for (r, d) in chroma.chunks_mut(pitch).take(ch).enumerate() {
            let (ur, vr) = (&u[r * us..r * us + cw * bps], &v[r * vs..r * vs + cw * bps]);
            let pairs = d[..2 * cw * bps].chunks_exact_mut(2 * bps);
            for ((d, u), v) in pairs.zip(ur.chunks_exact(bps)).zip(vr.chunks_exact(bps)) {
                if wide {
                    let (u, v) = (
                        u16::from_le_bytes([u[0], u[1]]) << shift,
                        u16::from_le_bytes([v[0], v[1]]) << shift,
                    );
                    d[..2].copy_from_slice(&u.to_le_bytes());
                    d[2..].copy_from_slice(&v.to_le_bytes());
                } else {
                    d[0] = u[0];
                    d[1] = v[0];
                }
            }
        }
    } else {
        let (u_plane, v_plane) = chroma.split_at_mut(chroma_at);
        copy_plane(1, h, w, u_plane);
        copy_plane(2, h, w, v_plane);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::transform::{CropRect, Normalize};

    /// A 4:2:0 or 4:4:4 picture whose samples all differ (a hash of the position), rows padded by the allocator.
    fn picture(format: Pixel, w: u32, h: u32) -> ff::frame::Video {
        let mut f = ff::frame::Video::new(format, w, h);
        for p in 0..3 {
            let stride = f.stride(p);
            for (i, v) in f.data_mut(p).iter_mut().enumerate() {
                let (x, y) = (i % stride, i / stride);
                *v = ((x * 37 + y * 101 + p * 59) ^ (x * y)) as u8;
            }
        }
        f
    }

    /// The fused resize, pixel by pixel as the GPU kernel does it: the four source pixels around the output
    /// pixel's centre converted with [`YuvToRgb::apply`], interpolated horizontally then vertically, normalised.
    fn reference(f: &ff::frame::Video, conv: &YuvToRgb, t: &ResizeTarget) -> Vec<f32> {
        let layout = resize_layout(f.format()).unwrap();
        let c = t.crop.unwrap_or(CropRect {
            left: 0,
            top: 0,
            width: f.width(),
            height: f.height(),
        });
        let (cols, rows) = (
            Taps::new(c.width as usize, t.width),
            Taps::new(c.height as usize, t.height),
        );
        let px = |x: usize, y: usize| {
            let (x, y) = (c.left as usize + x, c.top as usize + y);
            let (cx, cy) = (x >> layout.shift_x, y >> layout.shift_y);
            let s = |p: usize, x: usize, y: usize| f32::from(f.data(p)[y * f.stride(p) + x]);
            conv.apply(s(0, x, y), s(1, cx, cy), s(2, cx, cy))
                .map(f32::from)
        };
        let mut out = vec![0.0; 3 * t.width * t.height];
        for oy in 0..t.height {
            for ox in 0..t.width {
                let (wx0, wx1) = (cols.w0[ox], cols.w1[ox]);
                let h = |y| {
                    let (a, b) = (px(cols.i0[ox], y), px(cols.i1[ox], y));
                    [0, 1, 2].map(|ch| wx0 * a[ch] + wx1 * b[ch])
                };
                let (top, bottom) = (h(rows.i0[oy]), h(rows.i1[oy]));
                for ch in 0..3 {
                    let mut v = rows.w0[oy] * top[ch] + rows.w1[oy] * bottom[ch];
                    if let Some(n) = t.normalize {
                        v = (v * n.scale - n.mean[ch]) / n.std[ch];
                    }
                    let at = if t.planar {
                        ch * t.width * t.height + oy * t.width + ox
                    } else {
                        (oy * t.width + ox) * 3 + ch
                    };
                    out[at] = v;
                }
            }
        }
        out
    }

    #[test]
    fn full_frame_rgb_is_the_per_pixel_formula_bit_for_bit() {
        let formats = [
            (Pixel::YUV420P, 3),
            (Pixel::YUV422P, 3),
            (Pixel::YUV444P, 3),
            (Pixel::YUV420P10LE, 3),
            (Pixel::YUV444P12LE, 3),
            (Pixel::NV12, 2),
            (Pixel::GRAY8, 1),
        ];
        for (format, planes) in formats {
            for (w, h) in [(37u32, 23u32), (64, 40), (1, 1), (101, 3)] {
                let mut f = ff::frame::Video::new(format, w, h);
                for p in 0..planes {
                    let stride = f.stride(p);
                    for (i, v) in f.data_mut(p).iter_mut().enumerate() {
                        let (x, y) = (i % stride, i / stride);
                        *v = ((x * 37 + y * 101 + p * 59) ^ (x * y)) as u8;
                    }
                }
                let layout = yuv_layout(format).unwrap();
                let sample = |p: usize, x: usize, y: usize| -> f32 {
                    let row = &f.data(p)[y * f.stride(p)..];
                    if layout.bit_depth > 8 {
                        f32::from(u16::from_le_bytes([row[2 * x], row[2 * x + 1]]))
                    } else {
                        f32::from(row[x])
                    }
                };
                for (matrix, range) in [
                    (ColorMatrix::Bt709, ColorRange::Limited),
                    (ColorMatrix::Bt601, ColorRange::Full),
                ] {
                    let conv = YuvToRgb::new(matrix, range, layout.bit_depth);
                    let (wu, hu) = (w as usize, h as usize);
                    let mut rgb = vec![0u8; 3 * wu * hu];
                    let mut rgbp = vec![0u8; 3 * wu * hu];
                    let parallel = w % 2 == 0;
                    write_frame(&f, ColorType::Rgb, matrix, range, &mut rgb, parallel).unwrap();
                    write_frame(&f, ColorType::Rgbp, matrix, range, &mut rgbp, !parallel).unwrap();
                    for y in 0..hu {
                        for x in 0..wu {
                            let (cx, cy) = (x >> layout.shift_x, y >> layout.shift_y);
                            let (cb, cr) = if layout.grey {
                                (conv.c_off, conv.c_off)
                            } else if layout.semi_planar {
                                (sample(1, 2 * cx, cy), sample(1, 2 * cx + 1, cy))
                            } else {
                                (sample(1, cx, cy), sample(2, cx, cy))
                            };
                            // 8-bit pictures: the fixed-point formula (within a level of `apply`).
                            let want = if layout.bit_depth == 8 {
                                crate::cpu::rgb8::pixel(
                                    &conv,
                                    sample(0, x, y) as u8,
                                    cb as u8,
                                    cr as u8,
                                )
                            } else {
                                conv.apply(sample(0, x, y), cb, cr)
                            };
                            let at = y * wu + x;
                            let what =
                                format!("{format:?} {w}x{h} {matrix:?} {range:?} ({x}, {y})");
                            assert_eq!(rgb[3 * at..3 * at + 3], want, "RGB {what}");
                            let planar = [rgbp[at], rgbp[wu * hu + at], rgbp[2 * wu * hu + at]];
                            assert_eq!(planar, want, "RGBP {what}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fused_resize_is_the_per_pixel_formula_bit_for_bit() {
        let crop = Some(CropRect {
            left: 3,
            top: 5,
            width: 41,
            height: 29,
        });
        for format in [Pixel::YUV420P, Pixel::YUV444P, Pixel::YUV422P] {
            let f = picture(format, 50, 38);
            let (matrix, range) = (ColorMatrix::Bt709, ColorRange::Limited);
            let conv = YuvToRgb::new(matrix, range, 8);
            for (crop, (w, h)) in [
                (None, (17, 11)),
                (None, (50, 38)),
                (crop, (13, 30)),
                (crop, (96, 64)),
            ] {
                for (planar, parallel, normalize) in [
                    (true, false, Some(Normalize::imagenet())),
                    (true, true, None),
                    (false, false, None),
                    (false, true, Some(Normalize::imagenet())),
                ] {
                    let t = ResizeTarget {
                        crop,
                        width: w,
                        height: h,
                        planar,
                        normalize,
                        parallel,
                    };
                    let mut out = vec![f32::NAN; 3 * w * h];
                    write_frame_resized(&f, matrix, range, &t, &mut out).unwrap();
                    let want = reference(&f, &conv, &t);
                    let same = out
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "{format:?} crop {crop:?} {w}x{h} planar {planar} parallel {parallel}"
                    );
                }
            }
        }
    }
}
