//! Full-frame RGB from 8-bit YUV in 16-bit fixed point: the CPU's conversion of 8-bit pictures to RGB / RGBP.
//!
//! [`YuvToRgb`]'s formula in integers, in units of 1/64 of a level, 16 values to one AVX2 register (twice as many
//! as in `f32`, and about a third of the `f32` kernel's operations per pixel). With `mulhrs(a, b)` =
//! `(a * b + 2^14) >> 15` (`_mm256_mulhrs_epi16`):
//!
//! - luma: `mulhrs(Y << 7, ky)` with `ky = round(y_scale * 2^14)`: `Y * y_scale * 64`, within one unit;
//! - chroma, once per chroma row and sample: `mulhrs((C - 128) << 8, k)` with `k = round(coefficient * c_scale *
//!   2^13)` for each of the four products (Cr to R, Cb and Cr to G, Cb to B), each within one unit, plus `base =
//!   round(-y_off * y_scale * 64 + 32)` (the luma offset and the rounding half);
//! - a level is `(luma + term) >> 6` (saturating add), clamped to 0..=255 (saturating pack).
//!
//! So each level's value before rounding is within 3.5 units (1/18 of a level) of the exact (f64) value, and every
//! level is the exact one or next to it (the published tolerance: one level); it differs from the GPU kernel's
//! `f32` result only where the exact value lies that close to a rounding boundary, by one. Values beyond 511 levels
//! (far outside the legal range) saturate at 511 and still give 255. The AVX2 loops and the portable ones compute
//! the same integers, so every CPU gives the same bytes (unit tests hold them to each other and, over every (Y, Cb,
//! Cr) of every matrix and range, to the exact formula).

use crate::cpu::kernels::{wide_vectors, RgbRows, RowGroup, RowOut, Samples};
use crate::frame::color::YuvToRgb;

/// Fraction bits of a fixed-point level.
const FRAC: u32 = 6;

/// `_mm256_mulhrs_epi16` on one lane: `(a * b + 2^14) >> 15`, rounded, high half.
#[inline(always)]
fn mulhrs(a: i16, b: i16) -> i16 {
    ((i32::from(a) * i32::from(b) + (1 << 14)) >> 15) as i16
}

/// [`YuvToRgb`] for 8-bit samples in fixed point.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FixedYuvToRgb {
    /// `round(y_scale * 2^14)`: `mulhrs(Y << 7, ky)` is the luma term in 1/64 level.
    ky: i16,
    /// `round(cr_r * c_scale * 2^13)`: `mulhrs((Cr - 128) << 8, k)` is Cr's term in R, in 1/64 level.
    r_cr: i16,
    /// The same for Cb's term in G (subtracted).
    g_cb: i16,
    /// The same for Cr's term in G (subtracted).
    g_cr: i16,
    /// The same for Cb's term in B.
    b_cb: i16,
    /// `round(-y_off * y_scale * 64 + 32)`: the luma offset and the rounding half, in every term.
    base: i16,
}

impl FixedYuvToRgb {
    /// The fixed-point form of `conv` (8-bit samples: every coefficient times its scale is below 2.2).
    pub(crate) fn new(conv: &YuvToRgb) -> Self {
        let one = f64::from(1u32 << FRAC);
        let k = |c: f32| (f64::from(c) * f64::from(conv.c_scale) * 8192.0).round() as i16;
        FixedYuvToRgb {
            ky: (f64::from(conv.y_scale) * 16384.0).round() as i16,
            r_cr: k(conv.cr_r),
            g_cb: k(conv.cb_g),
            g_cr: k(conv.cr_g),
            b_cb: k(conv.cb_b),
            base: (-f64::from(conv.y_off) * f64::from(conv.y_scale) * one + one / 2.0).round()
                as i16,
        }
    }

    /// The luma term of `y` in 1/64 level.
    #[inline(always)]
    fn luma(&self, y: u8) -> i16 {
        mulhrs(i16::from(y) << 7, self.ky)
    }

    /// The R, G and B terms of one chroma sample pair, in 1/64 level (`base` included).
    #[inline(always)]
    fn terms(&self, cb: u8, cr: u8) -> [i16; 3] {
        let (cb, cr) = ((i16::from(cb) - 128) << 8, (i16::from(cr) - 128) << 8);
        [
            self.base + mulhrs(cr, self.r_cr),
            self.base - mulhrs(cb, self.g_cb) - mulhrs(cr, self.g_cr),
            self.base + mulhrs(cb, self.b_cb),
        ]
    }
}

