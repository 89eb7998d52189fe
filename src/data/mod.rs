//! Training data: the data set of videos (`dataset.rs`), WebDataset tar shards (`shards.rs`) and the metadata cache (`cache.rs`), the samplers that pick frames from a video (`sampler.rs`),
//! the `DataLoader` that decodes samples into batches (`loader/`), and synthetic labelled videos (`synth.rs`).

pub(crate) mod cache;
pub(crate) mod dataset;
pub(crate) mod loader;
pub(crate) mod sampler;
pub(crate) mod shards;
pub mod synth;
