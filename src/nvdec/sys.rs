//! Raw `#[repr(C)]` mirrors of the nvcuvid (NVDEC) types, x86-64 Linux layout (Video Codec SDK 13.0 headers, with
//! the 13.1 additions noted where they reuse reserved space).
//!
//! The layouts were measured with gcc against the SDK headers (`cuviddec.h`, `nvcuvid.h`) and are pinned by
//! compile-time size and offset assertions at the bottom of this file. C enums are plain `u32` type aliases with
//! `const` values, so an unknown value written by a newer driver can never be an invalid Rust enum.
//!
//! Nothing here is safe to use directly; `result.rs` turns the calls into `Result`s and [`super::NvdecSession`] is
//! the safe layer.
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

use std::ffi::{c_int, c_uint, c_ulong, c_void};

/// CUDA driver status code (0 = success).
pub type CUresult = c_int;
/// `unsigned long`: 8 bytes on Linux (4 on Windows).
pub type tcu_ulong = c_ulong;
/// Opaque decoder handle.
pub type CUvideodecoder = *mut c_void;
/// Opaque parser handle.
pub type CUvideoparser = *mut c_void;
/// Opaque context-lock handle.
pub type CUvideoctxlock = *mut c_void;
/// CUDA stream handle (same as cudarc's `CUstream`, kept opaque here).
pub type CUstream = *mut c_void;
/// Timestamp in the parser's clock units.
pub type CUvideotimestamp = i64;

/// `cudaVideoCodec`.
pub type cudaVideoCodec = c_uint;
/// MPEG-1.
pub const cudaVideoCodec_MPEG1: cudaVideoCodec = 0;
/// MPEG-2.
pub const cudaVideoCodec_MPEG2: cudaVideoCodec = 1;
/// MPEG-4 Part 2.
pub const cudaVideoCodec_MPEG4: cudaVideoCodec = 2;
/// VC-1.
pub const cudaVideoCodec_VC1: cudaVideoCodec = 3;
/// H.264 / AVC.
pub const cudaVideoCodec_H264: cudaVideoCodec = 4;
/// JPEG.
pub const cudaVideoCodec_JPEG: cudaVideoCodec = 5;
/// H.264 SVC.
pub const cudaVideoCodec_H264_SVC: cudaVideoCodec = 6;
/// H.264 MVC.
pub const cudaVideoCodec_H264_MVC: cudaVideoCodec = 7;
/// HEVC / H.265.
pub const cudaVideoCodec_HEVC: cudaVideoCodec = 8;
/// VP8.
pub const cudaVideoCodec_VP8: cudaVideoCodec = 9;
/// VP9.
pub const cudaVideoCodec_VP9: cudaVideoCodec = 10;
/// AV1.
pub const cudaVideoCodec_AV1: cudaVideoCodec = 11;

/// `cudaVideoSurfaceFormat`: layout of a mapped output surface.
pub type cudaVideoSurfaceFormat = c_uint;
/// 8-bit Y plane + interleaved CbCr plane (4:2:0).
pub const cudaVideoSurfaceFormat_NV12: cudaVideoSurfaceFormat = 0;
/// 16-bit NV12 geometry, samples MSB-aligned.
pub const cudaVideoSurfaceFormat_P016: cudaVideoSurfaceFormat = 1;
/// 8-bit planar Y, U, V (4:4:4).
pub const cudaVideoSurfaceFormat_YUV444: cudaVideoSurfaceFormat = 2;
/// 16-bit planar Y, U, V (4:4:4), MSB-aligned.
pub const cudaVideoSurfaceFormat_YUV444_16Bit: cudaVideoSurfaceFormat = 3;
/// 8-bit Y + interleaved CbCr (4:2:2).
pub const cudaVideoSurfaceFormat_NV16: cudaVideoSurfaceFormat = 4;
/// 16-bit NV16.
pub const cudaVideoSurfaceFormat_P216: cudaVideoSurfaceFormat = 5;

/// `cudaVideoChromaFormat`.
pub type cudaVideoChromaFormat = c_uint;
/// Luma only.
pub const cudaVideoChromaFormat_Monochrome: cudaVideoChromaFormat = 0;
/// 4:2:0.
pub const cudaVideoChromaFormat_420: cudaVideoChromaFormat = 1;
/// 4:2:2.
pub const cudaVideoChromaFormat_422: cudaVideoChromaFormat = 2;
/// 4:4:4.
pub const cudaVideoChromaFormat_444: cudaVideoChromaFormat = 3;

/// `cudaVideoDeinterlaceMode`.
pub type cudaVideoDeinterlaceMode = c_uint;
/// No deinterlacing (fields woven into one frame).
pub const cudaVideoDeinterlaceMode_Weave: cudaVideoDeinterlaceMode = 0;
/// Drop one field.
pub const cudaVideoDeinterlaceMode_Bob: cudaVideoDeinterlaceMode = 1;
/// Adaptive deinterlacing.
pub const cudaVideoDeinterlaceMode_Adaptive: cudaVideoDeinterlaceMode = 2;

