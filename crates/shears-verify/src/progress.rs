//! Progress reporting hooks: the library says what it is doing, a front end draws it.

/// Receives progress of long tasks. Calls nest no deeper than one task at a time: `begin`, any
/// number of `advance`, `end`.
pub trait Progress {
    /// A task of `total` steps starts.
    fn begin(&self, _task: &str, _total: u64) {}
    /// `n` more steps are done.
    fn advance(&self, _n: u64) {}
    /// The task is over.
    fn end(&self) {}
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
