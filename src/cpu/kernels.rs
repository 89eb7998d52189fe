//! The row kernels of the CPU conversion: planar YUV rows to RGB bytes, and the gather + bilinear rows of the fused
//! crop / resize / normalise.
//!
//! Every kernel works on whole rows held in plain `f32` arrays and loops over them with `zip`, so that the
//! compiler turns the arithmetic into SIMD on the baseline target (SSE2 on x86-64: four lanes) without
//! hand-written intrinsics. The arithmetic is [`YuvToRgb::apply`]'s, operation for operation and in the same
//! order (`y + cr_r * cr`, `(y - cb_g * cb) - cr_g * cr`, `y + cb_b * cb`, then `(v + 0.5)` clamped and truncated),
//! so each pixel is bit-identical to the scalar formula the tests and the GPU kernel are checked against.

use crate::frame::color::YuvToRgb;

/// Where a row of samples lies in a plane and how it is stored.
#[derive(Clone, Copy)]
pub(crate) struct Samples<'a> {
    /// The plane's bytes from the row's first sample on.
    pub row: &'a [u8],
    /// Samples are 16-bit little-endian (high bit depths) rather than bytes.
    pub wide: bool,
    /// First sample, in samples.
    pub start: usize,
    /// Distance between samples, in samples (2 for one chroma component of NV12).
    pub step: usize,
}

/// `(sample - off) * scale` for `n` samples of `src`, into `out` (resized to `n`).
#[inline(always)]
pub(crate) fn load_scaled(src: Samples<'_>, n: usize, off: f32, scale: f32, out: &mut Vec<f32>) {
    out.clear();
    out.resize(n, 0.0);
    let Samples {
        row,
        wide,
        start,
        step,
    } = src;
    match (wide, step) {
        (false, 1) => {
            for (o, &v) in out.iter_mut().zip(&row[start..start + n]) {
                *o = (f32::from(v) - off) * scale;
            }
        }
        (false, _) => {
            for (o, &v) in out.iter_mut().zip(row[start..].iter().step_by(step)) {
                *o = (f32::from(v) - off) * scale;
            }
        }
        (true, _) => {
            let samples = row[2 * start..].chunks_exact(2).step_by(step);
            for (o, v) in out.iter_mut().zip(samples) {
                *o = (f32::from(u16::from_le_bytes([v[0], v[1]])) - off) * scale;
            }
        }
    }
}

/// The chroma terms of one chroma row, one value per pixel (each chroma sample repeated `1 << shift_x` times):
/// what [`YuvToRgb::apply`] adds to or subtracts from the luma term.
#[derive(Default)]
pub(crate) struct ChromaTerms {
    /// `cr_r * cr`, added for R.
    pub r: Vec<f32>,
    /// `cb_g * cb`, subtracted first for G.
    pub g_cb: Vec<f32>,
    /// `cr_g * cr`, subtracted second for G.
    pub g_cr: Vec<f32>,
    /// `cb_b * cb`, added for B.
    pub b: Vec<f32>,
    cb: Vec<f32>,
    cr: Vec<f32>,
}

impl ChromaTerms {
    /// Zero terms for `width` pixels (a grey picture: R = G = B = the luma term).
    pub(crate) fn grey(&mut self, width: usize) {
        for t in [&mut self.r, &mut self.g_cb, &mut self.g_cr, &mut self.b] {
            t.clear();
            t.resize(width, 0.0);
        }
    }

    /// The terms of the chroma samples `cb` and `cr` (`chroma_width` each) for `width` pixels.
    pub(crate) fn compute(
        &mut self,
        conv: &YuvToRgb,
        cb: Samples<'_>,
        cr: Samples<'_>,
        chroma_width: usize,
        shift_x: u32,
        width: usize,
    ) {
        load_scaled(cb, chroma_width, conv.c_off, conv.c_scale, &mut self.cb);
        load_scaled(cr, chroma_width, conv.c_off, conv.c_scale, &mut self.cr);
        self.spread_terms(conv, shift_x, width);
    }

    /// The four terms for `width` pixels from the scaled chroma samples already in `cb` and `cr`.
    fn spread_terms(&mut self, conv: &YuvToRgb, shift_x: u32, width: usize) {
        let cr = &self.cr;
        let cb = &self.cb;
        spread(cr, shift_x, width, &mut self.r, |v| conv.cr_r * v);
        spread(cb, shift_x, width, &mut self.g_cb, |v| conv.cb_g * v);
        spread(cr, shift_x, width, &mut self.g_cr, |v| conv.cr_g * v);
        spread(cb, shift_x, width, &mut self.b, |v| conv.cb_b * v);
    }
}

