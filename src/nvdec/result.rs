//! The result layer, as in cudarc's `sys -> result -> safe`: one thin `unsafe fn` per nvcuvid entry point that
//! calls it through the loaded [`NvcuvidApi`] table and turns its `CUresult` into a [`Result`]
//! ([`Error::Nvdec`] naming the call); an optional entry point the driver lacks is [`Error::Unsupported`]. Handles
//! and out-values come back as return values instead of out-pointers.
//!
//! # Safety
//! Every function here has nvcuvid's own contract: handles that came from the matching create call and are still
//! alive, structs fully initialised and valid for the duration of the call, and the decoder's CUDA context bound
//! on the calling thread. Callers state at each call why these hold (`// SAFETY:`).

use std::ffi::c_int;

use super::api::NvcuvidApi;
use super::sys;
use crate::error::{Error, Result};

/// Turns an nvcuvid status into a result.
pub(crate) fn check(call: &'static str, code: c_int) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Error::Nvdec {
            call,
            code,
            name: super::api::cu_result_name(code),
        })
    }
}

/// The error for an optional entry point this driver does not export.
fn missing(call: &'static str) -> Error {
    Error::Unsupported(format!("this NVIDIA driver has no {call}"))
}

/// `cuvidGetDecoderCaps`: fills `caps` (its codec, chroma format and bit depth set by the caller).
///
/// # Safety
/// A CUDA context is bound on this thread.
pub(crate) unsafe fn get_decoder_caps(
    api: &NvcuvidApi,
    caps: &mut sys::CUVIDDECODECAPS,
) -> Result<()> {
    let f = api
        .get_decoder_caps
        .ok_or_else(|| missing("cuvidGetDecoderCaps"))?;
    // SAFETY: `caps` is a valid, initialised struct for the duration of the call; the caller binds the context.
    check("cuvidGetDecoderCaps", unsafe { f(caps) })
}

/// `cuvidCreateDecoder`: a new decoder for `info`.
///
/// # Safety
/// `info` is fully initialised (its pointers valid); the context is bound.
pub(crate) unsafe fn create_decoder(
    api: &NvcuvidApi,
    info: &mut sys::CUVIDDECODECREATEINFO,
) -> Result<sys::CUvideodecoder> {
    let mut handle: sys::CUvideodecoder = std::ptr::null_mut();
    // SAFETY: the caller guarantees `info` and the context; `handle` is a valid out-pointer.
    check("cuvidCreateDecoder", unsafe {
        (api.create_decoder)(&mut handle, info)
    })?;
    Ok(handle)
}

/// `cuvidDestroyDecoder`.
///
/// # Safety
/// `handle` came from [`create_decoder`], is destroyed once, and none of its frames is mapped; the context is
/// bound.
pub(crate) unsafe fn destroy_decoder(api: &NvcuvidApi, handle: sys::CUvideodecoder) -> Result<()> {
    // SAFETY: the caller's contract.
    check("cuvidDestroyDecoder", unsafe {
        (api.destroy_decoder)(handle)
    })
}

/// `cuvidDecodePicture`.
///
/// # Safety
/// `handle` is a live decoder; `pic` is the parser's picture parameters, valid during the call; the context is
/// bound.
pub(crate) unsafe fn decode_picture(
    api: &NvcuvidApi,
    handle: sys::CUvideodecoder,
    pic: *mut sys::CUVIDPICPARAMS,
) -> Result<()> {
    // SAFETY: the caller's contract.
    check("cuvidDecodePicture", unsafe {
        (api.decode_picture)(handle, pic)
    })
}

/// `cuvidGetDecodeStatus` of picture `index` into `out`.
///
/// # Safety
/// `handle` is a live decoder; the context is bound.
pub(crate) unsafe fn get_decode_status(
    api: &NvcuvidApi,
    handle: sys::CUvideodecoder,
    index: c_int,
    out: &mut sys::CUVIDGETDECODESTATUS,
) -> Result<()> {
    let f = api
        .get_decode_status
        .ok_or_else(|| missing("cuvidGetDecodeStatus"))?;
    // SAFETY: the caller's contract; `out` is a valid out-struct.
    check("cuvidGetDecodeStatus", unsafe { f(handle, index, out) })
}

