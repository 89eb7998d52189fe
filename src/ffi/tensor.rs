//! Writing decoded frames straight into memory that torch allocated.

use crate::error::{Error, Result};

/// The bytes of a contiguous CPU tensor, borrowed mutably for as long as the tensor is.
pub(crate) fn host_bytes_mut(tensor: &mut tch::Tensor) -> Result<&mut [u8]> {
    if tensor.device() != tch::Device::Cpu {
        return Err(Error::InvalidArgument("expected a CPU tensor".into()));
    }
    if !tensor.is_contiguous() {
        return Err(Error::InvalidArgument(
            "expected a contiguous tensor".into(),
        ));
    }
    let len = tensor.numel() * tensor.kind().elt_size_in_bytes();
    if len == 0 {
        return Ok(&mut []);
    }
    let ptr = tensor.data_ptr() as *mut u8;
    if ptr.is_null() {
        return Err(Error::InvalidArgument("tensor has no storage".into()));
    }
    // SAFETY: the tensor is a contiguous CPU tensor of `len` bytes starting at `ptr`; the returned slice borrows
    // the tensor mutably, so no other Rust access (and no drop) can happen while it lives. The storage is not
    // shared with another tensor because every caller passes a tensor it has just allocated with Tensor::empty.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// The values of a contiguous CPU `f32` tensor, borrowed mutably for as long as the tensor is.
pub(crate) fn host_f32_mut(tensor: &mut tch::Tensor) -> Result<&mut [f32]> {
    if tensor.kind() != tch::Kind::Float {
        return Err(Error::InvalidArgument(format!(
            "expected an f32 tensor, not {:?}",
            tensor.kind()
        )));
    }
    let n = tensor.numel();
    let bytes = host_bytes_mut(tensor)?;
    if n == 0 {
        return Ok(&mut []);
    }
    let ptr = bytes.as_mut_ptr();
    if ptr.align_offset(std::mem::align_of::<f32>()) != 0 {
        return Err(Error::InvalidArgument(
            "f32 tensor storage is not 4-byte aligned".into(),
        ));
    }
    // SAFETY: `bytes` is the tensor's whole storage view, `4 * n` bytes, aligned for f32 (checked), and every bit
    // pattern is a valid f32; the new slice takes over `bytes`'s mutable borrow of the tensor.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<f32>(), n) })
}

/// The bytes of a contiguous CPU tensor, borrowed for as long as the tensor is.
pub(crate) fn host_bytes(tensor: &tch::Tensor) -> Result<&[u8]> {
    if tensor.device() != tch::Device::Cpu || !tensor.is_contiguous() {
        return Err(Error::InvalidArgument(
            "expected a contiguous CPU tensor".into(),
        ));
    }
    let len = tensor.numel() * tensor.kind().elt_size_in_bytes();
    let ptr = tensor.data_ptr() as *const u8;
    if len == 0 || ptr.is_null() {
        return Ok(&[]);
    }
    // SAFETY: the tensor is a contiguous CPU tensor of `len` bytes starting at `ptr`; the slice borrows the tensor,
    // so it cannot be dropped or resized through Rust while the slice lives.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// CPU tensors at least this big are allocated on transparent huge pages where the kernel offers them.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// The size of a transparent huge page on x86-64 and aarch64 Linux (4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// A new, uninitialised tensor. A big CPU tensor (batches of frames: tens of megabytes that libtorch gets fresh
/// from `mmap` each time) is first advised onto transparent huge pages, before anything touches it: the first
/// write then takes one page fault per 2 MiB instead of one per 4 KiB (on the 2-core build machine a fresh
/// 100 MB buffer cost 310-345 ms of faults with 4 KiB pages and 115-177 ms with the advice: as much as decoding
/// its frames). Without huge pages (another OS, THP set to `never`) the advice does nothing.
pub(crate) fn empty(dims: &[i64], kind: tch::Kind, device: tch::Device) -> Result<tch::Tensor> {
    let t = tch::Tensor::f_empty(dims, (kind, device))?;
    if device == tch::Device::Cpu {
        advise_huge_pages(&t);
    }
    Ok(t)
}

/// `madvise(MADV_HUGEPAGE)` on the whole 2 MiB pages inside a CPU tensor's storage (Linux only).
fn advise_huge_pages(t: &tch::Tensor) {
    let len = t.numel() * t.kind().elt_size_in_bytes();
    let ptr = t.data_ptr() as usize;
    if len < HUGE_PAGE_MIN_BYTES || ptr == 0 {
        return;
    }
    let start = ptr.next_multiple_of(HUGE_PAGE);
    let end = (ptr + len) / HUGE_PAGE * HUGE_PAGE;
    if end <= start {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: [start, end) lies inside the tensor's storage, which this tensor owns and keeps alive for the
        // call; MADV_HUGEPAGE changes only how the kernel backs pages not yet touched, never their contents, and
        // its failure (THP disabled) is harmless, so the result is ignored.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

/// Whether [`store_f32`] writes tensors of `kind`.
pub(crate) fn stores_f32(kind: tch::Kind) -> bool {
    matches!(
        kind,
        tch::Kind::Half | tch::Kind::BFloat16 | tch::Kind::Uint8
    )
}

/// Writes `values` into a contiguous CPU tensor of as many elements: f16 and bf16 rounded to nearest even (as
/// torch's own conversion rounds; F16C where the CPU has it), u8 rounded half up and clamped to 0..=255 (as the
/// GPU kernel rounds).
pub(crate) fn store_f32(tensor: &mut tch::Tensor, values: &[f32]) -> Result<()> {
    use half::slice::HalfFloatSliceExt;
    let kind = tensor.kind();
    if tensor.numel() != values.len() {
        return Err(Error::InvalidArgument(format!(
            "{} values for a tensor of {}",
            values.len(),
            tensor.numel()
        )));
    }
    let bytes = host_bytes_mut(tensor)?;
    match kind {
        tch::Kind::Uint8 => {
            for (b, &v) in bytes.iter_mut().zip(values) {
                *b = (v + 0.5).floor().clamp(0.0, 255.0) as u8;
            }
            Ok(())
        }
        tch::Kind::Half | tch::Kind::BFloat16 => {
            if values.is_empty() {
                return Ok(());
            }
            let ptr = bytes.as_mut_ptr();
            if ptr.align_offset(2) != 0 {
                return Err(Error::InvalidArgument(
                    "16-bit tensor storage is not 2-byte aligned".into(),
                ));
            }
            if kind == tch::Kind::Half {
                // SAFETY: `bytes` is the tensor's whole storage, 2 * len bytes (numel checked above), aligned for
                // the 2-byte `f16` (checked), and every bit pattern is a valid `f16`; the new slice takes over
                // `bytes`'s mutable borrow of the tensor.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(ptr.cast::<half::f16>(), values.len())
                };
                dst.convert_from_f32_slice(values);
            } else {
                // SAFETY: as above, for the 2-byte `bf16`.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(ptr.cast::<half::bf16>(), values.len())
                };
                dst.convert_from_f32_slice(values);
            }
            Ok(())
        }
        other => Err(Error::InvalidArgument(format!(
            "cannot store f32 values into a {other:?} tensor"
        ))),
    }
}
