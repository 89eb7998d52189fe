//! NVDEC (nvcuvid) bindings and decode sessions. Owned by the NVDEC work; see ARCHITECTURE.md.
