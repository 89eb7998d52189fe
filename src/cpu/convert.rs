//! CPU conversion of a decoded FFmpeg frame into a slot of a batch: native planes (packed, the `ffmpeg -f
//! rawvideo` layout), interleaved RGB or planar RGB. RGB uses [`YuvToRgb`], the formula the GPU kernels share.

use ff::format::Pixel;
use ffmpeg_next as ff;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::ffi::ffmpeg::packed_plane_layout;
use crate::frame::color::{ColorMatrix, ColorRange, ColorType, YuvToRgb};
use crate::frame::transform::ResizeTarget;

/// Rows per rayon task: small frames are converted on one thread.
const MIN_ROWS_PER_TASK: usize = 16;

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
                    write_rgb_from_yuv(frame, &layout, &conv, planar, out);
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

/// torch's `area_pixel_compute_source_index` (`align_corners = false`) and bilinear weights, as the GPU kernel
/// computes them: `(i0, i1, w0, w1)` for output position `dst`.
fn source_index(scale: f32, dst: usize, in_size: usize) -> (usize, usize, f32, f32) {
    let src = (scale * (dst as f32 + 0.5) - 0.5).max(0.0);
    let i0 = (src as usize).min(in_size - 1);
    let i1 = if i0 < in_size - 1 { i0 + 1 } else { i0 };
    let w1 = src - i0 as f32;
    (i0, i1, 1.0 - w1, w1)
}

