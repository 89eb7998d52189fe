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
