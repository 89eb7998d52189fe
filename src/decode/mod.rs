//! The frame-exact decoders: options (`options.rs`), counters (`stats.rs`), the GOP engine that decodes keyframe
//! groups on lanes (`lanes.rs`) and the writer thread that fills a lane's host slots (`host_writer.rs`),
//! `SimpleDecoder` (`simple.rs`: random access, planned by GOP), `ThreadedDecoder` (`threaded.rs`: a prefetch
//! thread over a `SimpleDecoder`) and the pool of idle decoders they share (`pool.rs`). Backends come from
//! `backend::open`; nothing here names a backend's decoder type.

pub(crate) mod host_writer;
pub(crate) mod lanes;
pub(crate) mod options;
pub(crate) mod picture_plan;
pub(crate) mod pool;
pub(crate) mod simple;
pub(crate) mod stats;
pub(crate) mod threaded;