/// `cudaVideoCreateFlags` (bit flags).
pub type cudaVideoCreateFlags = c_uint;
/// Default (dedicated video engine).
pub const cudaVideoCreate_Default: cudaVideoCreateFlags = 0x00;
/// CUDA-based decoder.
pub const cudaVideoCreate_PreferCUDA: cudaVideoCreateFlags = 0x01;
/// DXVA (Windows).
pub const cudaVideoCreate_PreferDXVA: cudaVideoCreateFlags = 0x02;
/// Dedicated video engine directly (what NVIDIA's samples and FFmpeg use).
pub const cudaVideoCreate_PreferCUVID: cudaVideoCreateFlags = 0x04;

/// `cuvidDecodeStatus`.
pub type cuvidDecodeStatus = c_uint;
/// Invalid / unknown.
pub const cuvidDecodeStatus_Invalid: cuvidDecodeStatus = 0;
/// Decode still running.
pub const cuvidDecodeStatus_InProgress: cuvidDecodeStatus = 1;
/// Decoded without error.
pub const cuvidDecodeStatus_Success: cuvidDecodeStatus = 2;
/// Error, not concealed.
pub const cuvidDecodeStatus_Error: cuvidDecodeStatus = 8;
/// Error, concealed.
pub const cuvidDecodeStatus_Error_Concealed: cuvidDecodeStatus = 9;

/// `CUvideopacketflags` (bit flags of [`CUVIDSOURCEDATAPACKET::flags`]).
pub type CUvideopacketflags = tcu_ulong;
/// Last packet: flush every pending picture.
pub const CUVID_PKT_ENDOFSTREAM: CUvideopacketflags = 0x01;
/// The timestamp field is valid.
pub const CUVID_PKT_TIMESTAMP: CUvideopacketflags = 0x02;
/// Discontinuity.
pub const CUVID_PKT_DISCONTINUITY: CUvideopacketflags = 0x04;
/// The packet holds exactly one complete frame or field.
pub const CUVID_PKT_ENDOFPICTURE: CUvideopacketflags = 0x08;
/// With ENDOFSTREAM: one extra display callback with a NULL pointer marks the end.
pub const CUVID_PKT_NOTIFY_EOS: CUvideopacketflags = 0x10;

/// A rectangle of `short`s (display_area / target_rect of the create and reconfigure structs).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CUVIDRECT16 {
    /// Left edge.
    pub left: i16,
    /// Top edge.
    pub top: i16,
    /// Right edge (exclusive).
    pub right: i16,
    /// Bottom edge (exclusive).
    pub bottom: i16,
}

/// Decoder capabilities (`cuvidGetDecoderCaps`); 88 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CUVIDDECODECAPS {
    /// IN: codec.
    pub eCodecType: cudaVideoCodec,
    /// IN: chroma format.
    pub eChromaFormat: cudaVideoChromaFormat,
    /// IN: bit depth - 8.
    pub nBitDepthMinus8: c_uint,
    /// Reserved, zero.
    pub reserved1: [c_uint; 3],
    /// OUT: 1 if supported.
    pub bIsSupported: u8,
    /// OUT: number of NVDEC engines usable for these parameters.
    pub nNumNVDECs: u8,
    /// OUT: bit n set = `cudaVideoSurfaceFormat` n allowed.
    pub nOutputFormatMask: u16,
    /// OUT: maximum coded width.
    pub nMaxWidth: c_uint,
    /// OUT: maximum coded height.
    pub nMaxHeight: c_uint,
    /// OUT: maximum macroblocks (w*h/256).
    pub nMaxMBCount: c_uint,
    /// OUT: minimum coded width.
    pub nMinWidth: u16,
    /// OUT: minimum coded height.
    pub nMinHeight: u16,
    /// OUT: luma histogram supported.
    pub bIsHistogramSupported: u8,
    /// OUT: histogram counter bit depth.
    pub nCounterBitDepth: u8,
    /// OUT: histogram bins.
    pub nMaxHistogramBins: u16,
    /// OUT (SDK 13.1; reserved and zero in 13.0): decode statistics supported.
    pub bIsDecodeStatsSupported: u8,
    /// Reserved.
    pub reserved2: [u8; 3],
    /// Reserved.
    pub reserved3: [c_uint; 9],
}

