//! CUDA context, streams and NVRTC colour-conversion kernels. Owned by the NVDEC work; see ARCHITECTURE.md.
