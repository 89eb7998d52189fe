//! What an encoder is fed: where the bytes come from ([`InputLayout`]), the colour description of a transcoded
//! stream ([`ColorTags`]), and how the input becomes the encoder's picture ([`Conversion`], and the 16-bit
//! high-bit repack that needs no swscale).

use ff::format::Pixel;
use ffmpeg_next as ff;

use super::options::InputFormat;
use crate::ffi::encode as ffe;

/// How input bytes become the encoder's picture.
pub(crate) enum Conversion {
    /// Same layout: the planes are copied into the frame.
    Copy,
    /// Colour / layout conversion through swscale (RGB -> YUV, NV12 -> I420, 4:2:2 -> 4:2:0 ...).
    Scale(ffe::Scaler),
    /// 16-bit samples with the value in the top 10 bits (P010, NVENC's YUV444 10-bit) -> 10-bit planar.
    HighBitsTo10,
}

/// Where the bytes handed to the encoder come from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum InputLayout {
    /// A user tensor in one of PyNvVideoCodec's layouts.
    Format(InputFormat),
    /// Packed planes of an FFmpeg pixel format (the decoders' `Native` output), as `ffmpeg -f rawvideo` writes.
    Raw(Pixel),
}

impl InputLayout {
    /// The pixel format the input bytes are in.
    pub(crate) fn pixel(self) -> Pixel {
        match self {
            // The JPEG-range formats hold the same bytes as their plain twins; the range is a tag, and a
            // conversion between the two would rescale the samples.
            InputLayout::Raw(Pixel::YUVJ420P) => Pixel::YUV420P,
            InputLayout::Raw(Pixel::YUVJ422P) => Pixel::YUV422P,
            InputLayout::Raw(Pixel::YUVJ444P) => Pixel::YUV444P,
            InputLayout::Raw(p) => p,
            InputLayout::Format(f) => match f {
                InputFormat::Nv12 => Pixel::NV12,
                InputFormat::Yuv420 => Pixel::YUV420P,
                InputFormat::Yuv444 => Pixel::YUV444P,
                InputFormat::P010 => Pixel::P010LE,
                InputFormat::Yuv444_16bit => Pixel::YUV444P16LE,
                InputFormat::Argb => Pixel::BGRA,
                InputFormat::Abgr => Pixel::RGBA,
                InputFormat::Rgb => Pixel::RGB24,
                InputFormat::Rgbp => Pixel::GBRP,
            },
        }
    }

    /// (deeper than 8 bits, 4:4:4 chroma, is RGB).
    pub(crate) fn traits(self) -> (bool, bool, bool) {
        match self {
            InputLayout::Format(f) => (f.high_bit_depth(), f.full_chroma(), f.is_rgb()),
            InputLayout::Raw(p) => {
                let (depth, chroma) = crate::io::demux::pixel_format_depth_chroma(p, 0);
                (depth > 8, chroma == "444", false)
            }
        }
    }
}

/// The colour description a stream is tagged with (copied from a transcoder's input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ColorTags {
    space: ff::color::Space,
    primaries: ff::color::Primaries,
    transfer: ff::color::TransferCharacteristic,
    range: ff::color::Range,
}

impl ColorTags {
    /// The tags of an input video stream.
    pub(crate) fn of_stream(stream: &ff::format::stream::Stream<'_>) -> Option<Self> {
        let ctx = ff::codec::Context::from_parameters(stream.parameters()).ok()?;
        let v = ctx.decoder().video().ok()?;
        Some(ColorTags {
            space: v.color_space(),
            primaries: v.color_primaries(),
            transfer: v.color_transfer_characteristic(),
            range: v.color_range(),
        })
    }

    /// Tags an encoder's context (before it opens) with this description.
    pub(crate) fn apply(&self, ctx: &mut ff::codec::encoder::video::Video) {
        ctx.set_colorspace(self.space);
        ctx.set_color_primaries(self.primaries);
        ctx.set_color_transfer_characteristic(self.transfer);
        ctx.set_color_range(self.range);
    }
}

/// 16-bit samples with the value in the top 10 bits (P010 / YUV444 16-bit) -> 10-bit planar (yuv420p10le /
/// yuv444p10le): a shift, and for P010 the de-interleave of U and V.
pub(crate) fn high_bits_to_10(src: &ff::frame::Video, dst: &mut ff::frame::Video) {
    let (w, h) = (src.width() as usize, src.height() as usize);
    let sample = |d: &[u8], i: usize| u16::from_le_bytes([d[2 * i], d[2 * i + 1]]) >> 6;
    let put =
        |d: &mut [u8], i: usize, v: u16| d[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
    if src.format() == Pixel::P010LE {
        let (ss, ds) = (src.stride(0), dst.stride(0));
        for y in 0..h {
            let s = &src.data(0)[y * ss..];
            let d = &mut dst.data_mut(0)[y * ds..];
            for x in 0..w {
                put(d, x, sample(s, x));
            }
        }
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (ss, us, vs) = (src.stride(1), dst.stride(1), dst.stride(2));
        for y in 0..ch {
            let row: Vec<u16> = (0..2 * cw)
                .map(|i| sample(&src.data(1)[y * ss..], i))
                .collect();
            let u = &mut dst.data_mut(1)[y * us..];
            for x in 0..cw {
                put(u, x, row[2 * x]);
            }
            let v = &mut dst.data_mut(2)[y * vs..];
            for x in 0..cw {
                put(v, x, row[2 * x + 1]);
            }
        }
    } else {
        for p in 0..3 {
            let (ss, ds) = (src.stride(p), dst.stride(p));
            for y in 0..h {
                let s = &src.data(p)[y * ss..];
                let d = &mut dst.data_mut(p)[y * ds..];
                for x in 0..w {
                    put(d, x, sample(s, x));
                }
            }
        }
    }
}