/// Decoder creation parameters (`cuvidCreateDecoder`); 176 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CUVIDDECODECREATEINFO {
    /// Coded width.
    pub ulWidth: tcu_ulong,
    /// Coded height.
    pub ulHeight: tcu_ulong,
    /// Internal decode surfaces.
    pub ulNumDecodeSurfaces: tcu_ulong,
    /// Codec.
    pub CodecType: cudaVideoCodec,
    /// Chroma format.
    pub ChromaFormat: cudaVideoChromaFormat,
    /// `cudaVideoCreateFlags`.
    pub ulCreationFlags: tcu_ulong,
    /// Bit depth - 8.
    pub bitDepthMinus8: tcu_ulong,
    /// 1 for all-intra streams only.
    pub ulIntraDecodeOnly: tcu_ulong,
    /// Upper bound of the coded width for later reconfiguration.
    pub ulMaxWidth: tcu_ulong,
    /// Upper bound of the coded height for later reconfiguration.
    pub ulMaxHeight: tcu_ulong,
    /// Reserved, zero.
    pub Reserved1: tcu_ulong,
    /// Source crop rectangle; all zero = whole coded frame.
    pub display_area: CUVIDRECT16,
    /// Output surface format.
    pub OutputFormat: cudaVideoSurfaceFormat,
    /// Deinterlacing mode.
    pub DeinterlaceMode: cudaVideoDeinterlaceMode,
    /// Output width (even).
    pub ulTargetWidth: tcu_ulong,
    /// Output height (even).
    pub ulTargetHeight: tcu_ulong,
    /// Frames that may be mapped at the same time.
    pub ulNumOutputSurfaces: tcu_ulong,
    /// Optional context lock.
    pub vidLock: CUvideoctxlock,
    /// Placement inside the target; all zero = whole target.
    pub target_rect: CUVIDRECT16,
    /// 1 = produce a luma histogram.
    pub enableHistogram: tcu_ulong,
    /// SDK 13.1 (reserved in 13.0): decode feature bit mask (bit 0 = decode statistics).
    pub enableDecodeFeatures: tcu_ulong,
    /// Reserved, zero.
    pub Reserved2: [tcu_ulong; 3],
}

/// Reconfiguration parameters (`cuvidReconfigureDecoder`); 128 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CUVIDRECONFIGUREDECODERINFO {
    /// New coded width (<= creation max).
    pub ulWidth: c_uint,
    /// New coded height (<= creation max).
    pub ulHeight: c_uint,
    /// New target width.
    pub ulTargetWidth: c_uint,
    /// New target height.
    pub ulTargetHeight: c_uint,
    /// New number of decode surfaces.
    pub ulNumDecodeSurfaces: c_uint,
    /// Reserved, zero.
    pub reserved1: [c_uint; 12],
    /// Crop rectangle.
    pub display_area: CUVIDRECT16,
    /// Placement inside the target.
    pub target_rect: CUVIDRECT16,
    /// Reserved, zero.
    pub reserved2: [c_uint; 11],
}

/// Post-processing parameters of `cuvidMapVideoFrame64`; 264 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CUVIDPROCPARAMS {
    /// 1 = progressive frame.
    pub progressive_frame: c_int,
    /// Output the second field.
    pub second_field: c_int,
    /// Top field first.
    pub top_field_first: c_int,
    /// Only one field present.
    pub unpaired_field: c_int,
    /// Reserved, zero.
    pub reserved_flags: c_uint,
    /// Reserved, zero.
    pub reserved_zero: c_uint,
    /// Raw-YUV extension input (unused for decode).
    pub raw_input_dptr: u64,
    /// Raw-YUV extension input pitch.
    pub raw_input_pitch: c_uint,
    /// Raw-YUV extension input format.
    pub raw_input_format: c_uint,
    /// Raw-YUV extension output.
    pub raw_output_dptr: u64,
    /// Raw-YUV extension output pitch.
    pub raw_output_pitch: c_uint,
    /// Reserved.
    pub Reserved1: c_uint,
    /// Stream on which the map's post-processing is issued.
    pub output_stream: CUstream,
    /// Reserved, zero.
    pub Reserved: [c_uint; 46],
    /// OUT: device address of the histogram when enabled.
    pub histogram_dptr: *mut u64,
    /// SDK 13.1 (reserved in 13.0): pointer to `CUVIDPROCPARAMSEXT`.
    pub pCuvidProcExt: *mut c_void,
}

/// Result of `cuvidGetDecodeStatus`; 192 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CUVIDGETDECODESTATUS {
    /// A `cuvidDecodeStatus` value.
    pub decodeStatus: cuvidDecodeStatus,
    /// Reserved.
    pub reserved: [c_uint; 31],
    /// Reserved.
    pub pReserved: [*mut c_void; 8],
}

/// Frame rate as a fraction.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CUVIDFRAMERATE {
    /// Numerator (0 = unknown).
    pub numerator: c_uint,
    /// Denominator.
    pub denominator: c_uint,
}

/// A rectangle of `int`s (CUVIDEOFORMAT.display_area).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CUVIDRECT32 {
    /// Left edge.
    pub left: c_int,
    /// Top edge.
    pub top: c_int,
    /// Right edge (exclusive).
    pub right: c_int,
    /// Bottom edge (exclusive).
    pub bottom: c_int,
}

/// Display aspect ratio.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CUVIDASPECT {
    /// Horizontal.
    pub x: c_int,
    /// Vertical.
    pub y: c_int,
}

