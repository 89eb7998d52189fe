//! How [`EncoderOptions`] become one FFmpeg encoder's settings: the encoder name, its pixel format and the
//! option dictionary handed to `avcodec_open2`. Every setting is mapped explicitly per backend; one a backend
//! cannot honour is [`Error::Unsupported`] naming it, and an option the encoder did not consume is caught when
//! it opens. The table in the module docs of [`crate::encode`] is this file in prose.

use ff::format::Pixel;
use ffmpeg_next as ff;

use super::options::{Codec, EncoderOptions, Preset, RateControl, Tuning};
use crate::{ColorMatrix, ColorRange, Error, Result};

/// Which family of encoder a setup is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    X264,
    X265,
    SvtAv1,
    Nvenc,
}

/// Everything needed to open one encoder.
#[derive(Clone, Debug)]
pub(crate) struct EncoderSetup {
    /// FFmpeg's encoder name (`libx264`, `h264_nvenc` ...).
    pub name: &'static str,
    pub family: Family,
    /// The pixel format the encoder is opened with.
    pub pixel: Pixel,
    /// The `avcodec_open2` dictionary, in order.
    pub options: Vec<(String, String)>,
    /// The GPU an NVENC encoder runs on (`None` for software encoders): a restart reopens it there.
    pub gpu: Option<usize>,
}

/// The pixel format an encoder family is opened with for a source deeper than 8 bits (`high_bit_depth`), with full
/// chroma (`chroma444`), or in NV12 (which libx264 takes as it is).
fn encoder_pixel(
    family: Family,
    high_bit_depth: bool,
    chroma444: bool,
    nv12: bool,
) -> Result<Pixel> {
    Ok(match (family, high_bit_depth, chroma444) {
        (Family::SvtAv1, _, true) => {
            return Err(Error::Unsupported(
                "4:4:4 with SVT-AV1 (it encodes 4:2:0 only)".into(),
            ))
        }
        (Family::Nvenc, false, false) => Pixel::NV12,
        (Family::Nvenc, true, false) => Pixel::P010LE,
        (Family::Nvenc, false, true) => Pixel::YUV444P,
        (Family::Nvenc, true, true) => Pixel::YUV444P16LE,
        (Family::X264, false, false) if nv12 => Pixel::NV12,
        (_, false, false) => Pixel::YUV420P,
        (_, true, false) => Pixel::YUV420P10LE,
        (_, false, true) => Pixel::YUV444P,
        (_, true, true) => Pixel::YUV444P10LE,
    })
}

fn x26x_preset(p: Preset) -> &'static str {
    match p {
        Preset::P1 => "ultrafast",
        Preset::P2 => "superfast",
        Preset::P3 => "veryfast",
        Preset::P4 => "faster",
        Preset::P5 => "fast",
        Preset::P6 => "medium",
        Preset::P7 => "slow",
    }
}

fn svt_preset(p: Preset) -> u32 {
    match p {
        Preset::P1 => 12,
        Preset::P2 => 11,
        Preset::P3 => 10,
        Preset::P4 => 8,
        Preset::P5 => 6,
        Preset::P6 => 5,
        Preset::P7 => 4,
    }
}

/// FFmpeg's names of a matrix (`colorspace`, `color_primaries`, `color_trc`).
pub(crate) fn matrix_tags(m: ColorMatrix) -> [(&'static str, &'static str); 3] {
    match m {
        ColorMatrix::Bt601 => [
            ("colorspace", "smpte170m"),
            ("color_primaries", "smpte170m"),
            ("color_trc", "smpte170m"),
        ],
        ColorMatrix::Bt709 => [
            ("colorspace", "bt709"),
            ("color_primaries", "bt709"),
            ("color_trc", "bt709"),
        ],
        ColorMatrix::Bt2020 => [
            ("colorspace", "bt2020nc"),
            ("color_primaries", "bt2020"),
            ("color_trc", "bt2020-10"),
        ],
    }
}

struct Builder {
    opts: Vec<(String, String)>,
    /// `key=value` pairs of the encoder's own parameter string (`x264-params` ...).
    params: Vec<String>,
}

impl Builder {
    fn set(&mut self, k: &str, v: impl ToString) {
        self.opts.push((k.to_string(), v.to_string()));
    }
    fn param(&mut self, k: &str, v: impl ToString) {
        self.params.push(format!("{k}={}", v.to_string()));
    }
}