/// `dst[x] = f(src[x >> shift])` for `x < width` (`shift` 0 or 1).
#[inline(always)]
fn spread(src: &[f32], shift: u32, width: usize, dst: &mut Vec<f32>, f: impl Fn(f32) -> f32) {
    dst.clear();
    if shift == 0 {
        dst.extend(src[..width].iter().map(|&v| f(v)));
    } else {
        dst.resize(2 * src.len(), 0.0);
        for (d, &v) in dst.chunks_exact_mut(2).zip(src) {
            let t = f(v);
            d[0] = t;
            d[1] = t;
        }
        dst.truncate(width);
    }
}

/// [`YuvToRgb`]'s final step: `(v + 0.5)` clamped to 0..=255 and truncated, the same value as
/// `(v + 0.5).clamp(0.0, 255.0) as u8`. Rust's saturating `as` does not vectorise on x86-64's baseline (it is three
/// times slower per value than the whole rest of the row), so the integer part is taken with the usual float trick
/// instead: adding 2^23 leaves the value rounded to the nearest integer in the low mantissa bits, and one
/// comparison turns that rounding into truncation (the value is non-negative after the clamp).
#[inline(always)]
fn to_u8(v: f32) -> u8 {
    const TWO_23: f32 = 8_388_608.0;
    let x = (v + 0.5).clamp(0.0, 255.0);
    let y = x + TWO_23;
    let nearest = y.to_bits().wrapping_sub(TWO_23.to_bits());
    let rounded_up = u32::from(y - TWO_23 > x);
    nearest.wrapping_sub(rounded_up) as u8
}

/// One row of RGB from its luma terms (`(y - y_off) * y_scale`) and chroma terms, into three planes.
#[inline(always)]
pub(crate) fn rgb_row_planar(
    luma: &[f32],
    c: &ChromaTerms,
    r: &mut [u8],
    g: &mut [u8],
    b: &mut [u8],
) {
    let terms = c.r.iter().zip(&c.g_cb).zip(&c.g_cr).zip(&c.b);
    let outs = r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut());
    for ((&y, (((&tr, &tgb), &tgr), &tb)), ((r, g), b)) in luma.iter().zip(terms).zip(outs) {
        *r = to_u8(y + tr);
        *g = to_u8((y - tgb) - tgr);
        *b = to_u8(y + tb);
    }
}

/// One row of interleaved RGB (`3 * width` bytes) from its luma and chroma terms; `planes` is scratch for the
/// three planes the kernel computes first (then interleaved in one pass).
#[inline(always)]
pub(crate) fn rgb_row_interleaved(
    luma: &[f32],
    c: &ChromaTerms,
    planes: &mut [Vec<u8>; 3],
    out: &mut [u8],
) {
    let width = luma.len();
    for p in planes.iter_mut() {
        p.clear();
        p.resize(width, 0);
    }
    let [r, g, b] = planes;
    rgb_row_planar(luma, c, r, g, b);
    for (px, ((&r, &g), &b)) in out.chunks_exact_mut(3).zip(r.iter().zip(&*g).zip(&*b)) {
        px[0] = r;
        px[1] = g;
        px[2] = b;
    }
}

/// Source columns (or rows) of a bilinear resize and their weights, torch's `area_pixel_compute_source_index`
/// (`align_corners = false`), as the GPU kernel computes them.
pub(crate) struct Taps {
    /// First source position of each output position.
    pub i0: Vec<usize>,
    /// Second source position (`i0 + 1`, or `i0` at the last source position).
    pub i1: Vec<usize>,
    /// Weight of `i0`.
    pub w0: Vec<f32>,
    /// Weight of `i1`.
    pub w1: Vec<f32>,
}

