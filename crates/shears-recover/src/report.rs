//! What recovery did, per layer.

use crate::config::Method;

/// One recovered layer.
///
/// Invariant: errors are relative (‖pruned − original‖ / ‖original‖ over the calibration set,
/// the original restricted to the kept output channels), measured on the layer's output with
/// the already-recovered layers upstream; `error_after <= error_before` for `reconstruct`
/// (the safeguard keeps the old weights otherwise, with `kept_old` set).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerRecovery {
    pub node: String,
    pub op_type: String,
    pub method: Method,
    /// What was changed: `weights`, `weights+bias`, `statistics`, `bias`.
    pub changed: String,
    pub error_before: f64,
    pub error_after: f64,
    /// The system was not positive definite with the configured ridge; a stronger one was used.
    pub stronger_ridge: bool,
    /// The refit did not lower the error, so the old weights were kept.
    pub kept_old: bool,
    pub seconds: f64,
}

/// A layer that qualified but was not recovered, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NotRecovered {
    pub node: String,
    pub method: Method,
    pub reason: String,
}

/// The outcome of [`crate::recover`].
///
/// Invariants: `layers` and `not_recovered` are in pass order (methods in the configured
/// order, nodes in topological order); `output_error` is the relative error of the graph
/// outputs against the original's on the calibration set, without and with recovery; when
/// recovery made it larger, `reverted` is set and the pruned model is returned unchanged.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RecoveryReport {
    pub samples: usize,
    pub methods: Vec<Method>,
    pub ridge: f64,
    pub layers: Vec<LayerRecovery>,
    pub not_recovered: Vec<NotRecovered>,
    pub output_error: (f64, f64),
    pub reverted: bool,
    pub seconds: f64,
}
