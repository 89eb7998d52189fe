//! The row kernels of the CPU conversion: planar YUV rows to RGB bytes, and the gather + bilinear rows of the fused
//! crop / resize / normalise.
//!
//! Every kernel works on whole rows held in plain `f32` arrays and loops over them with `zip`, so that the
//! compiler turns the arithmetic into SIMD on the baseline target (SSE2 on x86-64: four lanes) without
//! hand-written intrinsics. The arithmetic is [`YuvToRgb::apply`]'s, operation for operation and in the same
//! order (`y + cr_r * cr`, `(y - cb_g * cb) - cr_g * cr`, `y + cb_b * cb`, then `(v + 0.5)` clamped and truncated),
//! so each pixel is bit-identical to the scalar formula the tests and the GPU kernel are checked against. The one
//! exception is the full-frame RGB of 8-bit pictures, which [`rgb_rows`] hands to the fixed-point kernel of
//! [`rgb8`](crate::cpu::rgb8) (within one level of the exact formula, as fast as FFmpeg's converter).

use crate::cpu::rgb8::{rgb_rows_8bit, FixedTerms};
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

impl<'a> Samples<'a> {
    /// The samples of `row` from its first on, one after another (`wide`: 16-bit little-endian).
    pub(crate) fn contiguous(row: &'a [u8], wide: bool) -> Self {
        Samples {
            row,
            wide,
            start: 0,
            step: 1,
        }
    }
}

/// `(sample - off) * scale` for `n` samples of `src`, into `out` (resized to `n`).
#[inline(always)]
pub(crate) fn load_scaled(src: Samples<'_>, n: usize, off: f32, scale: f32, out: &mut Vec<f32>) {
    // Every value is overwritten below: resizing a reused buffer to its length again writes nothing.
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
    #[inline(always)]
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
    if shift == 0 {
        dst.clear();
        dst.extend(src[..width].iter().map(|&v| f(v)));
    } else {
        // Every value is overwritten below: resizing a reused buffer to its length again writes nothing.
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
/// `(v + 0.5).clamp(0.0, 255.0) as u8`. Rust's saturating `as` does not vectorise on x86-64 (it is three times
/// slower per value than the whole rest of the row), and after the clamp nothing is left to saturate: the value is
/// a number within 0..=255, so the plain truncating conversion (one instruction per eight values with AVX2) gives
/// the same integer.
#[inline(always)]
// `max` then `min` rather than `clamp`: `clamp` keeps a NaN, `max` turns it into 0.0.
#[allow(clippy::manual_clamp)]
fn to_u8(v: f32) -> u8 {
    // `max` gives 0.0 for NaN, so `x` is always a number in 0.0..=255.0.
    let x = (v + 0.5).max(0.0).min(255.0);
    // SAFETY: `x` is finite and within 0.0..=255.0 (see above), so its integer part fits in an `i32`.
    unsafe { x.to_int_unchecked::<i32>() as u8 }
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
        [*r, *g, *b] = rgb_levels(y, [tr, tgb, tgr, tb]);
    }
}

/// One pixel's R, G, B bytes from its luma term and its four chroma terms (`cr_r * cr`, `cb_g * cb`,
/// `cr_g * cr`, `cb_b * cb`): [`YuvToRgb::apply`]'s last steps, in its order.
#[inline(always)]
fn rgb_levels(y: f32, [tr, tgb, tgr, tb]: [f32; 4]) -> [u8; 3] {
    [to_u8(y + tr), to_u8((y - tgb) - tgr), to_u8(y + tb)]
}

/// Per-task buffers of the full-size conversion ([`rgb_rows`]).
#[derive(Default)]
pub(crate) struct RowScratch {
    luma: Vec<f32>,
    terms: ChromaTerms,
    fixed: FixedTerms,
    planes: [Vec<u8>; 3],
}

/// The luma rows that share one chroma row (one, or two for 4:2:0), with that chroma row, for [`rgb_rows`].
pub(crate) struct RowGroup<'a> {
    /// The luma rows, top first (at most two).
    pub luma: &'a [Samples<'a>],
    /// The Cb and Cr rows, their width in samples and log2 of the horizontal subsampling; `None` for grey.
    pub chroma: Option<(Samples<'a>, Samples<'a>, usize, u32)>,
    /// Pixels per row.
    pub width: usize,
}