/// Video signal description (4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CUVIDSIGNALDESC {
    /// Bitfield byte: bits 0-2 video_format, bit 3 video_full_range_flag, bits 4-7 reserved.
    pub flags: u8,
    /// H.273 colour primaries.
    pub color_primaries: u8,
    /// H.273 transfer characteristics.
    pub transfer_characteristics: u8,
    /// H.273 matrix coefficients.
    pub matrix_coefficients: u8,
}

impl CUVIDSIGNALDESC {
    /// `video_format` (0 component, 1 PAL, 2 NTSC, 3 SECAM, 4 MAC, 5 unspecified).
    pub fn video_format(&self) -> u8 {
        self.flags & 0x07
    }
    /// `video_full_range_flag`.
    pub fn video_full_range_flag(&self) -> bool {
        self.flags & 0x08 != 0
    }
}

/// Stream format handed to the sequence callback; 64 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CUVIDEOFORMAT {
    /// Codec.
    pub codec: cudaVideoCodec,
    /// Frame rate.
    pub frame_rate: CUVIDFRAMERATE,
    /// 0 interlaced, 1 progressive.
    pub progressive_sequence: u8,
    /// Luma bit depth - 8.
    pub bit_depth_luma_minus8: u8,
    /// Chroma bit depth - 8.
    pub bit_depth_chroma_minus8: u8,
    /// Lowest ulNumDecodeSurfaces that decodes correctly.
    pub min_num_decode_surfaces: u8,
    /// Coded width.
    pub coded_width: c_uint,
    /// Coded height.
    pub coded_height: c_uint,
    /// Visible rectangle.
    pub display_area: CUVIDRECT32,
    /// Chroma format.
    pub chroma_format: cudaVideoChromaFormat,
    /// Bit rate in bps (0 = unknown).
    pub bitrate: c_uint,
    /// Display aspect ratio.
    pub display_aspect_ratio: CUVIDASPECT,
    /// Video signal description.
    pub video_signal_description: CUVIDSIGNALDESC,
    /// Bytes of raw sequence header that follow when this is really a [`CUVIDEOFORMATEX`].
    pub seqhdr_data_length: c_uint,
}

/// Extended format: [`CUVIDEOFORMAT`] + raw sequence header (or the AV1 sequence maximum size); 1088 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CUVIDEOFORMATEX {
    /// The format.
    pub format: CUVIDEOFORMAT,
    /// Union of `raw_seqhdr_data[1024]` and `av1 { max_width u32, max_height u32, reserved[1016] }`.
    pub raw_seqhdr_data: [u8; 1024],
}

impl CUVIDEOFORMATEX {
    /// The union read as the AV1 sequence maximum width.
    pub fn av1_max_width(&self) -> u32 {
        u32::from_ne_bytes([
            self.raw_seqhdr_data[0],
            self.raw_seqhdr_data[1],
            self.raw_seqhdr_data[2],
            self.raw_seqhdr_data[3],
        ])
    }
    /// The union read as the AV1 sequence maximum height.
    pub fn av1_max_height(&self) -> u32 {
        u32::from_ne_bytes([
            self.raw_seqhdr_data[4],
            self.raw_seqhdr_data[5],
            self.raw_seqhdr_data[6],
            self.raw_seqhdr_data[7],
        ])
    }
}

/// Operating-point information (AV1 scalable streams); 1028 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CUVIDOPERATINGPOINTINFO {
    /// Codec.
    pub codec: cudaVideoCodec,
    /// Union: AV1 `{ operating_points_cnt u8, reserved24_bits[3], operating_points_idc u16[32] }` / reserved.
    pub codec_data: [u8; 1024],
}

/// Opaque picture parameters handed to the decode callback; 4280 bytes, align 8.
///
/// Pass the received pointer straight to `cuvidDecodePicture`; only a few fields are read through accessors.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct CUVIDPICPARAMS {
    /// The raw bytes.
    pub bytes: [u8; 4280],
}

impl CUVIDPICPARAMS {
    fn int_at(&self, off: usize) -> i32 {
        i32::from_ne_bytes([
            self.bytes[off],
            self.bytes[off + 1],
            self.bytes[off + 2],
            self.bytes[off + 3],
        ])
    }
    /// Picture width in macroblocks (offset 0).
    pub fn pic_width_in_mbs(&self) -> i32 {
        self.int_at(0)
    }
    /// Frame height in macroblocks (offset 4).
    pub fn frame_height_in_mbs(&self) -> i32 {
        self.int_at(4)
    }
    /// Surface index of this picture, later the display `picture_index` (offset 8).
    pub fn curr_pic_idx(&self) -> i32 {
        self.int_at(8)
    }
    /// 1 if this is a field picture (offset 12).
    pub fn field_pic_flag(&self) -> i32 {
        self.int_at(12)
    }
    /// 1 for the bottom field (offset 16).
    pub fn bottom_field_flag(&self) -> i32 {
        self.int_at(16)
    }
    /// 1 for the second field of a pair (offset 20).
    pub fn second_field(&self) -> i32 {
        self.int_at(20)
    }
    /// 1 if the picture is used as a reference (offset 56).
    pub fn ref_pic_flag(&self) -> i32 {
        self.int_at(56)
    }
    /// 1 if the picture is intra-coded (offset 60).
    pub fn intra_pic_flag(&self) -> i32 {
        self.int_at(60)
    }
}

