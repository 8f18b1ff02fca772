//! Closed-form identities and hand-computed cases for the f64 reference (docs/contract.md §1–5).
//!
//! The oracles here never call the code under test: each case rewrites the formula in an
//! independent form (augmented inputs, two-key closed forms, one-hot values that expose the
//! weights, direct sums over the input tensors).

mod reference_parts;