/// Where [`rgb_rows`] writes: `luma.len()` rows of `width` pixels.
pub(crate) enum RgbRows<'a> {
    /// Three planes of `rows * width` bytes each.
    Planar([&'a mut [u8]; 3]),
    /// `rows * 3 * width` bytes, R, G, B per pixel.
    Interleaved(&'a mut [u8]),
}

impl RgbRows<'_> {
    /// Row `k` of rows `width` pixels long.
    pub(crate) fn row(&mut self, k: usize, width: usize) -> RowOut<'_> {
        let at = k * width..(k + 1) * width;
        match self {
            RgbRows::Planar([r, g, b]) => {
                RowOut::Planar(&mut r[at.clone()], &mut g[at.clone()], &mut b[at])
            }
            RgbRows::Interleaved(dst) => RowOut::Interleaved(&mut dst[3 * at.start..3 * at.end]),
        }
    }
}

/// One row of RGB output.
pub(crate) enum RowOut<'a> {
    /// Three planes, one row of each.
    Planar(&'a mut [u8], &'a mut [u8], &'a mut [u8]),
    /// R, G, B per pixel.
    Interleaved(&'a mut [u8]),
}

impl RowOut<'_> {
    /// Pixel `x`'s R, G, B.
    #[inline(always)]
    pub(crate) fn set(&mut self, x: usize, px: [u8; 3]) {
        match self {
            RowOut::Planar(r, g, b) => (r[x], g[x], b[x]) = (px[0], px[1], px[2]),
            RowOut::Interleaved(dst) => dst[3 * x..3 * x + 3].copy_from_slice(&px),
        }
    }

    /// Panics unless the row holds `n` pixels (what the vector kernels' unchecked stores rely on).
    pub(crate) fn check(&self, n: usize) {
        let fits = match self {
            RowOut::Planar(r, g, b) => r.len() >= n && g.len() >= n && b.len() >= n,
            RowOut::Interleaved(dst) => dst.len() >= 3 * n,
        };
        assert!(fits, "output row shorter than the luma row");
    }
}