impl Taps {
    /// The taps of resizing `in_size` positions to `out_size`.
    pub(crate) fn new(in_size: usize, out_size: usize) -> Taps {
        let scale = in_size as f32 / out_size as f32;
        let mut t = Taps {
            i0: Vec::with_capacity(out_size),
            i1: Vec::with_capacity(out_size),
            w0: Vec::with_capacity(out_size),
            w1: Vec::with_capacity(out_size),
        };
        for dst in 0..out_size {
            let src = (scale * (dst as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (src as usize).min(in_size - 1);
            let i1 = if i0 < in_size - 1 { i0 + 1 } else { i0 };
            let w1 = src - i0 as f32;
            t.i0.push(i0);
            t.i1.push(i1);
            t.w0.push(1.0 - w1);
            t.w1.push(w1);
        }
        t
    }
}

/// The rounded RGB values (as `f32`) of chosen pixels of one source row, one array per channel.
#[derive(Default)]
pub(crate) struct GatheredRgb {
    pub rgb: [Vec<f32>; 3],
    luma: Vec<f32>,
    terms: ChromaTerms,
    /// The whole span of the crop's row converted (when that is less work than converting pixel by pixel).
    planes: [Vec<u8>; 3],
}

/// One 8-bit planar YUV picture, cropped: the three planes with their strides, the crop's origin and the chroma
/// subsampling.
pub(crate) struct YuvPlanes<'a> {
    pub planes: [(&'a [u8], usize); 3],
    pub left: usize,
    pub top: usize,
    /// Width of the crop.
    pub width: usize,
    pub shift_x: u32,
    pub shift_y: u32,
}

impl GatheredRgb {
    /// Converts the pixels at columns `xs` (crop coordinates) of row `y` of `pic`.
    pub(crate) fn gather(&mut self, pic: &YuvPlanes<'_>, conv: &YuvToRgb, y: usize, xs: &[usize]) {
        let n = xs.len();
        let [(luma, ls), (cb, cbs), (cr, crs)] = pic.planes;
        let sy = pic.top + y;
        let lrow = &luma[sy * ls..];
        let cy = sy >> pic.shift_y;
        let (cbrow, crrow) = (&cb[cy * cbs..], &cr[cy * crs..]);
        // Converting the crop's whole row with the row kernel costs about a third of converting one pixel at a
        // time (gathered loads, no SIMD): do that when the row is not much longer than the pixels wanted. Either
        // way the luma and chroma terms go through the row kernel; `lead` is where pixel `x` of `xs` lies in its
        // output (the whole row), `None` when the output holds exactly the pixels of `xs`.
        let lead = if pic.width <= 2 * n {
            let x0 = pic.left >> pic.shift_x << pic.shift_x;
            let lead = pic.left - x0;
            let span = lead + pic.width;
            let at = |row, start| Samples {
                row,
                wide: false,
                start,
                step: 1,
            };
            load_scaled(at(lrow, x0), span, conv.y_off, conv.y_scale, &mut self.luma);
            let cw = (span + (1 << pic.shift_x) - 1) >> pic.shift_x;
            let c0 = x0 >> pic.shift_x;
            self.terms
                .compute(conv, at(cbrow, c0), at(crrow, c0), cw, pic.shift_x, span);
            Some(lead)
        } else {
            self.luma.clear();
            self.luma.extend(
                xs.iter()
                    .map(|&x| (f32::from(lrow[pic.left + x]) - conv.y_off) * conv.y_scale),
            );
            let t = &mut self.terms;
            t.cb.clear();
            t.cr.clear();
            for &x in xs {
                let cx = (pic.left + x) >> pic.shift_x;
                t.cb.push((f32::from(cbrow[cx]) - conv.c_off) * conv.c_scale);
                t.cr.push((f32::from(crrow[cx]) - conv.c_off) * conv.c_scale);
            }
            t.spread_terms(conv, 0, n);
            None
        };
        let len = self.luma.len();
        for p in self.planes.iter_mut() {
            p.clear();
            p.resize(len, 0);
        }
        let [r8, g8, b8] = &mut self.planes;
        rgb_row_planar(&self.luma, &self.terms, r8, g8, b8);
        for (out, plane) in self.rgb.iter_mut().zip(&self.planes) {
            out.clear();
            match lead {
                Some(lead) => out.extend(xs.iter().map(|&x| f32::from(plane[lead + x]))),
                None => out.extend(plane.iter().map(|&v| f32::from(v))),
            }
        }
    }
}

/// One output row of channel values: bilinear interpolation of the rounded RGB values of the two source rows
/// (`top` and `bottom`, each gathered at the columns `i0` then `i1` of the taps, `2 * out_width` values), then
/// `(v * scale - mean) / std` when normalising. The same arithmetic, in the same order, as the GPU kernel's.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn bilinear_row(
    top: &[f32],
    bottom: &[f32],
    cols: &Taps,
    wy0: f32,
    wy1: f32,
    normalize: Option<(f32, f32, f32)>,
    out: &mut [f32],
) {
    let w = out.len();
    let (ta, tb) = top.split_at(w);
    let (ba, bb) = bottom.split_at(w);
    let taps = cols.w0.iter().zip(&cols.w1);
    let src = ta.iter().zip(tb).zip(ba.iter().zip(bb));
    for (o, ((&wx0, &wx1), ((&a, &b), (&c, &e)))) in out.iter_mut().zip(taps.zip(src)) {
        let top_v = wx0 * a + wx1 * b;
        let bottom_v = wx0 * c + wx1 * e;
        *o = wy0 * top_v + wy1 * bottom_v;
    }
    if let Some((scale, mean, std)) = normalize {
        for o in out.iter_mut() {
            *o = (*o * scale - mean) / std;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::color::{ColorMatrix, ColorRange};

    #[test]
    fn rows_are_bit_identical_to_the_scalar_formula() {
        let conv = YuvToRgb::new(ColorMatrix::Bt709, ColorRange::Limited, 8);
        // A 7-pixel 4:2:0 row (odd width) with every kind of value, including out-of-range ones.
        let y: Vec<u8> = vec![0, 16, 17, 128, 200, 235, 255];
        let cb: Vec<u8> = vec![0, 128, 240, 255];
        let cr: Vec<u8> = vec![255, 16, 128, 3];
        let mut luma = Vec::new();
        fn sample(row: &[u8]) -> Samples<'_> {
            Samples {
                row,
                wide: false,
                start: 0,
                step: 1,
            }
        }
        load_scaled(sample(&y), 7, conv.y_off, conv.y_scale, &mut luma);
        let mut terms = ChromaTerms::default();
        terms.compute(&conv, sample(&cb), sample(&cr), 4, 1, 7);
        let (mut r, mut g, mut b) = (vec![0; 7], vec![0; 7], vec![0; 7]);
        rgb_row_planar(&luma, &terms, &mut r, &mut g, &mut b);
        let mut planes = Default::default();
        let mut inter = vec![0; 21];
        rgb_row_interleaved(&luma, &terms, &mut planes, &mut inter);
        for x in 0..7 {
            let want = conv.apply(f32::from(y[x]), f32::from(cb[x / 2]), f32::from(cr[x / 2]));
            assert_eq!([r[x], g[x], b[x]], want, "pixel {x}");
            assert_eq!(inter[3 * x..3 * x + 3], want, "pixel {x} interleaved");
        }
    }

    #[test]
    fn to_u8_is_the_saturating_cast() {
        let edge = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.5,
            -0.500_000_06,
            0.499_999_97,
            0.5,
            1.5,
            2.5,
            254.5,
            254.499_98,
            255.0,
            255.49,
            1e9,
        ];
        let sweep = (-2_000_000..28_000_000).step_by(7).map(|i| i as f32 * 1e-5);
        for v in edge.into_iter().chain(sweep) {
            assert_eq!(to_u8(v), (v + 0.5).clamp(0.0, 255.0) as u8, "{v}");
        }
    }

    #[test]
    fn gathered_pixels_are_the_scalar_formula_on_both_paths() {
        let conv = YuvToRgb::new(ColorMatrix::Bt601, ColorRange::Limited, 8);
        // A 4:2:0 picture 20x4 with every sample different; the crop starts at an odd column.
        let luma: Vec<u8> = (0..80).map(|i| (i * 37 % 256) as u8).collect();
        let cb: Vec<u8> = (0..20).map(|i| (i * 53 % 256) as u8).collect();
        let cr: Vec<u8> = (0..20).map(|i| (255 - i * 29 % 256) as u8).collect();
        let pic = YuvPlanes {
            planes: [(&luma[..], 20), (&cb[..], 10), (&cr[..], 10)],
            left: 3,
            top: 1,
            width: 16,
            shift_x: 1,
            shift_y: 1,
        };
        // 10 columns: the whole crop row is converted (16 <= 2 x 10); 3 columns: pixel by pixel.
        for xs in [vec![0, 1, 2, 5, 8, 9, 11, 12, 14, 15], vec![15, 0, 7]] {
            let mut g = GatheredRgb::default();
            g.gather(&pic, &conv, 2, &xs);
            for (k, &x) in xs.iter().enumerate() {
                let (sx, sy) = (3 + x, 3);
                let want = conv.apply(
                    f32::from(luma[sy * 20 + sx]),
                    f32::from(cb[(sy / 2) * 10 + sx / 2]),
                    f32::from(cr[(sy / 2) * 10 + sx / 2]),
                );
                let got = [g.rgb[0][k], g.rgb[1][k], g.rgb[2][k]];
                assert_eq!(got, want.map(f32::from), "column {x} of {xs:?}");
            }
        }
    }

    #[test]
    fn taps_follow_half_pixel_centres() {
        let t = Taps::new(4, 2);
        assert_eq!((t.i0.clone(), t.i1.clone()), (vec![0, 2], vec![1, 3]));
        assert_eq!((t.w0[0], t.w1[0]), (0.5, 0.5));
        let up = Taps::new(2, 4);
        assert_eq!(up.i0, vec![0, 0, 0, 1]);
        assert_eq!(up.i1, vec![1, 1, 1, 1]);
        assert_eq!(up.w1[0], 0.0);
    }
}