/// Sequence callback: 0 = fail, 1 = keep the parser's DPB size, >1 = use that DPB size.
pub type PFNVIDSEQUENCECALLBACK =
    Option<unsafe extern "C" fn(*mut c_void, *mut CUVIDEOFORMAT) -> c_int>;
/// Decode callback (decode order): 0 = fail.
pub type PFNVIDDECODECALLBACK =
    Option<unsafe extern "C" fn(*mut c_void, *mut CUVIDPICPARAMS) -> c_int>;
/// Display callback (display order): 0 = fail. The pointer is NULL for the NOTIFY_EOS marker.
pub type PFNVIDDISPLAYCALLBACK =
    Option<unsafe extern "C" fn(*mut c_void, *mut CUVIDPARSERDISPINFO) -> c_int>;
/// Operating-point callback: <0 = fail/default.
pub type PFNVIDOPPOINTCALLBACK =
    Option<unsafe extern "C" fn(*mut c_void, *mut CUVIDOPERATINGPOINTINFO) -> c_int>;
/// SEI callback: 0 = fail.
pub type PFNVIDSEIMSGCALLBACK =
    Option<unsafe extern "C" fn(*mut c_void, *mut CUVIDSEIMESSAGEINFO) -> c_int>;

/// Parser creation parameters (`cuvidCreateVideoParser`); 136 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CUVIDPARSERPARAMS {
    /// Codec.
    pub CodecType: cudaVideoCodec,
    /// Parser DPB size (the sequence callback may change it).
    pub ulMaxNumDecodeSurfaces: c_uint,
    /// Timestamp units in Hz (0 = 10 MHz).
    pub ulClockRate: c_uint,
    /// Corruption percentage above which pictures are not decoded (100 = always decode).
    pub ulErrorThreshold: c_uint,
    /// Extra display queue depth (0 = lowest latency).
    pub ulMaxDisplayDelay: c_uint,
    /// Bitfield: bit 0 bAnnexb (AV1), bit 1 bMemoryOptimize.
    pub bitfields: c_uint,
    /// Reserved, zero.
    pub uReserved1: [c_uint; 4],
    /// First argument of every callback.
    pub pUserData: *mut c_void,
    /// Sequence callback.
    pub pfnSequenceCallback: PFNVIDSEQUENCECALLBACK,
    /// Decode callback.
    pub pfnDecodePicture: PFNVIDDECODECALLBACK,
    /// Display callback (may be NULL).
    pub pfnDisplayPicture: PFNVIDDISPLAYCALLBACK,
    /// AV1 operating-point callback (may be NULL).
    pub pfnGetOperatingPoint: PFNVIDOPPOINTCALLBACK,
    /// SEI callback (NULL = no SEI extraction).
    pub pfnGetSEIMsg: PFNVIDSEIMSGCALLBACK,
    /// Reserved, NULL.
    pub pvReserved2: [*mut c_void; 5],
    /// Optional out-of-band sequence header.
    pub pExtVideoInfo: *mut CUVIDEOFORMATEX,
}

/// One packet for `cuvidParseVideoData`; 32 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CUVIDSOURCEDATAPACKET {
    /// `CUvideopacketflags`.
    pub flags: tcu_ulong,
    /// Payload size in bytes (may be 0 with ENDOFSTREAM).
    pub payload_size: tcu_ulong,
    /// Payload.
    pub payload: *const u8,
    /// Presentation timestamp (valid with CUVID_PKT_TIMESTAMP).
    pub timestamp: CUvideotimestamp,
}

/// Display callback argument; 24 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CUVIDPARSERDISPINFO {
    /// Surface index.
    pub picture_index: c_int,
    /// 1 = progressive frame.
    pub progressive_frame: c_int,
    /// Top field first.
    pub top_field_first: c_int,
    /// Extra fields (1 = 3:2 pulldown, 2 = doubling, 4 = tripling, -1 = unpaired field).
    pub repeat_first_field: c_int,
    /// Presentation timestamp.
    pub timestamp: CUvideotimestamp,
}

/// One SEI message header; 8 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CUSEIMESSAGE {
    /// SEI payload type.
    pub sei_message_type: u8,
    /// Reserved.
    pub reserved: [u8; 3],
    /// Payload size in bytes.
    pub sei_message_size: c_uint,
}

/// SEI callback argument; 24 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CUVIDSEIMESSAGEINFO {
    /// All payloads, concatenated in message order.
    pub pSEIData: *mut c_void,
    /// Array of `sei_message_count` message headers.
    pub pSEIMessage: *mut CUSEIMESSAGE,
    /// Number of messages.
    pub sei_message_count: c_uint,
    /// CurrPicIdx of the picture the messages belong to.
    pub picIdx: c_uint,
}