/// Writes `frame` (8-bit planar YUV, see [`resizes_directly`]) into `out` (`3 x height x width` values) cropped,
/// resized and normalised in one pass, by the formula of the GPU kernel: each output pixel is the bilinear
/// interpolation (half-pixel centres) of the four neighbouring RGB pixels, each converted with [`YuvToRgb`] and
/// rounded; then `(v * scale - mean) / std` when normalising. Only the source pixels the output needs are
/// converted (a 1080p frame resized to 224x224 converts about a tenth of its pixels).
pub(crate) fn write_frame_resized(
    frame: &ff::frame::Video,
    matrix: ColorMatrix,
    range: ColorRange,
    target: &ResizeTarget,
    out: &mut [f32],
) -> Result<()> {
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
    let (luma, luma_stride) = (frame.data(0), frame.stride(0));
    let (cb, cb_stride) = (frame.data(1), frame.stride(1));
    let (cr, cr_stride) = (frame.data(2), frame.stride(2));
    let (shift_x, shift_y) = (layout.shift_x, layout.shift_y);
    let rgb_at = |x: usize, y: usize| -> [f32; 3] {
        let (x, y) = (left + x, top + y);
        let c = (y >> shift_y) * cb_stride + (x >> shift_x);
        let c2 = (y >> shift_y) * cr_stride + (x >> shift_x);
        let p = conv.apply(
            f32::from(luma[y * luma_stride + x]),
            f32::from(cb[c]),
            f32::from(cr[c2]),
        );
        [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]
    };
    let columns: Vec<(usize, usize, f32, f32)> = (0..ow)
        .map(|x| source_index(sw as f32 / ow as f32, x, sw))
        .collect();
    let (norm_scale, mean, std) = match target.normalize {
        Some(n) => (n.scale, n.mean, n.std),
        None => (1.0, [0.0; 3], [1.0; 3]),
    };
    let normalise = target.normalize.is_some();
    let y_scale = sh as f32 / oh as f32;
    // One output row: its three channels through `put(x, channel, value)`.
    let row = |oy: usize, put: &mut dyn FnMut(usize, usize, f32)| {
        let (y0, y1, wy0, wy1) = source_index(y_scale, oy, sh);
        for (ox, &(x0, x1, wx0, wx1)) in columns.iter().enumerate() {
            let (a, b, c, e) = (
                rgb_at(x0, y0),
                rgb_at(x1, y0),
                rgb_at(x0, y1),
                rgb_at(x1, y1),
            );
            for ch in 0..3 {
                let top_v = wx0 * a[ch] + wx1 * b[ch];
                let bottom_v = wx0 * c[ch] + wx1 * e[ch];
                let mut v = wy0 * top_v + wy1 * bottom_v;
                if normalise {
                    v = (v * norm_scale - mean[ch]) / std[ch];
                }
                put(ox, ch, v);
            }
        }
    };
    if target.planar {
        let (r, rest) = out.split_at_mut(ow * oh);
        let (g, b) = rest.split_at_mut(ow * oh);
        r.par_chunks_mut(ow)
            .zip(g.par_chunks_mut(ow))
            .zip(b.par_chunks_mut(ow))
            .with_min_len(MIN_ROWS_PER_TASK)
            .enumerate()
            .for_each(|(oy, ((r, g), b))| {
                row(oy, &mut |x, ch, v| match ch {
                    0 => r[x] = v,
                    1 => g[x] = v,
                    _ => b[x] = v,
                })
            });
    } else {
        out.par_chunks_mut(ow * 3)
            .with_min_len(MIN_ROWS_PER_TASK)
            .enumerate()
            .for_each(|(oy, line)| row(oy, &mut |x, ch, v| line[x * 3 + ch] = v));
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
        dst.par_chunks_mut(row_bytes)
            .with_min_len(MIN_ROWS_PER_TASK)
            .enumerate()
            .for_each(|(r, row)| row.copy_from_slice(&src[r * stride..r * stride + row_bytes]));
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

/// [`YuvToRgb`] in 16.16 fixed point, with the chroma scale folded into the chroma coefficients.
struct FixedYuvToRgb {
    y_off: i32,
    y_scale: i32,
    c_off: i32,
    cr_r: i32,
    cb_g: i32,
    cr_g: i32,
    cb_b: i32,
}

impl FixedYuvToRgb {
    fn new(c: &YuvToRgb) -> Self {
        let f = |v: f32| (f64::from(v) * 65536.0).round() as i32;
        FixedYuvToRgb {
            y_off: c.y_off.round() as i32,
            y_scale: f(c.y_scale),
            c_off: c.c_off.round() as i32,
            cr_r: f(c.cr_r * c.c_scale),
            cb_g: f(c.cb_g * c.c_scale),
            cr_g: f(c.cr_g * c.c_scale),
            cb_b: f(c.cb_b * c.c_scale),
        }
    }
}

/// Per-task buffers: one row of luma terms and one row of chroma terms per output channel.
#[derive(Default)]
struct RowScratch {
    y: Vec<i32>,
    r: Vec<i32>,
    g: Vec<i32>,
    b: Vec<i32>,
}

/// Reads `n` samples (bytes or 16-bit little-endian) starting at sample `start`, stepping by `step` samples.
#[inline(always)]
fn load(row: &[u8], wide: bool, start: usize, step: usize, n: usize, out: &mut Vec<i32>) {
    out.clear();
    if wide {
        out.extend((0..n).map(|i| {
            let k = 2 * (start + i * step);
            i32::from(u16::from_le_bytes([row[k], row[k + 1]]))
        }));
    } else if step == 1 {
        out.extend(row[start..start + n].iter().map(|&v| i32::from(v)));
    } else {
        out.extend((0..n).map(|i| i32::from(row[start + i * step])));
    }
}

#[inline(always)]
fn to_u8_fixed(v: i32) -> u8 {
    ((v + 32768) >> 16).clamp(0, 255) as u8
}

/// Converts row `y` into `r`, `g`, `b` (each `width` long, or the same interleaved slice via `put`).
fn convert_row(
    frame: &ff::frame::Video,
    layout: &YuvLayout,
    fx: &FixedYuvToRgb,
    y: usize,
    width: usize,
    s: &mut RowScratch,
    mut put: impl FnMut(usize, u8, u8, u8),
) {
    let wide = layout.bit_depth > 8;
    let yrow = &frame.data(0)[y * frame.stride(0)..];
    load(yrow, wide, 0, 1, width, &mut s.y);
    for v in s.y.iter_mut() {
        *v = (*v - fx.y_off) * fx.y_scale;
    }
    let cw = (width + (1 << layout.shift_x) - 1) >> layout.shift_x;
    if layout.grey {
        for x in 0..width {
            let l = to_u8_fixed(s.y[x]);
            put(x, l, l, l);
        }
        return;
    }
    let cy = y >> layout.shift_y;
    // Chroma terms for the row: s.r/s.g/s.b hold Cb then Cr temporarily.
    if layout.semi_planar {
        let uv = &frame.data(1)[cy * frame.stride(1)..];
        load(uv, wide, 0, 2, cw, &mut s.g);
        load(uv, wide, 1, 2, cw, &mut s.b);
    } else {
        load(
            &frame.data(1)[cy * frame.stride(1)..],
            wide,
            0,
            1,
            cw,
            &mut s.g,
        );
        load(
            &frame.data(2)[cy * frame.stride(2)..],
            wide,
            0,
            1,
            cw,
            &mut s.b,
        );
    }
    // Chroma terms per chroma sample, then widened to one per pixel so that the final loop is a plain zip.
    let mut terms = [Vec::new(), Vec::new(), Vec::new()];
    for (cb, cr) in s.g.iter().zip(&s.b).take(cw) {
        let (cb, cr) = (cb - fx.c_off, cr - fx.c_off);
        terms[0].push(fx.cr_r * cr);
        terms[1].push(-(fx.cb_g * cb + fx.cr_g * cr));
        terms[2].push(fx.cb_b * cb);
    }
    for (c, dst) in [&mut s.r, &mut s.g, &mut s.b].into_iter().enumerate() {
        widen(&terms[c], layout.shift_x, width, dst);
    }
    for (x, (((&l, &cr), &cg), &cb)) in s.y.iter().zip(&s.r).zip(&s.g).zip(&s.b).enumerate() {
        put(
            x,
            to_u8_fixed(l + cr),
            to_u8_fixed(l + cg),
            to_u8_fixed(l + cb),
        );
    }
}

/// Repeats each chroma term `1 << shift` times to cover `width` pixels.
#[inline(always)]
fn widen(src: &[i32], shift: u32, width: usize, dst: &mut Vec<i32>) {
    dst.clear();
    if shift == 0 {
        dst.extend_from_slice(&src[..width]);
    } else {
        dst.extend(src.iter().flat_map(|&v| [v, v]));
        dst.truncate(width);
    }
}

fn write_rgb_from_yuv(
    frame: &ff::frame::Video,
    layout: &YuvLayout,
    conv: &YuvToRgb,
    planar: bool,
    out: &mut [u8],
) {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let fx = FixedYuvToRgb::new(conv);
    if planar {
        let (r, gb) = out.split_at_mut(w * h);
        let (g, b) = gb.split_at_mut(w * h);
        r.par_chunks_mut(w)
            .zip(g.par_chunks_mut(w))
            .zip(b.par_chunks_mut(w))
            .with_min_len(MIN_ROWS_PER_TASK)
            .enumerate()
            .for_each_init(RowScratch::default, |s, (y, ((r, g), b))| {
                convert_row(frame, layout, &fx, y, w, s, |x, pr, pg, pb| {
                    r[x] = pr;
                    g[x] = pg;
                    b[x] = pb;
                })
            });
    } else {
        out.par_chunks_mut(w * 3)
            .with_min_len(MIN_ROWS_PER_TASK)
            .enumerate()
            .for_each_init(RowScratch::default, |s, (y, row)| {
                convert_row(frame, layout, &fx, y, w, s, |x, pr, pg, pb| {
                    row[3 * x] = pr;
                    row[3 * x + 1] = pg;
                    row[3 * x + 2] = pb;
                })
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
