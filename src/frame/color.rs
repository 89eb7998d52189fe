//! Colour: output types, YUV matrices and ranges, and the one YUV -> RGB formula that the CPU converter and the
//! GPU kernels share (in `f32`; the CPU's full-frame conversion of 8-bit pictures computes it in fixed point,
//! within one level: `cpu::rgb8`).

use serde::Serialize;

/// What a decoded frame is turned into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize)]
pub enum ColorType {
    /// The decoded planes as they are, packed with no padding: the bytes `ffmpeg -f rawvideo -pix_fmt <format>`
    /// writes (8-bit samples as bytes, deeper samples as 16-bit little-endian). A batch is `[N, bytes]` u8.
    Native,
    /// Interleaved RGB, `[N, H, W, 3]` u8.
    Rgb,
    /// Planar RGB, `[N, 3, H, W]` u8.
    #[default]
    Rgbp,
}

impl std::str::FromStr for ColorType {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "native" => Ok(ColorType::Native),
            "rgb" => Ok(ColorType::Rgb),
            "rgbp" | "rgb_planar" => Ok(ColorType::Rgbp),
            _ => Err(crate::Error::InvalidArgument(format!(
                "unknown colour type {s:?} (native, rgb, rgbp)"
            ))),
        }
    }
}

/// The YUV -> RGB matrix of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ColorMatrix {
    /// ITU-R BT.601 (also used when a stream does not say, as FFmpeg does).
    Bt601,
    /// ITU-R BT.709.
    Bt709,
    /// ITU-R BT.2020 non-constant luminance.
    Bt2020,
}

impl ColorMatrix {
    /// The matrix for an FFmpeg colour space; unspecified and unknown spaces map to BT.601 like swscale.
    pub fn from_ffmpeg(space: ffmpeg_next::color::Space) -> Self {
        use ffmpeg_next::color::Space;
        match space {
            Space::BT709 => ColorMatrix::Bt709,
            Space::BT2020NCL | Space::BT2020CL => ColorMatrix::Bt2020,
            _ => ColorMatrix::Bt601,
        }
    }

    /// Luma weights (kr, kb).
    pub fn kr_kb(self) -> (f64, f64) {
        match self {
            ColorMatrix::Bt601 => (0.299, 0.114),
            ColorMatrix::Bt709 => (0.2126, 0.0722),
            ColorMatrix::Bt2020 => (0.2627, 0.0593),
        }
    }
}

/// Limited (studio, 16-235) or full (0-255) range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ColorRange {
    /// 16..235 luma, 16..240 chroma (scaled for deeper samples).
    Limited,
    /// The whole code range.
    Full,
}

impl ColorRange {
    /// The range for an FFmpeg colour range (unspecified means limited) and pixel format (`yuvj*` are full).
    pub fn from_ffmpeg(
        range: ffmpeg_next::color::Range,
        format: ffmpeg_next::format::Pixel,
    ) -> Self {
        use ffmpeg_next::format::Pixel;
        match (range, format) {
            (ffmpeg_next::color::Range::JPEG, _) => ColorRange::Full,
            (_, Pixel::YUVJ420P | Pixel::YUVJ422P | Pixel::YUVJ444P | Pixel::YUVJ440P) => {
                ColorRange::Full
            }
            _ => ColorRange::Limited,
        }
    }
}

/// The YUV -> RGB formula for one matrix, range and bit depth:
/// `y = (Y - y_off) * y_scale`, `cb = (Cb - c_off) * c_scale`, `cr = (Cr - c_off) * c_scale`, then
/// `R = y + cr_r*cr`, `G = y - cb_g*cb - cr_g*cr`, `B = y + cb_b*cb`, each rounded half up and clamped to 0..=255.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YuvToRgb {
    /// Luma offset in sample units.
    pub y_off: f32,
    /// Luma scale to 8-bit full range.
    pub y_scale: f32,
    /// Chroma offset in sample units.
    pub c_off: f32,
    /// Chroma scale to 8-bit full range.
    pub c_scale: f32,
    /// Cr contribution to R.
    pub cr_r: f32,
    /// Cb contribution to G (subtracted).
    pub cb_g: f32,
    /// Cr contribution to G (subtracted).
    pub cr_g: f32,
    /// Cb contribution to B.
    pub cb_b: f32,
}

impl YuvToRgb {
    /// The formula for `matrix`, `range` and samples of `bit_depth` bits.
    pub fn new(matrix: ColorMatrix, range: ColorRange, bit_depth: u32) -> Self {
        let (kr, kb) = matrix.kr_kb();
        let kg = 1.0 - kr - kb;
        let s = f64::from(1u32 << bit_depth.saturating_sub(8));
        let (y_off, y_scale, c_scale) = match range {
            ColorRange::Limited => (16.0 * s, 255.0 / (219.0 * s), 255.0 / (224.0 * s)),
            ColorRange::Full => {
                let max = f64::from((1u32 << bit_depth) - 1);
                (0.0, 255.0 / max, 255.0 / max)
            }
        };
        YuvToRgb {
            y_off: y_off as f32,
            y_scale: y_scale as f32,
            c_off: (128.0 * s) as f32,
            c_scale: c_scale as f32,
            cr_r: (2.0 * (1.0 - kr)) as f32,
            cb_g: (2.0 * kb * (1.0 - kb) / kg) as f32,
            cr_g: (2.0 * kr * (1.0 - kr) / kg) as f32,
            cb_b: (2.0 * (1.0 - kb)) as f32,
        }
    }

    /// Converts one sample triple to RGB.
    #[inline(always)]
    pub fn apply(&self, y: f32, cb: f32, cr: f32) -> [u8; 3] {
        let y = (y - self.y_off) * self.y_scale;
        let cb = (cb - self.c_off) * self.c_scale;
        let cr = (cr - self.c_off) * self.c_scale;
        let r = y + self.cr_r * cr;
        let g = y - self.cb_g * cb - self.cr_g * cr;
        let b = y + self.cb_b * cb;
        [to_u8(r), to_u8(g), to_u8(b)]
    }
}

#[inline(always)]
fn to_u8(v: f32) -> u8 {
    (v + 0.5).clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_range_extremes_map_to_black_and_white() {
        for m in [ColorMatrix::Bt601, ColorMatrix::Bt709, ColorMatrix::Bt2020] {
            let c = YuvToRgb::new(m, ColorRange::Limited, 8);
            assert_eq!(c.apply(16.0, 128.0, 128.0), [0, 0, 0]);
            assert_eq!(c.apply(235.0, 128.0, 128.0), [255, 255, 255]);
            let c10 = YuvToRgb::new(m, ColorRange::Limited, 10);
            assert_eq!(c10.apply(64.0, 512.0, 512.0), [0, 0, 0]);
            assert_eq!(c10.apply(940.0, 512.0, 512.0), [255, 255, 255]);
        }
    }

    #[test]
    fn bt709_full_range_red_primary() {
        // Pure red in BT.709 full range: Y = 0.2126*255, Cb = 128 - 0.1146*255, Cr = 128 + 0.5*255.
        let c = YuvToRgb::new(ColorMatrix::Bt709, ColorRange::Full, 8);
        let y = 0.2126 * 255.0;
        let cb = 128.0 - 0.2126 / (2.0 * (1.0 - 0.0722)) * 255.0;
        let cr = 128.0 + 0.5 * 255.0;
        let [r, g, b] = c.apply(y as f32, cb as f32, cr as f32);
        assert!(r >= 254 && g <= 1 && b <= 1, "{r} {g} {b}");
    }
}
