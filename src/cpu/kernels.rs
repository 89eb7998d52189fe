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
    /// log2 of the pixels per term: 0 when the terms are spread to one per pixel, 1 when each term serves two
    /// pixels ([`ChromaTerms::compute_unspread`]).
    shift: u32,
}

impl ChromaTerms {
    /// Zero terms for `width` pixels (a grey picture: R = G = B = the luma term).
    pub(crate) fn grey(&mut self, width: usize) {
        self.shift = 0;
        for t in [&mut self.r, &mut self.g_cb, &mut self.g_cr, &mut self.b] {
            t.clear();
            t.resize(width, 0.0);
        }
    }

    /// The four terms (`r`, `g_cb`, `g_cr`, `b`) from pixel `x` on.
    #[inline(always)]
    fn from(&self, x: usize) -> [&[f32]; 4] {
        [&self.r[x..], &self.g_cb[x..], &self.g_cr[x..], &self.b[x..]]
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
        self.load(conv, cb, cr, chroma_width);
        self.shift = 0;
        self.spread_terms(conv, shift_x, width);
    }

    /// The chroma samples `cb` and `cr` (`chroma_width` each), offset and scaled.
    #[inline(always)]
    fn load(&mut self, conv: &YuvToRgb, cb: Samples<'_>, cr: Samples<'_>, chroma_width: usize) {
        load_scaled(cb, chroma_width, conv.c_off, conv.c_scale, &mut self.cb);
        load_scaled(cr, chroma_width, conv.c_off, conv.c_scale, &mut self.cr);
    }

    /// The terms of the chroma samples `cb` and `cr` (`chroma_width` each), one per chroma sample: for a kernel
    /// that repeats each term for the `1 << shift_x` pixels it serves.
    #[inline(always)]
    pub(crate) fn compute_unspread(
        &mut self,
        conv: &YuvToRgb,
        cb: Samples<'_>,
        cr: Samples<'_>,
        chroma_width: usize,
        shift_x: u32,
    ) {
        self.load(conv, cb, cr, chroma_width);
        self.shift = shift_x;
        self.spread_terms(conv, 0, chroma_width);
    }