/// One level from a luma term and a chroma term (both in 1/64 level).
#[inline(always)]
fn level(luma: i16, term: i16) -> u8 {
    (luma.saturating_add(term) >> FRAC).clamp(0, 255) as u8
}

/// One pixel by the fixed-point formula, exactly as the rows compute it (the tests' per-pixel reference).
#[cfg(test)]
pub(crate) fn pixel(conv: &YuvToRgb, y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let fx = FixedYuvToRgb::new(conv);
    let l = fx.luma(y);
    fx.terms(cb, cr).map(|t| level(l, t))
}

/// The fixed-point terms of one chroma row, one per chroma sample: what R, G and B add to the luma term of each
/// pixel the sample serves (pixel `x` takes term `x >> shift`).
#[derive(Default)]
pub(crate) struct FixedTerms {
    r: Vec<i16>,
    g: Vec<i16>,
    b: Vec<i16>,
    /// log2 of the pixels a term serves.
    shift: u32,
    /// Chroma samples gathered from interleaved (NV12) rows.
    cb: Vec<u8>,
    cr: Vec<u8>,
}

impl FixedTerms {
    /// The terms of `group`'s chroma row, or of grey (one term for every pixel).
    fn compute(&mut self, fx: &FixedYuvToRgb, group: &RowGroup<'_>, avx2: bool) {
        let Some((cb, cr, n, shift_x)) = group.chroma else {
            self.shift = 0;
            for v in [&mut self.r, &mut self.g, &mut self.b] {
                v.clear();
                v.resize(group.width, fx.base);
            }
            return;
        };
        self.shift = shift_x;
        let cb = contiguous(cb, n, &mut self.cb);
        let cr = contiguous(cr, n, &mut self.cr);
        for v in [&mut self.r, &mut self.g, &mut self.b] {
            // Every value is overwritten below: resizing a reused buffer to its length again writes nothing.
            v.resize(n, 0);
        }
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the caller found AVX2 on this CPU.
            done = unsafe { terms_avx2(fx, cb, cr, &mut self.r, &mut self.g, &mut self.b) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = avx2;
        for i in done..n {
            [self.r[i], self.g[i], self.b[i]] = fx.terms(cb[i], cr[i]);
        }
    }
}

/// `n` 8-bit samples of `s` as one slice: the row itself, or (samples apart, as in NV12) gathered into `buf`.
fn contiguous<'a>(s: Samples<'a>, n: usize, buf: &'a mut Vec<u8>) -> &'a [u8] {
    if s.step == 1 {
        return &s.row[s.start..s.start + n];
    }
    buf.clear();
    buf.extend(s.row[s.start..].iter().step_by(s.step).take(n));
    buf
}

/// [`FixedYuvToRgb::terms`] for 16 samples at a time; returns how many samples it did (the rest are left to the
/// caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn terms_avx2(
    fx: &FixedYuvToRgb,
    cb: &[u8],
    cr: &[u8],
    r: &mut [i16],
    g: &mut [i16],
    b: &mut [i16],
) -> usize {
    use std::arch::x86_64::*;
    let n = cb
        .len()
        .min(cr.len())
        .min(r.len())
        .min(g.len())
        .min(b.len());
    let k = |v: i16| _mm256_set1_epi16(v);
    let (r_cr, g_cb, g_cr, b_cb, base) =
        (k(fx.r_cr), k(fx.g_cb), k(fx.g_cr), k(fx.b_cb), k(fx.base));
    let offset = k(128);
    let blocks = n / 16;
    for j in 0..blocks {
        let i = 16 * j;
        // `(C - 128) << 8` for 16 samples.
        let load = |c: &[u8]| {
            // SAFETY: `i + 16 <= n <= c.len()`.
            let v = unsafe { _mm_loadu_si128(c.as_ptr().add(i).cast()) };
            _mm256_slli_epi16::<8>(_mm256_sub_epi16(_mm256_cvtepu8_epi16(v), offset))
        };
        let (vb, vr) = (load(cb), load(cr));
        let tr = _mm256_add_epi16(base, _mm256_mulhrs_epi16(vr, r_cr));
        let tg = _mm256_sub_epi16(
            _mm256_sub_epi16(base, _mm256_mulhrs_epi16(vb, g_cb)),
            _mm256_mulhrs_epi16(vr, g_cr),
        );
        let tb = _mm256_add_epi16(base, _mm256_mulhrs_epi16(vb, b_cb));
        // SAFETY: `i + 16 <= n` and every output is at least `n` long.
        unsafe {
            _mm256_storeu_si256(r.as_mut_ptr().add(i).cast(), tr);
            _mm256_storeu_si256(g.as_mut_ptr().add(i).cast(), tg);
            _mm256_storeu_si256(b.as_mut_ptr().add(i).cast(), tb);
        }
    }
    16 * blocks
}