/// Converts the rows of `group` to RGB into `out`. 8-bit luma goes through the fixed-point conversion of
/// [`rgb8`](crate::cpu::rgb8) (within one level of the exact formula); deeper samples through the `f32` rows here,
/// with the widest vectors this CPU has (AVX2 where present): the same operations in the same order either way, so
/// the same bits as [`YuvToRgb::apply`].
pub(crate) fn rgb_rows(
    conv: &YuvToRgb,
    group: &RowGroup<'_>,
    s: &mut RowScratch,
    out: RgbRows<'_>,
) {
    if group.luma.first().is_some_and(|l| !l.wide && l.step == 1) {
        return rgb_rows_8bit(conv, group, &mut s.fixed, out);
    }
    #[cfg(target_arch = "x86_64")]
    if wide_vectors() {
        // SAFETY: AVX2 is present (checked just above).
        return unsafe { rgb_rows_avx2(conv, group, s, out) };
    }
    rgb_rows_f32(conv, group, s, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rgb_rows_avx2(
    conv: &YuvToRgb,
    group: &RowGroup<'_>,
    s: &mut RowScratch,
    out: RgbRows<'_>,
) {
    rgb_rows_f32(conv, group, s, out)
}

/// [`rgb_rows`] in `f32`, one term per pixel (compiled twice: for the baseline target and for AVX2).
#[inline(always)]
fn rgb_rows_f32(conv: &YuvToRgb, group: &RowGroup<'_>, s: &mut RowScratch, out: RgbRows<'_>) {
    let width = group.width;
    match group.chroma {
        None => s.terms.grey(width),
        Some((cb, cr, chroma_width, shift_x)) => {
            s.terms.compute(conv, cb, cr, chroma_width, shift_x, width)
        }
    }
    let mut out = out;
    for (k, &luma) in group.luma.iter().enumerate() {
        let at = k * width..(k + 1) * width;
        // Three planes: the output's rows, or for interleaved output the scratch rows interleaved after.
        let mut planes = std::mem::take(&mut s.planes);
        let (r, g, b, interleaved) = match &mut out {
            RgbRows::Planar([r, g, b]) => {
                (&mut r[at.clone()], &mut g[at.clone()], &mut b[at], None)
            }
            RgbRows::Interleaved(dst) => {
                for p in planes.iter_mut() {
                    // Overwritten below: resizing a reused buffer to its length again writes nothing.
                    p.resize(width, 0);
                }
                let [r, g, b] = &mut planes;
                let dst = &mut dst[3 * at.start..3 * at.end];
                (&mut r[..], &mut g[..], &mut b[..], Some(dst))
            }
        };
        load_scaled(luma, width, conv.y_off, conv.y_scale, &mut s.luma);
        rgb_row_planar(&s.luma, &s.terms, r, g, b);
        if let Some(dst) = interleaved {
            interleave(r, g, b, dst);
        }
        s.planes = planes;
    }
}

/// `out[3 * x + c]` = plane `c` at `x`.
#[inline(always)]
fn interleave(r: &[u8], g: &[u8], b: &[u8], out: &mut [u8]) {
    for (px, ((&r, &g), &b)) in out.chunks_exact_mut(3).zip(r.iter().zip(g).zip(b)) {
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

/// One 8-bit planar YUV picture, cropped: the three planes with their strides, the crop's origin and the chroma
/// subsampling.
pub(crate) struct YuvPlanes<'a> {
    pub planes: [(&'a [u8], usize); 3],
    pub left: usize,
    pub top: usize,
    pub shift_x: u32,
    pub shift_y: u32,
}

/// [`to_u8`] as an `f32` (the level `0.0..=255.0`), in float operations only: `(v + 0.5)` clamped, then rounded to
/// the nearest integer by adding and subtracting 2^23, less one where that rounded up. Equal to
/// `f32::from(to_u8(v))` for every value but NaN (which the conversion of 8-bit samples never gives).
#[inline(always)]
fn level(v: f32) -> f32 {
    const TWO_23: f32 = 8_388_608.0;
    let x = (v + 0.5).clamp(0.0, 255.0);
    let nearest = (x + TWO_23) - TWO_23;
    if nearest > x {
        nearest - 1.0
    } else {
        nearest
    }
}

/// The source columns of a fused resize (crop, bilinear resize, then normalisation), worked out once per frame:
/// for every output column the luma and chroma columns of its two taps, in picture coordinates, and the taps'
/// weights.
pub(crate) struct ResizeColumns {
    luma: [Vec<usize>; 2],
    chroma: [Vec<usize>; 2],
    w0: Vec<f32>,
    w1: Vec<f32>,
    /// The largest luma and chroma column: every row is checked against them once, so the gathers index
    /// unchecked.
    max_luma: usize,
    max_chroma: usize,
}

impl ResizeColumns {
    /// The columns of `pic`'s crop that the horizontal taps `cols` read.
    pub(crate) fn new(pic: &YuvPlanes<'_>, cols: &Taps) -> Self {
        let luma =
            [&cols.i0, &cols.i1].map(|i| i.iter().map(|&x| pic.left + x).collect::<Vec<_>>());
        let chroma = luma
            .clone()
            .map(|l| l.iter().map(|&x| x >> pic.shift_x).collect::<Vec<_>>());
        let max = |v: &[Vec<usize>; 2]| v.iter().flatten().copied().max().unwrap_or(0);
        ResizeColumns {
            max_luma: max(&luma),
            max_chroma: max(&chroma),
            luma,
            chroma,
            w0: cols.w0.clone(),
            w1: cols.w1.clone(),
        }
    }

    /// Output columns.
    pub(crate) fn len(&self) -> usize {
        self.w0.len()
    }
}

/// `row[cols[k]]` for every `k`, into `dst`.
#[inline(always)]
fn gather(dst: &mut Vec<u8>, row: &[u8], cols: &[usize], max: usize) {
    assert!(max < row.len(), "column {max} of a {}-byte row", row.len());
    dst.clear();
    // SAFETY: every column is at most `max` (`ResizeColumns` keeps its maximum), which is inside `row`.
    dst.extend(cols.iter().map(|&x| unsafe { *row.get_unchecked(x) }));
}

/// The samples one source row needs: luma at both taps' columns, and the two chroma components at both taps'
/// columns (kept for the next row of the same chroma row).
#[derive(Default)]
pub(crate) struct RowSamples {
    luma: [Vec<u8>; 2],
    /// The chroma row `chroma` holds (`None`: nothing yet).
    chroma_row: Option<usize>,
    /// Cb and Cr at the first taps' columns, then at the second's.
    chroma: [Vec<u8>; 4],
}

impl RowSamples {
    /// Gathers what row `y` of `pic`'s crop needs at `cols`.
    #[inline(always)]
    pub(crate) fn gather(&mut self, pic: &YuvPlanes<'_>, cols: &ResizeColumns, y: usize) {
        let [(luma, ls), (cb, cbs), (cr, crs)] = pic.planes;
        let sy = pic.top + y;
        let lrow = &luma[sy * ls..];
        for (dst, c) in self.luma.iter_mut().zip(&cols.luma) {
            gather(dst, lrow, c, cols.max_luma);
        }
        let cy = sy >> pic.shift_y;
        if self.chroma_row != Some(cy) {
            let (cbrow, crrow) = (&cb[cy * cbs..], &cr[cy * crs..]);
            let [cb0, cr0, cb1, cr1] = &mut self.chroma;
            gather(cb0, cbrow, &cols.chroma[0], cols.max_chroma);
            gather(cr0, crrow, &cols.chroma[0], cols.max_chroma);
            gather(cb1, cbrow, &cols.chroma[1], cols.max_chroma);
            gather(cr1, crrow, &cols.chroma[1], cols.max_chroma);
            self.chroma_row = Some(cy);
        }
    }
}

/// One source row interpolated horizontally, per channel: `w0 * a + w1 * b`, where `a` and `b` are the rounded
/// RGB levels ([`YuvToRgb`], as `f32`) of the row's pixels at the two taps' columns of each output column. The
/// vertical step ([`vertical_row`]) then combines two such rows; together the same arithmetic, in the same
/// order, as the GPU kernel's bilinear interpolation of four converted pixels.
#[inline(always)]
fn horizontal_row_impl(
    conv: &YuvToRgb,
    s: &RowSamples,
    cols: &ResizeColumns,
    out: &mut [Vec<f32>; 3],
) {
    let n = cols.len();
    let (y0, y1) = (&s.luma[0][..n], &s.luma[1][..n]);
    let [cb0, cr0, cb1, cr1] = &s.chroma;
    let (cb0, cr0, cb1, cr1) = (&cb0[..n], &cr0[..n], &cb1[..n], &cr1[..n]);
    let (w0, w1) = (&cols.w0[..n], &cols.w1[..n]);
    for o in out.iter_mut() {
        if o.len() != n {
            o.clear();
            o.resize(n, 0.0);
        }
    }
    let [r, g, b] = out;
    let (r, g, b) = (&mut r[..n], &mut g[..n], &mut b[..n]);
    let rgb = |y: u8, cb: u8, cr: u8| {
        let l = (f32::from(y) - conv.y_off) * conv.y_scale;
        let cb = (f32::from(cb) - conv.c_off) * conv.c_scale;
        let cr = (f32::from(cr) - conv.c_off) * conv.c_scale;
        (
            level(l + conv.cr_r * cr),
            level((l - conv.cb_g * cb) - conv.cr_g * cr),
            level(l + conv.cb_b * cb),
        )
    };
    for i in 0..n {
        let (ra, ga, ba) = rgb(y0[i], cb0[i], cr0[i]);
        let (rb, gb, bb) = rgb(y1[i], cb1[i], cr1[i]);
        r[i] = w0[i] * ra + w1[i] * rb;
        g[i] = w0[i] * ga + w1[i] * gb;
        b[i] = w0[i] * ba + w1[i] * bb;
    }
}

/// One output row of one channel from two horizontally interpolated source rows: `wy0 * top + wy1 * bottom`,
/// then `(v * scale - mean) / std` when normalising.
#[inline(always)]
fn vertical_row_impl(
    top: &[f32],
    bottom: &[f32],
    wy0: f32,
    wy1: f32,
    normalize: Option<(f32, f32, f32)>,
    out: &mut [f32],
) {
    let n = out.len();
    let (top, bottom) = (&top[..n], &bottom[..n]);
    match normalize {
        Some((scale, mean, std)) => {
            for i in 0..n {
                out[i] = ((wy0 * top[i] + wy1 * bottom[i]) * scale - mean) / std;
            }
        }
        None => {
            for i in 0..n {
                out[i] = wy0 * top[i] + wy1 * bottom[i];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn horizontal_row_avx2(
    conv: &YuvToRgb,
    s: &RowSamples,
    cols: &ResizeColumns,
    out: &mut [Vec<f32>; 3],
) {
    horizontal_row_impl(conv, s, cols, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn vertical_row_avx2(
    top: &[f32],
    bottom: &[f32],
    wy0: f32,
    wy1: f32,
    normalize: Option<(f32, f32, f32)>,
    out: &mut [f32],
) {
    vertical_row_impl(top, bottom, wy0, wy1, normalize, out)
}

/// Whether this CPU has AVX2 (its vector kernels are chosen at run time).
pub(crate) fn wide_vectors() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`horizontal_row_impl`] with the widest vectors this CPU has (AVX2's eight lanes where present, else the
/// baseline's four): the same operations in the same order either way (no fused multiply-add), so the same bits.
pub(crate) fn horizontal_row(
    conv: &YuvToRgb,
    s: &RowSamples,
    cols: &ResizeColumns,
    out: &mut [Vec<f32>; 3],
) {
    #[cfg(target_arch = "x86_64")]
    if wide_vectors() {
        // SAFETY: AVX2 is present (checked just above).
        return unsafe { horizontal_row_avx2(conv, s, cols, out) };
    }
    horizontal_row_impl(conv, s, cols, out)
}

/// [`vertical_row_impl`] with the widest vectors this CPU has (see [`horizontal_row`]).
pub(crate) fn vertical_row(
    top: &[f32],
    bottom: &[f32],
    wy0: f32,
    wy1: f32,
    normalize: Option<(f32, f32, f32)>,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if wide_vectors() {
        // SAFETY: AVX2 is present (checked just above).
        return unsafe { vertical_row_avx2(top, bottom, wy0, wy1, normalize, out) };
    }
    vertical_row_impl(top, bottom, wy0, wy1, normalize, out)
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
        let sample = |row| Samples::contiguous(row, false);
        load_scaled(sample(&y), 7, conv.y_off, conv.y_scale, &mut luma);
        let mut terms = ChromaTerms::default();
        terms.compute(&conv, sample(&cb), sample(&cr), 4, 1, 7);
        let (mut r, mut g, mut b) = (vec![0; 7], vec![0; 7], vec![0; 7]);
        rgb_row_planar(&luma, &terms, &mut r, &mut g, &mut b);
        let mut inter = vec![0; 21];
        interleave(&r, &g, &b, &mut inter);
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
    fn level_is_the_saturating_cast_as_a_float() {
        let sweep = (-2_000_000..28_000_000).step_by(7).map(|i| i as f32 * 1e-5);
        let edge = [
            -0.5,
            -0.500_000_06,
            0.499_999_97,
            0.5,
            1.5,
            2.5,
            254.5,
            254.499_98,
            255.0,
            1e9,
            -1e9,
        ];
        for v in edge.into_iter().chain(sweep) {
            assert_eq!(level(v), f32::from(to_u8(v)), "{v}");
        }
    }

    #[test]
    fn wide_and_baseline_vectors_give_the_same_bits() {
        let conv = YuvToRgb::new(ColorMatrix::Bt601, ColorRange::Full, 8);
        let luma: Vec<u8> = (0..=255).collect();
        let cb: Vec<u8> = (0..=255).map(|i: u8| i.wrapping_mul(53)).collect();
        let cr: Vec<u8> = (0..=255).map(|i: u8| 255 - i.wrapping_mul(29)).collect();
        let pic = YuvPlanes {
            planes: [(&luma[..], 16), (&cb[..], 8), (&cr[..], 8)],
            left: 1,
            top: 2,
            shift_x: 1,
            shift_y: 1,
        };
        let cols = ResizeColumns::new(&pic, &Taps::new(13, 37));
        let mut s = RowSamples::default();
        s.gather(&pic, &cols, 7);
        let (mut wide, mut base) = (Default::default(), Default::default());
        horizontal_row(&conv, &s, &cols, &mut wide);
        horizontal_row_impl(&conv, &s, &cols, &mut base);
        assert_eq!(wide, base);
        let (mut a, mut b) = (vec![0.0; 37], vec![0.0; 37]);
        vertical_row(
            &wide[0],
            &wide[1],
            0.3,
            0.7,
            Some((1.0 / 255.0, 0.485, 0.229)),
            &mut a,
        );
        vertical_row_impl(
            &base[0],
            &base[1],
            0.3,
            0.7,
            Some((1.0 / 255.0, 0.485, 0.229)),
            &mut b,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn deep_rgb_rows_give_the_same_bits_with_and_without_avx2() {
        // Two 10-bit 4:2:0 luma rows of 77 pixels with their chroma row (8-bit rows take `rgb8`'s kernel).
        let bytes =
            |n: usize, k: usize| -> Vec<u8> { (0..n).map(|i| (i * 37 + k * 101) as u8).collect() };
        let (w, cw) = (77, 39);
        let (y0, y1, cb, cr) = (
            bytes(w * 2, 0),
            bytes(w * 2, 1),
            bytes(cw * 2, 2),
            bytes(cw * 2, 3),
        );
        let sample = |row| Samples::contiguous(row, true);
        let luma = [sample(&y0), sample(&y1)];
        let group = RowGroup {
            luma: &luma,
            chroma: Some((sample(&cb), sample(&cr), cw, 1)),
            width: w,
        };
        let conv = YuvToRgb::new(ColorMatrix::Bt709, ColorRange::Limited, 10);
        let run = |baseline: bool, planar: bool| {
            let mut out = vec![0u8; 3 * 2 * w];
            let mut s = RowScratch::default();
            let rows = if planar {
                let (r, gb) = out.split_at_mut(2 * w);
                let (g, b) = gb.split_at_mut(2 * w);
                RgbRows::Planar([r, g, b])
            } else {
                RgbRows::Interleaved(&mut out)
            };
            if baseline {
                rgb_rows_f32(&conv, &group, &mut s, rows);
            } else {
                rgb_rows(&conv, &group, &mut s, rows);
            }
            out
        };
        for planar in [true, false] {
            assert_eq!(run(false, planar), run(true, planar), "planar {planar}");
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