/// `cuvidGetDecoderCaps`.
pub type PfnGetDecoderCaps = unsafe extern "C" fn(*mut CUVIDDECODECAPS) -> CUresult;
/// `cuvidCreateDecoder`.
pub type PfnCreateDecoder =
    unsafe extern "C" fn(*mut CUvideodecoder, *mut CUVIDDECODECREATEINFO) -> CUresult;
/// `cuvidDestroyDecoder`.
pub type PfnDestroyDecoder = unsafe extern "C" fn(CUvideodecoder) -> CUresult;
/// `cuvidDecodePicture`.
pub type PfnDecodePicture = unsafe extern "C" fn(CUvideodecoder, *mut CUVIDPICPARAMS) -> CUresult;
/// `cuvidGetDecodeStatus`.
pub type PfnGetDecodeStatus =
    unsafe extern "C" fn(CUvideodecoder, c_int, *mut CUVIDGETDECODESTATUS) -> CUresult;
/// `cuvidReconfigureDecoder`.
pub type PfnReconfigureDecoder =
    unsafe extern "C" fn(CUvideodecoder, *mut CUVIDRECONFIGUREDECODERINFO) -> CUresult;
/// `cuvidMapVideoFrame64`.
pub type PfnMapVideoFrame64 = unsafe extern "C" fn(
    CUvideodecoder,
    c_int,
    *mut u64,
    *mut c_uint,
    *mut CUVIDPROCPARAMS,
) -> CUresult;
/// `cuvidUnmapVideoFrame64`.
pub type PfnUnmapVideoFrame64 = unsafe extern "C" fn(CUvideodecoder, u64) -> CUresult;
/// `cuvidCreateVideoParser`.
pub type PfnCreateVideoParser =
    unsafe extern "C" fn(*mut CUvideoparser, *mut CUVIDPARSERPARAMS) -> CUresult;
/// `cuvidParseVideoData`.
pub type PfnParseVideoData =
    unsafe extern "C" fn(CUvideoparser, *mut CUVIDSOURCEDATAPACKET) -> CUresult;
/// `cuvidDestroyVideoParser`.
pub type PfnDestroyVideoParser = unsafe extern "C" fn(CUvideoparser) -> CUresult;