fn unsupported(family: Family, what: &str) -> Error {
    let name = match family {
        Family::X264 => "libx264",
        Family::X265 => "libx265",
        Family::SvtAv1 => "SVT-AV1",
        Family::Nvenc => "NVENC",
    };
    Error::Unsupported(format!("{what} with {name}"))
}

/// Settings shared by the x264 / x265 families.
fn x26x(o: &EncoderOptions, family: Family, b: &mut Builder) -> Result<()> {
    let x264 = family == Family::X264;
    b.set("preset", x26x_preset(o.preset));
    match o.tuning_info {
        Tuning::HighQuality => {}
        Tuning::LowLatency | Tuning::UltraLowLatency => b.set("tune", "zerolatency"),
        Tuning::Lossless => {
            if o.rc != RateControl::Vbr || o.bitrate.is_some() {
                return Err(Error::InvalidArgument(
                    "tuning lossless takes no rate control settings".into(),
                ));
            }
            if x264 {
                b.set("qp", 0);
            } else {
                b.param("lossless", 1);
            }
        }
    }
    if o.initqp.is_some() {
        return Err(unsupported(
            family,
            "initqp (x264 and x265 have no initial QP)",
        ));
    }
    let bufsize = match o.rc {
        RateControl::Cbr => {
            let rate = o.bitrate.unwrap_or_default();
            if o.maxbitrate.is_some_and(|m| m != rate) {
                return Err(Error::InvalidArgument(
                    "rc cbr: maxbitrate must equal bitrate or be unset".into(),
                ));
            }
            let buf = o.vbvbufsize.unwrap_or(rate);
            b.set("b", rate);
            b.set("maxrate", rate);
            b.set("bufsize", buf);
            if x264 {
                b.param("nal-hrd", "cbr");
            } else {
                b.param("strict-cbr", 1);
            }
            Some(buf)
        }
        RateControl::Vbr => {
            if let Some(rate) = o.bitrate {
                b.set("b", rate);
            }
            if let Some(max) = o.maxbitrate {
                b.set("maxrate", max);
            }
            let buf = o.vbvbufsize.or(o.maxbitrate);
            if let Some(buf) = buf {
                if o.maxbitrate.is_none() {
                    return Err(Error::InvalidArgument(
                        "vbvbufsize needs maxbitrate (or rc cbr)".into(),
                    ));
                }
                b.set("bufsize", buf);
            }
            buf
        }
        RateControl::ConstQp => {
            if o.vbvbufsize.is_some() {
                return Err(Error::InvalidArgument(
                    "rc constqp takes no VBV buffer".into(),
                ));
            }
            b.set("qp", o.constqp.unwrap_or_default());
            None
        }
    };
    if let Some(init) = o.vbvinit {
        let buf = bufsize.ok_or_else(|| {
            Error::InvalidArgument("vbvinit needs a VBV buffer (rc cbr, or maxbitrate)".into())
        })?;
        if x264 {
            b.set("rc_init_occupancy", init);
        } else {
            b.param(
                "vbv-init",
                format!("{:.4}", init as f64 / buf.max(1) as f64),
            );
        }
    }
    if x264 {
        if let Some(q) = o.qmin {
            b.set("qmin", q);
        }
        if let Some(q) = o.qmax {
            b.set("qmax", q);
        }
    } else {
        if let Some(q) = o.qmin {
            b.param("qpmin", q);
        }
        if let Some(q) = o.qmax {
            b.param("qpmax", q);
        }
    }
    if let Some(g) = o.gop {
        if o.idrperiod.is_some_and(|i| i != g) {
            return Err(unsupported(
                family,
                "idrperiod other than gop (every intra picture is an IDR)",
            ));
        }
        if x264 {
            b.set("g", g);
            b.set("keyint_min", g);
            b.set("sc_threshold", 0);
        } else {
            b.param("keyint", g);
            b.param("min-keyint", g);
            b.param("scenecut", 0);
        }
    } else if let Some(i) = o.idrperiod {
        if x264 {
            b.set("g", i);
        } else {
            b.param("keyint", i);
        }
    }
    if !x264 {
        // x265 defaults to open GOPs (CRA pictures); closed ones make every intra picture a random-access IDR.
        b.param("open-gop", 0);
    }
    if let Some(bf) = o.bf {
        if x264 {
            b.set("bf", bf);
        } else {
            b.param("bframes", bf);
        }
    }
    if let Some(la) = o.lookahead {
        if x264 {
            b.set("rc-lookahead", la);
        } else {
            b.param("rc-lookahead", la);
        }
    }
    if let Some(aq) = o.aq {
        if x264 {
            b.set("aq-mode", u8::from(aq));
        } else {
            b.param("aq-mode", u8::from(aq));
        }
    }
    if o.repeatspspps {
        b.param("repeat-headers", 1);
    }
    b.set("udu_sei", 1);
    if !x264 {
        b.param("log-level", "error");
    }
    Ok(())
}

