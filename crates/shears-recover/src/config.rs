//! What recovery does: the methods, in order, and the ridge factor.

use crate::error::{RecoverError, Result};

/// One recovery method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Re-estimate BatchNormalization running statistics whose input changed; for layers with
    /// a bias and no BatchNormalization after them (folded), shift the bias so the output mean
    /// per channel matches the original's.
    Bn,
    /// Refit the kept weights (and bias) of every Conv, Gemm and MatMul-with-a-constant-weight
    /// whose input changed, by ridge regression onto the original layer's output.
    Reconstruct,
}

impl Method {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Method::Bn => "bn",
            Method::Reconstruct => "reconstruct",
        }
    }
}

/// Recovery settings.
///
/// Invariants (checked by [`RecoverConfig::validate`]): `ridge` is finite and positive; each
/// method appears at most once; methods run in the order given, each as one lockstep pass.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RecoverConfig {
    pub methods: Vec<Method>,
    /// λ = ridge · trace(XᵀX) / d, added to the diagonal of XᵀX.
    pub ridge: f64,
}

impl Default for RecoverConfig {
    fn default() -> Self {
        RecoverConfig {
            methods: vec![Method::Reconstruct],
            ridge: 0.01,
        }
    }
}

impl RecoverConfig {
    /// Parses `none`, or a comma-separated list of `bn` and `reconstruct` (order kept).
    pub fn parse_methods(text: &str) -> Result<Vec<Method>> {
        let text = text.trim();
        if text == "none" {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for part in text.split(',') {
            let m = match part.trim() {
                "bn" => Method::Bn,
                "reconstruct" => Method::Reconstruct,
                other => {
                    return Err(RecoverError::Config {
                        option: "recover".into(),
                        reason: format!(
                            "'{other}' is not a method (none, bn, reconstruct, or a list like bn,reconstruct)"
                        ),
                    })
                }
            };
            if out.contains(&m) {
                return Err(RecoverError::Config {
                    option: "recover".into(),
                    reason: format!("'{}' is given twice", m.name()),
                });
            }
            out.push(m);
        }
        Ok(out)
    }

    /// Checks every setting; errors name the option.
    pub fn validate(&self) -> Result<()> {
        if !(self.ridge.is_finite() && self.ridge > 0.0) {
            return Err(RecoverError::Config {
                option: "ridge".into(),
                reason: format!("{} is not a positive number", self.ridge),
            });
        }
        for (i, m) in self.methods.iter().enumerate() {
            if self.methods[..i].contains(m) {
                return Err(RecoverError::Config {
                    option: "recover".into(),
                    reason: format!("'{}' is given twice", m.name()),
                });
            }
        }
        Ok(())
    }
}