/// `cuvidReconfigureDecoder`.
///
/// # Safety
/// `handle` is a live decoder with no frame mapped or queued; `info` is initialised; the context is bound (nvcuvid
/// wants it called from the sequence callback).
pub(crate) unsafe fn reconfigure_decoder(
    api: &NvcuvidApi,
    handle: sys::CUvideodecoder,
    info: &mut sys::CUVIDRECONFIGUREDECODERINFO,
) -> Result<()> {
    let f = api
        .reconfigure_decoder
        .ok_or_else(|| missing("cuvidReconfigureDecoder"))?;
    // SAFETY: the caller's contract.
    check("cuvidReconfigureDecoder", unsafe { f(handle, info) })
}

/// `cuvidMapVideoFrame64`: the device pointer and pitch of picture `index`, post-processed as `proc` says.
///
/// # Safety
/// `handle` is a live decoder and `index` one of its decode surfaces; `proc` is initialised (its stream valid);
/// the context is bound.
pub(crate) unsafe fn map_video_frame(
    api: &NvcuvidApi,
    handle: sys::CUvideodecoder,
    index: c_int,
    proc: &mut sys::CUVIDPROCPARAMS,
) -> Result<(u64, u32)> {
    let (mut dptr, mut pitch) = (0u64, 0u32);
    // SAFETY: the caller's contract; the out-pointers are valid locals.
    check("cuvidMapVideoFrame64", unsafe {
        (api.map_video_frame)(handle, index, &mut dptr, &mut pitch, proc)
    })?;
    Ok((dptr, pitch))
}

/// `cuvidUnmapVideoFrame64`.
///
/// # Safety
/// `dptr` is the pointer [`map_video_frame`] returned for `handle`, unmapped once, after all work reading it has
/// finished; the context is bound.
pub(crate) unsafe fn unmap_video_frame(
    api: &NvcuvidApi,
    handle: sys::CUvideodecoder,
    dptr: u64,
) -> Result<()> {
    // SAFETY: the caller's contract.
    check("cuvidUnmapVideoFrame64", unsafe {
        (api.unmap_video_frame)(handle, dptr)
    })
}

/// `cuvidCreateVideoParser`: a new parser for `params`.
///
/// # Safety
/// `params` is fully initialised; its callbacks never unwind; its user pointer and extended format info stay
/// valid until the parser is destroyed.
pub(crate) unsafe fn create_video_parser(
    api: &NvcuvidApi,
    params: &mut sys::CUVIDPARSERPARAMS,
) -> Result<sys::CUvideoparser> {
    let mut parser: sys::CUvideoparser = std::ptr::null_mut();
    // SAFETY: the caller's contract; `parser` is a valid out-pointer.
    check("cuvidCreateVideoParser", unsafe {
        (api.create_video_parser)(&mut parser, params)
    })?;
    Ok(parser)
}

/// `cuvidParseVideoData`: runs the parser (and its callbacks, synchronously) over `packet`.
///
/// # Safety
/// `parser` is live; `packet` and the data it points at are valid during the call; the context is bound; no Rust
/// reference to the state the callbacks reach is live.
pub(crate) unsafe fn parse_video_data(
    api: &NvcuvidApi,
    parser: sys::CUvideoparser,
    packet: &mut sys::CUVIDSOURCEDATAPACKET,
) -> Result<()> {
    // SAFETY: the caller's contract.
    check("cuvidParseVideoData", unsafe {
        (api.parse_video_data)(parser, packet)
    })
}

/// `cuvidDestroyVideoParser`.
///
/// # Safety
/// `parser` came from [`create_video_parser`] and is destroyed once, before the state its callbacks reach.
pub(crate) unsafe fn destroy_video_parser(
    api: &NvcuvidApi,
    parser: sys::CUvideoparser,
) -> Result<()> {
    // SAFETY: the caller's contract.
    check("cuvidDestroyVideoParser", unsafe {
        (api.destroy_video_parser)(parser)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_maps_codes() {
        assert!(check("x", 0).is_ok());
        match check("cuvidCreateDecoder", 801) {
            Err(Error::Nvdec { call, code, name }) => {
                assert_eq!(call, "cuvidCreateDecoder");
                assert_eq!(code, 801);
                assert_eq!(name, super::super::api::cu_result_name(801));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            super::super::cu_result_name(801),
            "CUDA_ERROR_NOT_SUPPORTED"
        );
    }
}