fn svt(o: &EncoderOptions, b: &mut Builder) -> Result<()> {
    let f = Family::SvtAv1;
    b.set("preset", svt_preset(o.preset));
    match o.tuning_info {
        Tuning::HighQuality => {}
        Tuning::LowLatency | Tuning::UltraLowLatency => b.param("pred-struct", 1),
        Tuning::Lossless => return Err(unsupported(f, "tuning lossless")),
    }
    for (set, what) in [
        (o.initqp.is_some(), "initqp"),
        (o.vbvbufsize.is_some(), "vbvbufsize"),
        (o.vbvinit.is_some(), "vbvinit"),
        (o.maxbitrate.is_some(), "maxbitrate"),
        (
            o.bf.is_some(),
            "bf (AV1 has no B-frames; SVT-AV1 predicts hierarchically)",
        ),
        (o.repeatspspps, "repeatspspps"),
        (
            o.rc == RateControl::Cbr,
            "rc cbr (SVT-AV1 runs CBR only in its low-delay mode; use vbr)",
        ),
    ] {
        if set {
            return Err(unsupported(f, what));
        }
    }
    match o.rc {
        RateControl::Vbr => match o.bitrate {
            Some(rate) => b.set("b", rate),
            None => b.set("crf", 35),
        },
        RateControl::ConstQp => {
            b.set("qp", o.constqp.unwrap_or_default());
            b.param("enable-tpl-la", 0);
        }
        RateControl::Cbr => unreachable!("rejected above"),
    }
    if let Some(q) = o.qmin {
        b.param("min-qp", q);
    }
    if let Some(q) = o.qmax {
        b.param("max-qp", q);
    }
    if let Some(g) = o.gop {
        if o.idrperiod.is_some_and(|i| i != g) {
            return Err(unsupported(f, "idrperiod other than gop"));
        }
        b.set("g", g);
    } else if let Some(i) = o.idrperiod {
        b.set("g", i);
    }
    if let Some(la) = o.lookahead {
        b.param("lookahead", la);
    }
    if let Some(aq) = o.aq {
        b.param("aq-mode", if aq { 2 } else { 0 });
    }
    Ok(())
}

fn nvenc(o: &EncoderOptions, gpu: usize, b: &mut Builder) -> Result<()> {
    b.set("gpu", gpu);
    b.set("preset", format!("p{}", o.preset.number()));
    b.set(
        "tune",
        match o.tuning_info {
            Tuning::HighQuality => "hq",
            Tuning::LowLatency => "ll",
            Tuning::UltraLowLatency => "ull",
            Tuning::Lossless => "lossless",
        },
    );
    b.set(
        "rc",
        match o.rc {
            RateControl::Cbr => "cbr",
            RateControl::Vbr => "vbr",
            RateControl::ConstQp => "constqp",
        },
    );
    if let Some(v) = o.bitrate {
        b.set("b", v);
    }
    if let Some(v) = o.maxbitrate {
        b.set("maxrate", v);
    }
    if let Some(v) = o.vbvbufsize {
        b.set("bufsize", v);
    }
    if let Some(v) = o.vbvinit {
        b.set("rc_init_occupancy", v);
    }
    if let Some(v) = o.qmin {
        b.set("qmin", v);
    }
    if let Some(v) = o.qmax {
        b.set("qmax", v);
    }
    if let Some(v) = o.initqp {
        b.set("init_qpI", v);
        b.set("init_qpP", v);
        b.set("init_qpB", v);
    }
    if let Some(v) = o.constqp {
        b.set("qp", v);
    }
    if let Some(g) = o.gop {
        b.set("g", g);
    }
    if let Some(i) = o.idrperiod {
        if o.gop.is_some_and(|g| g != i) {
            return Err(unsupported(
                Family::Nvenc,
                "idrperiod other than gop (FFmpeg's NVENC wrapper sets the IDR period to the GOP)",
            ));
        }
        b.set("g", i);
    }
    if let Some(bf) = o.bf {
        b.set("bf", bf);
    }
    if let Some(la) = o.lookahead {
        b.set("rc-lookahead", la);
    }
    if let Some(aq) = o.aq {
        b.set("spatial-aq", u8::from(aq));
    }
    if o.repeatspspps {
        return Err(unsupported(
            Family::Nvenc,
            "repeatspspps in a container (raw output repeats them on every IDR)",
        ));
    }
    b.set("forced-idr", 1);
    if o.codec != Codec::Av1 {
        b.set("udu_sei", 1);
    }
    Ok(())
}

