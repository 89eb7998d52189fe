//! DLPack export of tch tensors (through dlpark): the tensor itself is the owner that the DLPack deleter drops.

use dlpark::ffi::{DLDataType, DLDevice};
use dlpark::metadata::Dynamic;

use crate::error::{Error, Result};

/// Exports `tensor` (uint8, any device) as a versioned DLPack managed tensor without copying. The export keeps the
/// tensor (and so its storage) alive until the consumer calls the deleter.
pub(crate) fn tensor_to_dlpack(tensor: tch::Tensor) -> Result<dlpark::versioned::Dlpack> {
    if tensor.kind() != tch::Kind::Uint8 {
        return Err(Error::Unsupported(format!(
            "DLPack export of {:?} tensors",
            tensor.kind()
        )));
    }
    let device = match tensor.device() {
        tch::Device::Cpu => DLDevice::CPU,
        tch::Device::Cuda(i) => DLDevice::cuda(i as i32),
        other => return Err(Error::Unsupported(format!("DLPack export from {other:?}"))),
    };
    let shape = tensor.size();
    let strides = tensor.stride();
    let data = tensor.data_ptr();
    let mut init = Dynamic::new(shape, strides)
        .initialize(Box::new(tensor))
        .map_err(|e| Error::InvalidArgument(format!("DLPack metadata: {e}")))?;
    init.set_data(data)
        .set_dtype(DLDataType::U8)
        .set_device(device);
    // SAFETY: `data` is the tensor's storage address, valid for the shape and strides copied above, and the boxed
    // tensor installed as the owner context keeps that storage alive until the DLPack deleter runs.
    Ok(unsafe { init.finish() })
}
