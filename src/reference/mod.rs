//! The literal f64 CPU reference of SPEC §1–5.

pub mod activation;
pub use activation::activation_stats;