/// Converts the rows of `group` (8-bit luma, one sample a byte) to RGB into `out`, with AVX2 where the CPU has
/// it (rows: for chroma subsampled by at most 2 horizontally): the same integers either way.
pub(crate) fn rgb_rows_8bit(
    conv: &YuvToRgb,
    group: &RowGroup<'_>,
    terms: &mut FixedTerms,
    mut out: RgbRows<'_>,
) {
    let fx = FixedYuvToRgb::new(conv);
    let avx2 = wide_vectors();
    terms.compute(&fx, group, avx2);
    let avx2_rows = avx2 && terms.shift <= 1;
    let width = group.width;
    for (k, luma) in group.luma.iter().enumerate() {
        let y = &luma.row[luma.start..luma.start + width];
        let row = out.row(k, width);
        #[cfg(target_arch = "x86_64")]
        if avx2_rows {
            // SAFETY: the CPU has AVX2 (checked by `wide_vectors`).
            unsafe { row_avx2(&fx, y, terms, row) };
            continue;
        }
        row_portable(&fx, y, terms, 0, row);
    }
}

/// Pixels `from..` of one row, one at a time.
#[inline(always)]
fn row_portable(fx: &FixedYuvToRgb, luma: &[u8], t: &FixedTerms, from: usize, mut out: RowOut<'_>) {
    for (x, &y) in luma.iter().enumerate().skip(from) {
        let l = fx.luma(y);
        let c = x >> t.shift;
        let px = [level(l, t.r[c]), level(l, t.g[c]), level(l, t.b[c])];
        out.set(x, px);
    }
}

/// The byte shuffles that interleave 16 pixels of three planes: for each 16-byte block `t` of 48 output bytes and
/// each channel `c`, the source byte of each output byte (byte `j` of the output is channel `j % 3` of pixel
/// `j / 3`), or 0x80 (a zero) where another channel goes.
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

