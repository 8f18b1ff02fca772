//! The public operations, dispatched to the device: one host-side launch computation per kernel.

pub mod act_stats;
pub mod attention;
mod choose;
pub mod decode;
mod error_record;
mod error_target;

pub use act_stats::activation_stats;
pub use attention::{AttentionOutput, attention};
pub use error_record::ErrorRecord;
pub use error_target::ErrorTarget;