    /// The four terms for `width` pixels from the scaled chroma samples already in `cb` and `cr`.
    #[inline(always)]
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

/// Converts the rows of `group` to RGB into `out`, with the widest vectors this CPU has (AVX2 where present):
/// the same operations in the same order either way, so the same bits as [`YuvToRgb::apply`].
pub(crate) fn rgb_rows(
    conv: &YuvToRgb,
    group: &RowGroup<'_>,
    s: &mut RowScratch,
    out: RgbRows<'_>,
) {
    #[cfg(target_arch = "x86_64")]
    if wide_vectors() {
        // SAFETY: AVX2 is present (checked just above).
        return unsafe { rgb_rows_avx2(conv, group, s, out) };
    }
    rgb_rows_impl::<false>(conv, group, s, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rgb_rows_avx2(
    conv: &YuvToRgb,
    group: &RowGroup<'_>,
    s: &mut RowScratch,
    out: RgbRows<'_>,
) {
    rgb_rows_impl::<true>(conv, group, s, out)
}

/// [`rgb_rows`]; `AVX2` only where the CPU has AVX2 (it selects the AVX2 kernel for 8-bit luma).
#[inline(always)]
fn rgb_rows_impl<const AVX2: bool>(
    conv: &YuvToRgb,
    group: &RowGroup<'_>,
    s: &mut RowScratch,
    out: RgbRows<'_>,
) {
    let width = group.width;
    // 8-bit luma goes through the AVX2 kernel where there is one, which repeats the terms of subsampled chroma
    // itself; every other kernel takes one term per pixel.
    let narrow_luma = group.luma.first().is_some_and(|l| !l.wide && l.step == 1);
    match group.chroma {
        None => s.terms.grey(width),
        Some((cb, cr, chroma_width, shift_x)) if AVX2 && narrow_luma && shift_x <= 1 => s
            .terms
            .compute_unspread(conv, cb, cr, chroma_width, shift_x),
        Some((cb, cr, chroma_width, shift_x)) => {
            s.terms.compute(conv, cb, cr, chroma_width, shift_x, width)
        }
    }
    let mut out = out;
    for (k, &luma) in group.luma.iter().enumerate() {
        let at = k * width..(k + 1) * width;
        // 8-bit luma: its term is computed in the same loop as the pixel.
        let luma_u8 = narrow_luma.then(|| &luma.row[luma.start..luma.start + width]);
        #[cfg(target_arch = "x86_64")]
        if let (true, Some(y)) = (AVX2, luma_u8) {
            let row = match &mut out {
                RgbRows::Planar([r, g, b]) => {
                    RowOut::Planar(&mut r[at.clone()], &mut g[at.clone()], &mut b[at])
                }
                RgbRows::Interleaved(dst) => {
                    RowOut::Interleaved(&mut dst[3 * at.start..3 * at.end])
                }
            };
            // SAFETY: `AVX2` is true only in `rgb_rows_avx2`, which runs where the CPU has AVX2.
            unsafe { rgb_row_u8_avx2(conv, y, &s.terms, row) };
            continue;
        }
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
        match luma_u8 {
            Some(y) => rgb_row_planar_u8(conv, y, s.terms.from(0), r, g, b),
            None => {
                load_scaled(luma, width, conv.y_off, conv.y_scale, &mut s.luma);
                rgb_row_planar(&s.luma, &s.terms, r, g, b);
            }
        }
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

/// The byte shuffles that interleave 16 pixels of three planes: for each 16-byte block `t` of 48 output bytes and
/// each channel `c`, the source byte of each output byte (byte `j` of the output is channel `j % 3` of pixel
/// `j / 3`), or 0x80 (a zero) where another channel goes. Used by [`rgb_row_u8_avx2`] for interleaved rows.
#[cfg(target_arch = "x86_64")]
const INTERLEAVE: [[[u8; 16]; 3]; 3] = {
    let mut m = [[[0x80u8; 16]; 3]; 3];
    let mut t = 0;
    while t < 3 {
        let mut p = 0;
        while p < 16 {
            let j = 16 * t + p;
            m[t][j % 3][p] = (j / 3) as u8;
            p += 1;
        }
        t += 1;
    }
    m
};

/// Where [`rgb_row_u8_avx2`] writes one row of `n` pixels.
#[cfg(target_arch = "x86_64")]
enum RowOut<'a> {
    /// Three planes, at least `n` bytes each.
    Planar(&'a mut [u8], &'a mut [u8], &'a mut [u8]),
    /// R, G, B per pixel, at least `3 * n` bytes.
    Interleaved(&'a mut [u8]),
}

/// [`rgb_row_planar_u8`] with AVX2 intrinsics, 32 pixels at a time (the last ones one at a time): the same
/// operations in the same order, so the same bits. What it adds over the compiler's vectors of the plain loop: the
/// chroma terms of subsampled chroma repeated in registers (one term per chroma sample, see
/// [`ChromaTerms::compute_unspread`]), and the packing of 32 results to bytes with saturating packs, where the
/// compiler truncates each 32-bit value with byte shuffles; interleaved output is shuffled from those registers
/// straight into the row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rgb_row_u8_avx2(conv: &YuvToRgb, luma: &[u8], c: &ChromaTerms, mut out: RowOut<'_>) {
    use std::arch::x86_64::*;
    let n = luma.len();
    let shift = c.shift;
    let [tr, tgb, tgr, tb] = c.from(0);
    match &out {
        RowOut::Planar(r, g, b) => assert!(
            r.len() >= n && g.len() >= n && b.len() >= n,
            "output rows shorter than the luma row"
        ),
        RowOut::Interleaved(dst) => {
            assert!(dst.len() >= 3 * n, "output row shorter than the luma row")
        }
    }
    let terms = (n + (1 << shift) - 1) >> shift;
    assert!(
        tr.len() >= terms && tgb.len() >= terms && tgr.len() >= terms && tb.len() >= terms,
        "chroma terms shorter than the luma row"
    );
    // Eight terms from term `t` on, or four each repeated twice (terms of a horizontally subsampled chroma row).
    let twice = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    let load = |terms: &[f32], t: usize| {
        if shift == 0 {
            // SAFETY: `t + 8 <= n <= terms.len()` (the caller's block lies within the row).
            unsafe { _mm256_loadu_ps(terms.as_ptr().add(t)) }
        } else {
            // SAFETY: `t + 4 <= n / 2 <= terms.len()` (the caller's block lies within the row).
            let four = unsafe { _mm_loadu_ps(terms.as_ptr().add(t)) };
            _mm256_permutevar8x32_ps(_mm256_castps128_ps256(four), twice)
        }
    };
    let off = _mm256_set1_ps(conv.y_off);
    let scale = _mm256_set1_ps(conv.y_scale);
    let half = _mm256_set1_ps(0.5);
    // The lane order that undoes the in-lane interleaving of the two packs.
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    // `(v + 0.5)` truncated to an integer. `to_u8` clamps to 0..=255 before truncating; here the packs to bytes
    // saturate instead, which gives the same byte for every value whose integer part fits in an `i32`: below
    // zero (truncation toward zero gives 0 or a negative integer) 0, above 255 255. A value here is at most a
    // few hundred away from that range (a luma term of 8-bit samples plus a chroma term, with the fixed
    // coefficients of `YuvToRgb`), and never NaN.
    let level = |v: __m256| _mm256_cvttps_epi32(_mm256_add_ps(v, half));
    // One block of eight pixels from pixel `i`: its R, G, B levels as 32-bit integers.
    let block = |i: usize| {
        // SAFETY: `i + 8 <= n` (the caller's block of 32 lies within the row) and the luma row is `n` long.
        let y8 = unsafe { _mm_loadl_epi64(luma.as_ptr().add(i).cast()) };
        let t = i >> shift;
        let (tr, tgb, tgr, tb) = (load(tr, t), load(tgb, t), load(tgr, t), load(tb, t));
        let y = _mm256_mul_ps(
            _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(y8)), off),
            scale,
        );
        (
            level(_mm256_add_ps(y, tr)),
            level(_mm256_sub_ps(_mm256_sub_ps(y, tgb), tgr)),
            level(_mm256_add_ps(y, tb)),
        )
    };
    // Four blocks' levels of one channel as 32 bytes, in pixel order.
    let bytes = |v: [__m256i; 4]| {
        let lo = _mm256_packs_epi32(v[0], v[1]);
        let hi = _mm256_packs_epi32(v[2], v[3]);
        _mm256_permutevar8x32_epi32(_mm256_packus_epi16(lo, hi), order)
    };
    // SAFETY: the masks are 16 bytes each.
    let masks = INTERLEAVE.map(|t| t.map(|m| unsafe { _mm_loadu_si128(m.as_ptr().cast()) }));
    let blocks = n / 32;
    for k in 0..blocks {
        let x = 32 * k;
        let (r0, g0, b0) = block(x);
        let (r1, g1, b1) = block(x + 8);
        let (r2, g2, b2) = block(x + 16);
        let (r3, g3, b3) = block(x + 24);
        let (vr, vg, vb) = (
            bytes([r0, r1, r2, r3]),
            bytes([g0, g1, g2, g3]),
            bytes([b0, b1, b2, b3]),
        );
        match &mut out {
            // SAFETY: `x + 32 <= n` and every output row is at least `n` long (asserted above).
            RowOut::Planar(r, g, b) => unsafe {
                _mm256_storeu_si256(r.as_mut_ptr().add(x).cast(), vr);
                _mm256_storeu_si256(g.as_mut_ptr().add(x).cast(), vg);
                _mm256_storeu_si256(b.as_mut_ptr().add(x).cast(), vb);
            },
            RowOut::Interleaved(dst) => {
                // Each half of 16 pixels becomes 48 bytes (see `INTERLEAVE`).
                let halves =
                    |v: __m256i| [_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v)];
                let (hr, hg, hb) = (halves(vr), halves(vg), halves(vb));
                for h in 0..2 {
                    let planes = [hr[h], hg[h], hb[h]];
                    for (t, m) in masks.iter().enumerate() {
                        let v = _mm_or_si128(
                            _mm_or_si128(
                                _mm_shuffle_epi8(planes[0], m[0]),
                                _mm_shuffle_epi8(planes[1], m[1]),
                            ),
                            _mm_shuffle_epi8(planes[2], m[2]),
                        );
                        let at = 3 * (x + 16 * h) + 16 * t;
                        // SAFETY: `at + 16 <= 3 * (x + 32) <= 3 * n <= dst.len()` (asserted above).
                        unsafe { _mm_storeu_si128(dst.as_mut_ptr().add(at).cast(), v) };
                    }
                }
            }
        }
    }
    // The last pixels, one at a time.
    let (off, scale) = (conv.y_off, conv.y_scale);
    for x in 32 * blocks..n {
        let t = x >> shift;
        let px = rgb_levels(
            (f32::from(luma[x]) - off) * scale,
            [tr[t], tgb[t], tgr[t], tb[t]],
        );
        match &mut out {
            RowOut::Planar(r, g, b) => (r[x], g[x], b[x]) = (px[0], px[1], px[2]),
            RowOut::Interleaved(dst) => dst[3 * x..3 * x + 3].copy_from_slice(&px),
        }
    }
}

/// [`rgb_row_planar`] from 8-bit luma samples, the luma term `(y - y_off) * y_scale` computed in the loop;
/// `terms` are [`ChromaTerms::from`]'s.
#[inline(always)]
fn rgb_row_planar_u8(
    conv: &YuvToRgb,
    luma: &[u8],
    terms: [&[f32]; 4],
    r: &mut [u8],
    g: &mut [u8],
    b: &mut [u8],
) {
    let (off, scale) = (conv.y_off, conv.y_scale);
    let [tr, tgb, tgr, tb] = terms;
    let terms = tr.iter().zip(tgb).zip(tgr).zip(tb);
    let outs = r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut());
    for ((&y, (((&tr, &tgb), &tgr), &tb)), ((r, g), b)) in luma.iter().zip(terms).zip(outs) {
        [*r, *g, *b] = rgb_levels((f32::from(y) - off) * scale, [tr, tgb, tgr, tb]);
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

fn wide_vectors() -> bool {
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
    fn rgb_rows_give_the_same_bits_with_and_without_avx2() {
        // Two 4:2:0 luma rows of 77 pixels (two AVX2 blocks and a tail) with their chroma row, 8-bit and 10-bit.
        let bytes =
            |n: usize, k: usize| -> Vec<u8> { (0..n).map(|i| (i * 37 + k * 101) as u8).collect() };
        for wide in [false, true] {
            let (w, cw) = (77, 39);
            let per = if wide { 2 } else { 1 };
            let (y0, y1, cb, cr) = (
                bytes(w * per, 0),
                bytes(w * per, 1),
                bytes(cw * per, 2),
                bytes(cw * per, 3),
            );
            fn sample(row: &[u8], wide: bool) -> Samples<'_> {
                Samples {
                    row,
                    wide,
                    start: 0,
                    step: 1,
                }
            }
            let luma = [sample(&y0, wide), sample(&y1, wide)];
            let group = RowGroup {
                luma: &luma,
                chroma: Some((sample(&cb, wide), sample(&cr, wide), cw, 1)),
                width: w,
            };
            let conv = YuvToRgb::new(
                ColorMatrix::Bt709,
                ColorRange::Limited,
                if wide { 10 } else { 8 },
            );
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
                    rgb_rows_impl::<false>(&conv, &group, &mut s, rows);
                } else {
                    rgb_rows(&conv, &group, &mut s, rows);
                }
                out
            };
            for planar in [true, false] {
                assert_eq!(
                    run(false, planar),
                    run(true, planar),
                    "wide {wide}, planar {planar}"
                );
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