/// One row, 32 pixels at a time with AVX2 (the last ones by [`row_portable`]); terms per pixel or per two.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn row_avx2(fx: &FixedYuvToRgb, luma: &[u8], t: &FixedTerms, mut out: RowOut<'_>) {
    use std::arch::x86_64::*;
    let n = luma.len();
    let shift = t.shift;
    assert!(
        shift <= 1,
        "AVX2 rows take terms per pixel or per two pixels"
    );
    let terms = (n + (1 << shift) - 1) >> shift;
    assert!(
        t.r.len() >= terms && t.g.len() >= terms && t.b.len() >= terms,
        "chroma terms shorter than the luma row"
    );
    out.check(n);
    let ky = _mm256_set1_epi16(fx.ky);
    let zero = _mm256_setzero_si256();
    // The masks in both 128-bit lanes.
    // SAFETY: the masks are 16 bytes each.
    let masks = INTERLEAVE.map(|t| {
        t.map(|m| _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(m.as_ptr().cast()) }))
    });
    let blocks = n / 32;
    for k in 0..blocks {
        let x = 32 * k;
        // SAFETY: `x + 32 <= n = luma.len()`.
        let y = unsafe { _mm256_loadu_si256(luma.as_ptr().add(x).cast()) };
        // Widening within 128-bit lanes: `lo` holds pixels 0-7 and 16-23, `hi` 8-15 and 24-31.
        let lo = _mm256_mulhrs_epi16(_mm256_slli_epi16::<7>(_mm256_unpacklo_epi8(y, zero)), ky);
        let hi = _mm256_mulhrs_epi16(_mm256_slli_epi16::<7>(_mm256_unpackhi_epi8(y, zero)), ky);
        // One channel's 32 bytes in pixel order: its terms in `lo`'s and `hi`'s pixel order, added, shifted, and
        // packed (the pack puts the lanes of `lo` and `hi` back in pixel order).
        let channel = |terms: &[i16]| {
            let (tlo, thi) = if shift == 0 {
                // SAFETY: `x + 32 <= n <= terms.len()` (asserted above).
                let (a, b) = unsafe {
                    (
                        _mm256_loadu_si256(terms.as_ptr().add(x).cast()),
                        _mm256_loadu_si256(terms.as_ptr().add(x + 16).cast()),
                    )
                };
                (
                    _mm256_permute2x128_si256::<0x20>(a, b),
                    _mm256_permute2x128_si256::<0x31>(a, b),
                )
            } else {
                // Sixteen terms for 32 pixels, each repeated twice: in-lane unpacks give exactly the pixel order
                // of `lo` (terms 0-3 and 8-11) and `hi` (4-7 and 12-15).
                // SAFETY: `x / 2 + 16 <= n / 2 <= terms.len()` (asserted above).
                let v = unsafe { _mm256_loadu_si256(terms.as_ptr().add(x / 2).cast()) };
                (_mm256_unpacklo_epi16(v, v), _mm256_unpackhi_epi16(v, v))
            };
            _mm256_packus_epi16(
                _mm256_srai_epi16::<{ FRAC as i32 }>(_mm256_adds_epi16(lo, tlo)),
                _mm256_srai_epi16::<{ FRAC as i32 }>(_mm256_adds_epi16(hi, thi)),
            )
        };
        let (vr, vg, vb) = (channel(&t.r), channel(&t.g), channel(&t.b));
        match &mut out {
            // SAFETY: `x + 32 <= n` and every output row is at least `n` long (checked above).
            RowOut::Planar(r, g, b) => unsafe {
                _mm256_storeu_si256(r.as_mut_ptr().add(x).cast(), vr);
                _mm256_storeu_si256(g.as_mut_ptr().add(x).cast(), vg);
                _mm256_storeu_si256(b.as_mut_ptr().add(x).cast(), vb);
            },
            RowOut::Interleaved(dst) => {
                // Shuffled within 128-bit lanes (see `INTERLEAVE`): `by_block[t]` holds the 16-byte block `t` of
                // pixels 0-15 in its low lane and that of pixels 16-31 in its high lane.
                let by_block = masks.map(|m| {
                    _mm256_or_si256(
                        _mm256_or_si256(
                            _mm256_shuffle_epi8(vr, m[0]),
                            _mm256_shuffle_epi8(vg, m[1]),
                        ),
                        _mm256_shuffle_epi8(vb, m[2]),
                    )
                });
                // The 96 bytes in order: blocks 0, 1 | 2 of the low half, 0 | 1, 2 of the high half.
                let out = [
                    _mm256_permute2x128_si256::<0x20>(by_block[0], by_block[1]),
                    _mm256_permute2x128_si256::<0x30>(by_block[2], by_block[0]),
                    _mm256_permute2x128_si256::<0x31>(by_block[1], by_block[2]),
                ];
                for (j, v) in out.into_iter().enumerate() {
                    // SAFETY: `3 * x + 32 * j + 32 <= 3 * (x + 32) <= 3 * n <= dst.len()` (checked above).
                    unsafe { _mm256_storeu_si256(dst.as_mut_ptr().add(3 * x + 32 * j).cast(), v) };
                }
            }
        }
    }
    row_portable(fx, luma, t, 32 * blocks, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernels::Samples;
    use crate::frame::color::{ColorMatrix, ColorRange};

    /// The exact level of a value: `floor(v + 0.5)` clamped to 0..=255.
    fn exact(v: f64) -> i32 {
        (v + 0.5).floor().clamp(0.0, 255.0) as i32
    }

    #[test]
    fn every_yuv_triple_is_within_one_level_of_the_exact_formula() {
        for matrix in [ColorMatrix::Bt601, ColorMatrix::Bt709, ColorMatrix::Bt2020] {
            for range in [ColorRange::Limited, ColorRange::Full] {
                let conv = YuvToRgb::new(matrix, range, 8);
                let (kr, kb) = matrix.kr_kb();
                let kg = 1.0 - kr - kb;
                let (y_off, y_scale, c_scale) = match range {
                    ColorRange::Limited => (16.0, 255.0 / 219.0, 255.0 / 224.0),
                    ColorRange::Full => (0.0, 1.0, 1.0),
                };
                let mut worst = 0;
                let mut off_by_one = 0u64;
                for cb in 0..=255u8 {
                    for cr in 0..=255u8 {
                        let (ecb, ecr) = (
                            (f64::from(cb) - 128.0) * c_scale,
                            (f64::from(cr) - 128.0) * c_scale,
                        );
                        for y in 0..=255u8 {
                            let ey = (f64::from(y) - y_off) * y_scale;
                            let want = [
                                exact(ey + 2.0 * (1.0 - kr) * ecr),
                                exact(
                                    ey - 2.0 * kb * (1.0 - kb) / kg * ecb
                                        - 2.0 * kr * (1.0 - kr) / kg * ecr,
                                ),
                                exact(ey + 2.0 * (1.0 - kb) * ecb),
                            ];
                            let got = pixel(&conv, y, cb, cr);
                            for c in 0..3 {
                                let d = (i32::from(got[c]) - want[c]).abs();
                                worst = worst.max(d);
                                off_by_one += u64::from(d > 0);
                            }
                        }
                    }
                }
                assert!(worst <= 1, "{matrix:?} {range:?}: {worst} levels off");
                // Next to the exact level only near a rounding boundary: under 1 % of all values (0.4-0.7 % measured).
                assert!(
                    off_by_one < 3 * (1 << 24) / 100,
                    "{matrix:?} {range:?}: {off_by_one} values one level off"
                );
            }
        }
    }

    #[test]
    fn limited_range_black_and_white_are_exact() {
        for matrix in [ColorMatrix::Bt601, ColorMatrix::Bt709, ColorMatrix::Bt2020] {
            let conv = YuvToRgb::new(matrix, ColorRange::Limited, 8);
            assert_eq!(pixel(&conv, 16, 128, 128), [0; 3]);
            assert_eq!(pixel(&conv, 235, 128, 128), [255; 3]);
            assert_eq!(pixel(&conv, 126, 128, 128), [128; 3]);
            // Grey pictures take the terms of neutral chroma.
            let fx = FixedYuvToRgb::new(&conv);
            assert_eq!(fx.terms(128, 128), [fx.base; 3]);
        }
    }

    #[test]
    fn avx2_and_portable_rows_give_the_same_bytes() {
        // Widths around the 32-pixel blocks, 4:2:0 / 4:4:4 chroma and grey, planar and interleaved.
        let bytes = |n: usize, k: usize| -> Vec<u8> {
            (0..n)
                .map(|i| ((i * 37 + k * 101) ^ (i * i)) as u8)
                .collect()
        };
        fn rows(out: &mut [u8], w: usize, planar: bool) -> RgbRows<'_> {
            if planar {
                let (r, gb) = out.split_at_mut(2 * w);
                let (g, b) = gb.split_at_mut(2 * w);
                RgbRows::Planar([r, g, b])
            } else {
                RgbRows::Interleaved(out)
            }
        }
        for w in [1usize, 31, 32, 33, 64, 77, 200] {
            for shift_x in [0u32, 1] {
                let cw = (w + (1 << shift_x) - 1) >> shift_x;
                let (y0, y1, cb, cr) = (bytes(w, 0), bytes(w, 1), bytes(cw, 2), bytes(cw, 3));
                let luma = [
                    Samples::contiguous(&y0, false),
                    Samples::contiguous(&y1, false),
                ];
                for grey in [false, true] {
                    let group = RowGroup {
                        luma: &luma,
                        chroma: (!grey).then(|| {
                            (
                                Samples::contiguous(&cb, false),
                                Samples::contiguous(&cr, false),
                                cw,
                                shift_x,
                            )
                        }),
                        width: w,
                    };
                    let conv = YuvToRgb::new(ColorMatrix::Bt709, ColorRange::Limited, 8);
                    let fx = FixedYuvToRgb::new(&conv);
                    for planar in [true, false] {
                        let mut a = vec![0u8; 6 * w];
                        let mut b = vec![0u8; 6 * w];
                        rgb_rows_8bit(
                            &conv,
                            &group,
                            &mut FixedTerms::default(),
                            rows(&mut a, w, planar),
                        );
                        // The portable loop over terms in pixel order.
                        let mut terms = FixedTerms::default();
                        terms.compute(&fx, &group, false);
                        let mut out = rows(&mut b, w, planar);
                        for (k, l) in luma.iter().enumerate() {
                            row_portable(&fx, &l.row[..w], &terms, 0, out.row(k, w));
                        }
                        assert_eq!(
                            a, b,
                            "width {w}, shift {shift_x}, grey {grey}, planar {planar}"
                        );
                    }
                }
            }
        }
    }
}