// Layout pins (x86-64 Linux, LP64). Each number comes from shared/nvdec.md section 3.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod layout {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    const _: () = assert!(size_of::<CUVIDRECT16>() == 8);

    const _: () = assert!(size_of::<CUVIDDECODECAPS>() == 88 && align_of::<CUVIDDECODECAPS>() == 4);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, eChromaFormat) == 4);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, nBitDepthMinus8) == 8);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, reserved1) == 12);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, bIsSupported) == 24);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, nNumNVDECs) == 25);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, nOutputFormatMask) == 26);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, nMaxWidth) == 28);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, nMaxHeight) == 32);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, nMaxMBCount) == 36);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, nMinWidth) == 40);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, nMinHeight) == 42);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, bIsHistogramSupported) == 44);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, nCounterBitDepth) == 45);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, nMaxHistogramBins) == 46);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, bIsDecodeStatsSupported) == 48);
    const _: () = assert!(offset_of!(CUVIDDECODECAPS, reserved3) == 52);

    const _: () = assert!(
        size_of::<CUVIDDECODECREATEINFO>() == 176 && align_of::<CUVIDDECODECREATEINFO>() == 8
    );
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, ulHeight) == 8);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, ulNumDecodeSurfaces) == 16);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, CodecType) == 24);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, ChromaFormat) == 28);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, ulCreationFlags) == 32);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, bitDepthMinus8) == 40);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, ulIntraDecodeOnly) == 48);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, ulMaxWidth) == 56);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, ulMaxHeight) == 64);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, Reserved1) == 72);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, display_area) == 80);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, OutputFormat) == 88);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, DeinterlaceMode) == 92);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, ulTargetWidth) == 96);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, ulTargetHeight) == 104);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, ulNumOutputSurfaces) == 112);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, vidLock) == 120);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, target_rect) == 128);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, enableHistogram) == 136);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, enableDecodeFeatures) == 144);
    const _: () = assert!(offset_of!(CUVIDDECODECREATEINFO, Reserved2) == 152);

    const _: () = assert!(size_of::<CUVIDRECONFIGUREDECODERINFO>() == 128);
    const _: () = assert!(align_of::<CUVIDRECONFIGUREDECODERINFO>() == 4);
    const _: () = assert!(offset_of!(CUVIDRECONFIGUREDECODERINFO, ulHeight) == 4);
    const _: () = assert!(offset_of!(CUVIDRECONFIGUREDECODERINFO, ulTargetWidth) == 8);
    const _: () = assert!(offset_of!(CUVIDRECONFIGUREDECODERINFO, ulTargetHeight) == 12);
    const _: () = assert!(offset_of!(CUVIDRECONFIGUREDECODERINFO, ulNumDecodeSurfaces) == 16);
    const _: () = assert!(offset_of!(CUVIDRECONFIGUREDECODERINFO, reserved1) == 20);
    const _: () = assert!(offset_of!(CUVIDRECONFIGUREDECODERINFO, display_area) == 68);
    const _: () = assert!(offset_of!(CUVIDRECONFIGUREDECODERINFO, target_rect) == 76);
    const _: () = assert!(offset_of!(CUVIDRECONFIGUREDECODERINFO, reserved2) == 84);

    const _: () =
        assert!(size_of::<CUVIDPROCPARAMS>() == 264 && align_of::<CUVIDPROCPARAMS>() == 8);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, second_field) == 4);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, top_field_first) == 8);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, unpaired_field) == 12);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, reserved_flags) == 16);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, reserved_zero) == 20);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, raw_input_dptr) == 24);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, raw_input_pitch) == 32);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, raw_input_format) == 36);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, raw_output_dptr) == 40);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, raw_output_pitch) == 48);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, Reserved1) == 52);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, output_stream) == 56);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, Reserved) == 64);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, histogram_dptr) == 248);
    const _: () = assert!(offset_of!(CUVIDPROCPARAMS, pCuvidProcExt) == 256);

    const _: () = assert!(size_of::<CUVIDGETDECODESTATUS>() == 192);
    const _: () = assert!(offset_of!(CUVIDGETDECODESTATUS, reserved) == 4);
    const _: () = assert!(offset_of!(CUVIDGETDECODESTATUS, pReserved) == 128);

    const _: () = assert!(size_of::<CUVIDEOFORMAT>() == 64 && align_of::<CUVIDEOFORMAT>() == 4);
    const _: () = assert!(offset_of!(CUVIDEOFORMAT, frame_rate) == 4);
    const _: () = assert!(offset_of!(CUVIDEOFORMAT, progressive_sequence) == 12);
    const _: () = assert!(offset_of!(CUVIDEOFORMAT, bit_depth_luma_minus8) == 13);
    const _: () = assert!(offset_of!(CUVIDEOFORMAT, bit_depth_chroma_minus8) == 14);
    const _: () = assert!(offset_of!(CUVIDEOFORMAT, min_num_decode_surfaces) == 15);
    const _: () = assert!(offset_of!(CUVIDEOFORMAT, coded_width) == 16);
    const _: () = assert!(offset_of!(CUVIDEOFORMAT, coded_height) == 20);
    const _: () = assert!(offset_of!(CUVIDEOFORMAT, display_area) == 24);
    const _: () = assert!(offset_of!(CUVIDEOFORMAT, chroma_format) == 40);
    const _: () = assert!(offset_of!(CUVIDEOFORMAT, bitrate) == 44);
    const _: () = assert!(offset_of!(CUVIDEOFORMAT, display_aspect_ratio) == 48);
    const _: () = assert!(offset_of!(CUVIDEOFORMAT, video_signal_description) == 56);
    const _: () = assert!(offset_of!(CUVIDEOFORMAT, seqhdr_data_length) == 60);

    const _: () = assert!(size_of::<CUVIDEOFORMATEX>() == 1088);
    const _: () = assert!(offset_of!(CUVIDEOFORMATEX, raw_seqhdr_data) == 64);

    const _: () = assert!(size_of::<CUVIDOPERATINGPOINTINFO>() == 1028);
    const _: () = assert!(offset_of!(CUVIDOPERATINGPOINTINFO, codec_data) == 4);

    const _: () = assert!(size_of::<CUVIDPICPARAMS>() == 4280 && align_of::<CUVIDPICPARAMS>() == 8);

    const _: () =
        assert!(size_of::<CUVIDPARSERPARAMS>() == 136 && align_of::<CUVIDPARSERPARAMS>() == 8);
    const _: () = assert!(offset_of!(CUVIDPARSERPARAMS, ulMaxNumDecodeSurfaces) == 4);
    const _: () = assert!(offset_of!(CUVIDPARSERPARAMS, ulClockRate) == 8);
    const _: () = assert!(offset_of!(CUVIDPARSERPARAMS, ulErrorThreshold) == 12);
    const _: () = assert!(offset_of!(CUVIDPARSERPARAMS, ulMaxDisplayDelay) == 16);
    const _: () = assert!(offset_of!(CUVIDPARSERPARAMS, bitfields) == 20);
    const _: () = assert!(offset_of!(CUVIDPARSERPARAMS, uReserved1) == 24);
    const _: () = assert!(offset_of!(CUVIDPARSERPARAMS, pUserData) == 40);
    const _: () = assert!(offset_of!(CUVIDPARSERPARAMS, pfnSequenceCallback) == 48);
    const _: () = assert!(offset_of!(CUVIDPARSERPARAMS, pfnDecodePicture) == 56);
    const _: () = assert!(offset_of!(CUVIDPARSERPARAMS, pfnDisplayPicture) == 64);
    const _: () = assert!(offset_of!(CUVIDPARSERPARAMS, pfnGetOperatingPoint) == 72);
    const _: () = assert!(offset_of!(CUVIDPARSERPARAMS, pfnGetSEIMsg) == 80);
    const _: () = assert!(offset_of!(CUVIDPARSERPARAMS, pvReserved2) == 88);
    const _: () = assert!(offset_of!(CUVIDPARSERPARAMS, pExtVideoInfo) == 128);

    const _: () = assert!(size_of::<CUVIDSOURCEDATAPACKET>() == 32);
    const _: () = assert!(offset_of!(CUVIDSOURCEDATAPACKET, payload_size) == 8);
    const _: () = assert!(offset_of!(CUVIDSOURCEDATAPACKET, payload) == 16);
    const _: () = assert!(offset_of!(CUVIDSOURCEDATAPACKET, timestamp) == 24);

    const _: () = assert!(size_of::<CUVIDPARSERDISPINFO>() == 24);
    const _: () = assert!(offset_of!(CUVIDPARSERDISPINFO, progressive_frame) == 4);
    const _: () = assert!(offset_of!(CUVIDPARSERDISPINFO, top_field_first) == 8);
    const _: () = assert!(offset_of!(CUVIDPARSERDISPINFO, repeat_first_field) == 12);
    const _: () = assert!(offset_of!(CUVIDPARSERDISPINFO, timestamp) == 16);

    const _: () = assert!(size_of::<CUSEIMESSAGE>() == 8);
    const _: () = assert!(offset_of!(CUSEIMESSAGE, sei_message_size) == 4);

    const _: () = assert!(size_of::<CUVIDSEIMESSAGEINFO>() == 24);
    const _: () = assert!(offset_of!(CUVIDSEIMESSAGEINFO, pSEIMessage) == 8);
    const _: () = assert!(offset_of!(CUVIDSEIMESSAGEINFO, sei_message_count) == 16);
    const _: () = assert!(offset_of!(CUVIDSEIMESSAGEINFO, picIdx) == 20);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_match_the_sdk() {
        // Duplicates the compile-time pins so a failing layout shows up as a named test too.
        assert_eq!(std::mem::size_of::<CUVIDDECODECAPS>(), 88);
        assert_eq!(std::mem::size_of::<CUVIDDECODECREATEINFO>(), 176);
        assert_eq!(std::mem::size_of::<CUVIDRECONFIGUREDECODERINFO>(), 128);
        assert_eq!(std::mem::size_of::<CUVIDPROCPARAMS>(), 264);
        assert_eq!(std::mem::size_of::<CUVIDGETDECODESTATUS>(), 192);
        assert_eq!(std::mem::size_of::<CUVIDEOFORMAT>(), 64);
        assert_eq!(std::mem::size_of::<CUVIDEOFORMATEX>(), 1088);
        assert_eq!(std::mem::size_of::<CUVIDPARSERPARAMS>(), 136);
        assert_eq!(std::mem::size_of::<CUVIDSOURCEDATAPACKET>(), 32);
        assert_eq!(std::mem::size_of::<CUVIDPARSERDISPINFO>(), 24);
        assert_eq!(std::mem::size_of::<CUSEIMESSAGE>(), 8);
        assert_eq!(std::mem::size_of::<CUVIDSEIMESSAGEINFO>(), 24);
        assert_eq!(std::mem::size_of::<CUVIDPICPARAMS>(), 4280);
        assert_eq!(
            std::mem::offset_of!(CUVIDDECODECAPS, bIsDecodeStatsSupported),
            48
        );
    }

    #[test]
    fn signal_description_bitfield() {
        // Verified on the H100: video_format 5, full range 1 -> 0x0D.
        let d = CUVIDSIGNALDESC {
            flags: 0x0D,
            ..Default::default()
        };
        assert_eq!(d.video_format(), 5);
        assert!(d.video_full_range_flag());
        let d = CUVIDSIGNALDESC {
            flags: 0x05,
            ..Default::default()
        };
        assert!(!d.video_full_range_flag());
    }

    #[test]
    fn picparams_accessors_read_the_documented_offsets() {
        let mut p = CUVIDPICPARAMS { bytes: [0; 4280] };
        p.bytes[8..12].copy_from_slice(&7i32.to_ne_bytes());
        p.bytes[56..60].copy_from_slice(&1i32.to_ne_bytes());
        p.bytes[60..64].copy_from_slice(&1i32.to_ne_bytes());
        p.bytes[12..16].copy_from_slice(&1i32.to_ne_bytes());
        assert_eq!(p.curr_pic_idx(), 7);
        assert_eq!(p.ref_pic_flag(), 1);
        assert_eq!(p.intra_pic_flag(), 1);
        assert_eq!(p.field_pic_flag(), 1);
        assert_eq!(p.second_field(), 0);
    }
}
