//! One module per subcommand.
pub mod common;
pub mod diff;
pub mod groups;
pub mod inspect;
pub mod plan;
pub mod prune;
pub mod verify;