/// The software setup for `o`'s codec, for a source of the given depth and chroma.
pub(crate) fn software(
    o: &EncoderOptions,
    high: bool,
    c444: bool,
    nv12: bool,
) -> Result<EncoderSetup> {
    let (name, family) = match o.codec {
        Codec::H264 => ("libx264", Family::X264),
        Codec::Hevc => ("libx265", Family::X265),
        Codec::Av1 => ("libsvtav1", Family::SvtAv1),
    };
    let mut b = Builder {
        opts: Vec::new(),
        params: Vec::new(),
    };
    match family {
        Family::SvtAv1 => svt(o, &mut b)?,
        _ => x26x(o, family, &mut b)?,
    }
    common(o, &mut b);
    let key = match family {
        Family::X264 => "x264-params",
        Family::X265 => "x265-params",
        _ => "svtav1-params",
    };
    if !b.params.is_empty() {
        let joined = b.params.join(":");
        b.set(key, joined);
    }
    Ok(EncoderSetup {
        name,
        family,
        pixel: encoder_pixel(family, high, c444, nv12)?,
        options: b.opts,
        gpu: None,
    })
}

/// The NVENC setup for `o`'s codec on `gpu`.
pub(crate) fn nvenc_setup(
    o: &EncoderOptions,
    gpu: usize,
    high: bool,
    c444: bool,
) -> Result<EncoderSetup> {
    let name = match o.codec {
        Codec::H264 => "h264_nvenc",
        Codec::Hevc => "hevc_nvenc",
        Codec::Av1 => "av1_nvenc",
    };
    let mut b = Builder {
        opts: Vec::new(),
        params: Vec::new(),
    };
    nvenc(o, gpu, &mut b)?;
    common(o, &mut b);
    Ok(EncoderSetup {
        name,
        family: Family::Nvenc,
        pixel: encoder_pixel(Family::Nvenc, high, c444, true)?,
        options: b.opts,
        gpu: Some(gpu),
    })
}

/// Threads and colour tags, the same for every backend.
fn common(o: &EncoderOptions, b: &mut Builder) {
    b.set("threads", o.threads);
    if let Some(m) = o.colorspace {
        for (k, v) in matrix_tags(m) {
            b.set(k, v);
        }
    }
    if let Some(r) = o.color_range {
        b.set(
            "color_range",
            match r {
                ColorRange::Limited => "tv",
                ColorRange::Full => "pc",
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x264_cbr_maps_to_hrd() {
        let o = EncoderOptions {
            rc: RateControl::Cbr,
            bitrate: Some(1_000_000),
            gop: Some(16),
            ..Default::default()
        };
        let s = software(&o, false, false, false).unwrap();
        assert_eq!(s.name, "libx264");
        let get = |k: &str| {
            s.options
                .iter()
                .find(|(a, _)| a == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("b").as_deref(), Some("1000000"));
        assert_eq!(get("maxrate").as_deref(), Some("1000000"));
        assert_eq!(get("g").as_deref(), Some("16"));
        assert!(get("x264-params").unwrap().contains("nal-hrd=cbr"));
    }

    #[test]
    fn refusals_name_the_setting() {
        let o = EncoderOptions {
            initqp: Some(20),
            ..Default::default()
        };
        let e = software(&o, false, false, false).unwrap_err().to_string();
        assert!(e.contains("initqp") && e.contains("libx264"), "{e}");
        let o = EncoderOptions {
            codec: Codec::Av1,
            bf: Some(2),
            ..Default::default()
        };
        assert!(software(&o, false, false, false)
            .unwrap_err()
            .to_string()
            .contains("bf"));
        let o = EncoderOptions {
            codec: Codec::Av1,
            ..Default::default()
        };
        assert!(software(&o, false, true, false).is_err());
        let o = EncoderOptions {
            gop: Some(30),
            idrperiod: Some(60),
            ..Default::default()
        };
        assert!(software(&o, false, false, false).is_err());
    }
}
