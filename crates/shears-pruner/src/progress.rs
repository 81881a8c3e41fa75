//! Progress reporting hooks, shared with the evaluator's dataset runs (defined in
//! `shears-verify` so that one front end implements one trait).

pub use shears_verify::progress::{NoProgress, Progress};
