//! One module per subcommand.
pub mod common;
pub mod compact;
pub mod diff;
pub mod eval;
pub mod groups;
pub mod inspect;
pub mod plan;
pub mod progress;
pub mod prune;
pub mod recovery;
pub mod sparsify;
pub mod verify;
