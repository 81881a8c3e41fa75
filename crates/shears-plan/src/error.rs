/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no node or parameter named '{name}'{hint}")]
    UnknownLayer { name: String, hint: String },
    #[error("'{name}' has no output channels to prune ({reason})")]
    NotALayer { name: String, reason: String },
    #[error("index {index} is out of range: '{layer}' has {size} channels")]
    OutOfRange {
        layer: String,
        index: usize,
        size: usize,
    },
    #[error("index {index} is repeated")]
    Repeated { index: usize },
    #[error("no indices given")]
    Empty,
    #[error("the channels of '{layer}' are not prunable: {reasons}")]
    Blocked { layer: String, reasons: String },
    #[error("removing these indices would remove all {size} channels of the group of '{layer}'")]
    WholeGroup { layer: String, size: usize },
    #[error("'{layer}' has no attention heads to prune: {reason}")]
    NoHeads { layer: String, reason: String },
    #[error("head {index} is out of range: '{layer}' has {heads} heads")]
    HeadOutOfRange {
        layer: String,
        index: usize,
        heads: usize,
    },
    #[error("removing these heads would remove all {heads} heads of '{layer}'")]
    AllHeads { layer: String, heads: usize },
    #[error("node '{node}' cannot be rewritten: {reason}")]
    Rewrite { node: String, reason: String },
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("plan for {plan} does not match this model: {detail}")]
    Differs { plan: String, detail: String },
}
