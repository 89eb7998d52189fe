//! Plain value types every layer shares: colour types and conversion coefficients (`color.rs`), what happens to a
//! frame on its way into a slot (`transform.rs`: crop, resize target, normalisation, element type) and the batch of
//! frames a decoder returns (`batch.rs`).

pub(crate) mod batch;
pub(crate) mod color;
pub(crate) mod transform;
