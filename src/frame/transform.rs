//! What happens to a frame between the decoder and its slot: crop, resize, normalisation and element type.
//!
//! The destination tensor decides the output size and kind; [`FrameTransform`] adds the crop (in source pixels)
//! and the normalisation. On NVDEC all of it is fused into the one conversion kernel that writes the slot; on the
//! CPU the frames are decoded into a uint8 batch at the stream's size and transformed with torch operations.

use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::frame::color::ColorType;

/// Element type of an RGB destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutputDtype {
    /// u8, rounded half up and clamped to 0..=255.
    U8,
    /// IEEE half, round to nearest even.
    F16,
    /// bfloat16, round to nearest even.
    Bf16,
    /// f32.
    F32,
}

impl OutputDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            OutputDtype::U8 => 1,
            OutputDtype::F16 | OutputDtype::Bf16 => 2,
            OutputDtype::F32 => 4,
        }
    }

    /// The matching tch kind.
    pub fn to_kind(self) -> tch::Kind {
        match self {
            OutputDtype::U8 => tch::Kind::Uint8,
            OutputDtype::F16 => tch::Kind::Half,
            OutputDtype::Bf16 => tch::Kind::BFloat16,
            OutputDtype::F32 => tch::Kind::Float,
        }
    }

    /// From a tch kind (`None` for kinds the kernels do not write).
    pub fn from_kind(kind: tch::Kind) -> Option<Self> {
        Some(match kind {
            tch::Kind::Uint8 => OutputDtype::U8,
            tch::Kind::Half => OutputDtype::F16,
            tch::Kind::BFloat16 => OutputDtype::Bf16,
            tch::Kind::Float => OutputDtype::F32,
            _ => return None,
        })
    }
}

/// Channel arrangement of an RGB destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RgbLayout {
    /// `[H, W, 3]` (HWC).
    Interleaved,
    /// `[3, H, W]` (CHW).
    Planar,
}

/// `out = (v * scale - mean[c]) / std[c]` per channel, v the RGB value in 0..=255.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalize {
    /// Applied to the 0..=255 value first (1/255 to work in 0..=1).
    pub scale: f32,
    /// Per-channel mean (R, G, B), in scaled units.
    pub mean: [f32; 3],
    /// Per-channel standard deviation (R, G, B), in scaled units.
    pub std: [f32; 3],
}

impl Normalize {
    /// `(v / 255 - mean) / std`, torchvision's `ToTensor` + `Normalize(mean, std)`.
    pub fn new(mean: [f32; 3], std: [f32; 3]) -> Self {
        Normalize {
            scale: 1.0 / 255.0,
            mean,
            std,
        }
    }
    /// ImageNet mean/std.
    pub fn imagenet() -> Self {
        Self::new([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    }
    /// Only `v / 255` (values in 0..=1).
    pub fn unit() -> Self {
        Self::new([0.0; 3], [1.0; 3])
    }
}

/// Where the CPU converter's one-pass resize (`cpu::convert::write_frame_resized`) puts a frame: an RGB slot of `width x height` f32 values, cut from `crop` of the
/// picture (all of it when `None`), planar (`[3, H, W]`) or interleaved (`[H, W, 3]`), normalised or not.
pub(crate) struct ResizeTarget {
    pub crop: Option<CropRect>,
    pub width: usize,
    pub height: usize,
    pub planar: bool,
    pub normalize: Option<Normalize>,
    /// Rows spread over rayon's threads (a decoder given several threads); otherwise converted on the calling
    /// thread (a decoder of one thread, such as each of a DataLoader's workers when there are as many workers as
    /// cores, whose frames would otherwise wait for rayon's threads while the other workers keep the cores busy).
    pub parallel: bool,
}

/// A rectangle of the source picture, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CropRect {
    /// Left edge (even for 4:2:0 streams decoded on NVDEC).
    pub left: u32,
    /// Top edge (even for 4:2:0 streams decoded on NVDEC).
    pub top: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl CropRect {
    /// The largest centred rectangle of `width / height` aspect ratio inside a `src_w x src_h` picture, with an
    /// even origin (what "resize the shorter side, then centre crop" reads from the source).
    pub fn centered(src_w: u32, src_h: u32, width: u32, height: u32) -> CropRect {
        let (sw, sh) = (u64::from(src_w), u64::from(src_h));
        let (w, h) = (u64::from(width.max(1)), u64::from(height.max(1)));
        let (cw, ch) = if sw * h >= sh * w {
            ((sh * w / h).max(1), sh)
        } else {
            (sw, (sw * h / w).max(1))
        };
        CropRect {
            left: (((sw - cw) / 2) & !1) as u32,
            top: (((sh - ch) / 2) & !1) as u32,
            width: cw as u32,
            height: ch as u32,
        }
    }
}

/// Crop and normalisation applied while a frame is written into its slot (size and kind come from the slot).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FrameTransform {
    /// Read only this rectangle of the picture (then resized to the slot's size); `None` = the whole picture.
    pub crop: Option<CropRect>,
    /// `(v * scale - mean) / std` per channel; float destinations only.
    pub normalize: Option<Normalize>,
}

impl FrameTransform {
    /// No crop, no normalisation.
    pub fn identity() -> Self {
        Self::default()
    }

