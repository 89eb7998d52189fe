//! CPU conversion of a decoded FFmpeg frame into a slot of a batch: native planes (packed, the `ffmpeg -f
//! rawvideo` layout), interleaved RGB or planar RGB. RGB uses [`YuvToRgb`], the formula the GPU kernels share.

use ffmpeg_next as ff;
use ff::format::Pixel;
use rayon::prelude::*;

use crate::color::{ColorMatrix, ColorRange, ColorType, YuvToRgb};
use crate::error::{Error, Result};
use crate::ffi::ffmpeg::packed_plane_layout;

/// Rows per rayon task: small frames are converted on one thread.
const MIN_ROWS_PER_TASK: usize = 16;

/// Bytes one frame takes in `color` at this size and pixel format.
pub fn frame_bytes(color: ColorType, format: Pixel, width: u32, height: u32) -> Result<usize> {
    Ok(match color {
        ColorType::Native => packed_plane_layout(format, width, height)?.iter().map(|(r, n)| r * n).sum(),
        ColorType::Rgb | ColorType::Rgbp => width as usize * height as usize * 3,
    })
}

/// Writes `frame` into `out` (exactly [`frame_bytes`] long) as `color`.
pub fn write_frame(frame: &ff::frame::Video, color: ColorType, matrix: ColorMatrix, range: ColorRange, out: &mut [u8]) -> Result<()> {
    match color {
        ColorType::Native => write_native(frame, out),
        ColorType::Rgb | ColorType::Rgbp => {
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

/// Copies each plane row by row with no padding.
fn write_native(frame: &ff::frame::Video, out: &mut [u8]) -> Result<()> {
    let layout = packed_plane_layout(frame.format(), frame.width(), frame.height())?;
    let total: usize = layout.iter().map(|(r, n)| r * n).sum();
    if out.len() != total {
        return Err(Error::InvalidArgument(format!("native slot of {} bytes for a {total}-byte frame", out.len())));
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
    let l = |bit_depth, shift_x, shift_y| YuvLayout { bit_depth, shift_x, shift_y, semi_planar: false, grey: false };
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
        Pixel::NV12 => YuvLayout { semi_planar: true, ..l(8, 1, 1) },
        Pixel::GRAY8 => YuvLayout { grey: true, ..l(8, 0, 0) },
        Pixel::GRAY10LE => YuvLayout { grey: true, ..l(10, 0, 0) },
        _ => return None,
    })
}

#[inline(always)]
fn sample(row: &[u8], x: usize, wide: bool) -> f32 {
    if wide {
        f32::from(u16::from_le_bytes([row[2 * x], row[2 * x + 1]]))
    } else {
        f32::from(row[x])
    }
}

/// Converts one row of pixels; `put(x, rgb)` stores the result.
#[inline(always)]
fn convert_row(
    frame: &ff::frame::Video,
    layout: &YuvLayout,
    conv: &YuvToRgb,
    y: usize,
    width: usize,
    mut put: impl FnMut(usize, [u8; 3]),
) {
    let wide = layout.bit_depth > 8;
    let yrow = &frame.data(0)[y * frame.stride(0)..];
    let mid = f32::from(1u16 << (layout.bit_depth - 1));
    if layout.grey {
        for x in 0..width {
            put(x, conv.apply(sample(yrow, x, wide), mid, mid));
        }
        return;
    }
    let cy = y >> layout.shift_y;
    if layout.semi_planar {
        let uv = &frame.data(1)[cy * frame.stride(1)..];
        for x in 0..width {
            let cx = x >> layout.shift_x;
            put(x, conv.apply(sample(yrow, x, wide), f32::from(uv[2 * cx]), f32::from(uv[2 * cx + 1])));
        }
        return;
    }
    let urow = &frame.data(1)[cy * frame.stride(1)..];
    let vrow = &frame.data(2)[cy * frame.stride(2)..];
    for x in 0..width {
        let cx = x >> layout.shift_x;
        put(x, conv.apply(sample(yrow, x, wide), sample(urow, cx, wide), sample(vrow, cx, wide)));
    }
}

fn write_rgb_from_yuv(frame: &ff::frame::Video, layout: &YuvLayout, conv: &YuvToRgb, planar: bool, out: &mut [u8]) {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    if planar {
        let (r, gb) = out.split_at_mut(w * h);
        let (g, b) = gb.split_at_mut(w * h);
        r.par_chunks_mut(w)
            .zip(g.par_chunks_mut(w))
            .zip(b.par_chunks_mut(w))
            .with_min_len(MIN_ROWS_PER_TASK)
            .enumerate()
            .for_each(|(y, ((r, g), b))| {
                convert_row(frame, layout, conv, y, w, |x, [pr, pg, pb]| {
                    r[x] = pr;
                    g[x] = pg;
                    b[x] = pb;
                })
            });
    } else {
        out.par_chunks_mut(w * 3).with_min_len(MIN_ROWS_PER_TASK).enumerate().for_each(|(y, row)| {
            convert_row(frame, layout, conv, y, w, |x, rgb| row[3 * x..3 * x + 3].copy_from_slice(&rgb))
        });
    }
    debug_assert_eq!(out.len(), w * h * 3);
    let _ = h;
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
    scaler.run(frame, &mut rgb).map_err(|e| Error::ffmpeg("sws_scale", e))?;
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