    /// Whether this transform changes nothing.
    pub fn is_identity(&self) -> bool {
        self.crop.is_none() && self.normalize.is_none()
    }

    /// Checks the crop against a `width x height` picture.
    pub(crate) fn check(&self, width: u32, height: u32) -> Result<()> {
        if let Some(c) = self.crop {
            if c.width == 0
                || c.height == 0
                || u64::from(c.left) + u64::from(c.width) > u64::from(width)
                || u64::from(c.top) + u64::from(c.height) > u64::from(height)
            {
                return Err(Error::InvalidArgument(format!(
                    "crop {}x{}+{}+{} outside the {width}x{height} picture",
                    c.width, c.height, c.left, c.top
                )));
            }
        }
        if let Some(n) = self.normalize {
            if n.std.iter().any(|&s| s == 0.0 || !s.is_finite()) {
                return Err(Error::InvalidArgument(format!(
                    "normalisation std {:?} must be finite and non-zero",
                    n.std
                )));
            }
        }
        Ok(())
    }
}

/// Height and width of an RGB slot shape (`[3, H, W]` or `[H, W, 3]`), or an error naming the expected layout.
pub(crate) fn slot_hw(color: ColorType, slot: &[i64]) -> Result<(i64, i64)> {
    match (color, slot) {
        (ColorType::Rgbp, [3, h, w]) | (ColorType::Rgb, [h, w, 3]) if *h > 0 && *w > 0 => {
            Ok((*h, *w))
        }
        _ => Err(Error::InvalidArgument(format!(
            "frame slot {slot:?} does not fit {color:?} ({})",
            match color {
                ColorType::Rgbp => "[3, H, W]",
                ColorType::Rgb => "[H, W, 3]",
                ColorType::Native => "[bytes]",
            }
        ))),
    }
}

/// Whether a destination of `kind` holds floats (values are then not rounded); an error when `t` normalises into
/// an integer destination.
pub(crate) fn float_destination(kind: Kind, t: &FrameTransform) -> Result<bool> {
    let float_out = matches!(
        kind,
        Kind::Half | Kind::BFloat16 | Kind::Float | Kind::Double
    );
    if t.normalize.is_some() && !float_out {
        return Err(Error::InvalidArgument(
            "normalisation needs a float destination (f16, bf16, f32)".into(),
        ));
    }
    Ok(float_out)
}

/// Writes `src` (uint8 frames at the stream's size, `[n, 3, h, w]` or `[n, h, w, 3]` as `color` says, on the CPU)
/// into `out` (`[n, ...]` of any RGB slot size, kind and device) through `t`, with torch operations: crop, bilinear
/// resize (half-pixel centres, as the NVDEC kernel), normalisation, rounding for integer outputs.
pub(crate) fn apply(
    src: &Tensor,
    color: ColorType,
    t: &FrameTransform,
    out: &mut Tensor,
) -> Result<()> {
    let size = out.size();
    let (oh, ow) = slot_hw(color, &size[1..])?;
    let mut x = src.f_to_device(out.device())?;
    if color == ColorType::Rgb {
        x = x.f_permute([0, 3, 1, 2])?;
    }
    if let Some(c) = t.crop {
        x = x
            .f_narrow(2, i64::from(c.top), i64::from(c.height))?
            .f_narrow(3, i64::from(c.left), i64::from(c.width))?;
    }
    let (h, w) = (x.size()[2], x.size()[3]);
    let float_out = float_destination(out.kind(), t)?;
    if (h, w) != (oh, ow) || float_out {
        x = x.f_to_kind(Kind::Float)?;
        if (h, w) != (oh, ow) {
            x = x.f_upsample_bilinear2d([oh, ow], false, None, None)?;
        }
        if let Some(n) = t.normalize {
            let dev = out.device();
            let mean = Tensor::f_from_slice(&n.mean)?
                .f_to_device(dev)?
                .f_view([1, 3, 1, 1])?;
            let std = Tensor::f_from_slice(&n.std)?
                .f_to_device(dev)?
                .f_view([1, 3, 1, 1])?;
            x = ((x * f64::from(n.scale)) - mean) / std;
        }
        if !float_out {
            x = x.f_round()?.f_clamp(0.0, 255.0)?;
        }
    }
    if color == ColorType::Rgb {
        x = x.f_permute([0, 2, 3, 1])?;
    }
    out.f_copy_(&x)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centered_crop_keeps_the_aspect_ratio_and_an_even_origin() {
        let c = CropRect::centered(1920, 1080, 224, 224);
        assert_eq!((c.width, c.height), (1080, 1080));
        assert_eq!((c.left, c.top), (420, 0));
        let c = CropRect::centered(321, 241, 100, 50);
        assert_eq!((c.width, c.height), (321, 160));
        assert_eq!(c.top % 2, 0);
    }

    #[test]
    fn crop_outside_the_picture_is_an_error() {
        let t = FrameTransform {
            crop: Some(CropRect {
                left: 10,
                top: 0,
                width: 100,
                height: 10,
            }),
            normalize: None,
        };
        assert!(t.check(100, 100).is_err());
        assert!(t.check(110, 100).is_ok());
    }

    #[test]
    fn apply_crops_resizes_and_normalises() {
        // A 1-frame 4x4 RGBP picture whose red channel is 0..16.
        let src = Tensor::arange(48, (Kind::Uint8, tch::Device::Cpu)).view([1, 3, 4, 4]);
        let t = FrameTransform {
            crop: Some(CropRect {
                left: 2,
                top: 2,
                width: 2,
                height: 2,
            }),
            normalize: Some(Normalize::new([0.0; 3], [1.0; 3])),
        };
        let mut out = Tensor::zeros([1, 3, 2, 2], (Kind::Float, tch::Device::Cpu));
        apply(&src, ColorType::Rgbp, &t, &mut out).unwrap();
        let v = Vec::<f32>::try_from(out.get(0).get(0).flatten(0, -1)).unwrap();
        let want: Vec<f32> = [10.0, 11.0, 14.0, 15.0].iter().map(|x| x / 255.0).collect();
        assert!(
            v.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{v:?}"
        );
        // Downscale 4x4 -> 2x2 u8 interleaved: each output is the mean of a 2x2 block (half-pixel centres).
        let src = Tensor::arange(48, (Kind::Uint8, tch::Device::Cpu)).view([1, 4, 4, 3]);
        let mut out = Tensor::zeros([1, 2, 2, 3], (Kind::Uint8, tch::Device::Cpu));
        apply(&src, ColorType::Rgb, &FrameTransform::identity(), &mut out).unwrap();
        // Channel 0 of the top-left block: values 0, 3, 12, 15 -> 7.5 -> 8.
        assert_eq!(out.int64_value(&[0, 0, 0, 0]), 8);
    }
}
