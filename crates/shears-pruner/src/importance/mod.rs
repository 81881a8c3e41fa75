//! Channel importance per group, measured over every coupled tensor slice of each unit.
//!
//! A *unit* of a group (one channel, with everything coupled to it) owns a slice of every member
//! tensor of the group: the conv filter it produces, the input slices of every consumer, the
//! norm scales and shifts. A criterion scores each member tensor's slices, then the scores are
//! **reduced across tensors** ([`Reduction`]) and **normalized** within the group
//! ([`Normalizer`]). Higher means more important; pruners remove the lowest.
//!
//! | criterion | per member tensor | members measured |
//! |---|---|---|
//! | `l1` | `Σ|w|` of the unit's slice | weights and norm scales (plus vectors with `include_vectors`) |
//! | `l2` | `Σw²` of the unit's slice (squared L2 norm, as Torch-Pruning) | same |
//! | `lamp` | `l2`, then within the group `s_i / Σ_{s_j ≥ s_i} s_j` (no further normalization) | same |
//! | `bn-scale` | `Σ|γ|` of the unit's norm scales (network slimming) | norm scales only |
//! | `fpgm` | `Σ_j ‖f_i − f_j‖₂` over the group's filters (distance to the others: the geometric median has the smallest) | the root filter tensor only |
//! | `random` | uniform in `[0, 1)`, seeded per group | none |
//! | `apoz` | `1 − (share of zeros)` of the unit's activations after the activation function | observed activations |
//! | `mean-act` | mean of the unit's activations after the activation function | observed activations |
//!
//! Running statistics are never measured. A group with nothing to measure (no norm scale for
//! `bn-scale`, no observed activation) gets no scores and is skipped with the reason.

mod activation;
mod fpgm;
mod magnitude;

use std::collections::{BTreeSet, HashMap};

use shears_graph::{DependencyGraph, GroupId};
use shears_onnx::{Model, ValueId};

pub use activation::{observed_values, ActivationStats, ChannelStats};

use crate::error::Result;
use crate::members::{member_axes_with, members_with, Member};
use crate::roles::{param_role, ParamRole};
use crate::tensors::{all_axis_sums, AxisSums};

/// An importance criterion (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Criterion {
    L1,
    L2,
    BnScale,
    Fpgm,
    Lamp,
    Random,
    Apoz,
    MeanAct,
}

impl Criterion {
    /// Whether the criterion needs calibration inputs run through the evaluator.
    pub fn needs_activations(self) -> bool {
        matches!(self, Criterion::Apoz | Criterion::MeanAct)
    }
}

/// How per-tensor scores of one unit combine into the unit's score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reduction {
    /// The average over the group's measured tensors (Torch-Pruning's default).
    Mean,
    Sum,
    Max,
}

/// How a group's unit scores are rescaled, so scores of different groups compare in a global
/// ranking. None of them changes the order within a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Normalizer {
    None,
    /// Divided by the group's mean (Torch-Pruning's default).
    Mean,
    /// Divided by the group's maximum.
    Max,
    /// Divided by the group's sum.
    Sum,
    /// `(s - min) / (max - min)`.
    MinMax,
}

/// What to measure and how to combine it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImportanceConfig {
    pub criterion: Criterion,
    pub reduction: Reduction,
    pub normalizer: Normalizer,
    /// Also measure per-channel vectors (biases, norm shifts, PReLU slopes) with `l1`, `l2`,
    /// `lamp`. Off by default, as in Torch-Pruning and NNI.
    pub include_vectors: bool,
    /// Seed of `random`.
    pub seed: u64,
}

impl Default for ImportanceConfig {
    fn default() -> Self {
        ImportanceConfig {
            criterion: Criterion::L2,
            reduction: Reduction::Mean,
            normalizer: Normalizer::None,
            include_vectors: false,
            seed: 0,
        }
    }
}

/// A group's importance: one score per unit (in the group's unit order), or why it has none.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupImportance {
    Scores(Vec<f64>),
    Missing(String),
}

/// The signature of a user-defined criterion: the scores of group `gid` of `graph` (built from
/// `model`), one per unit in `graph.group(gid).units` order, higher meaning more important; or
/// [`GroupImportance::Missing`] with the reason the group cannot be scored (it is then left
/// whole and reported). [`crate::members::members`] lists the tensor slices each unit owns and
/// [`crate::tensors::dense`] decodes a tensor.
pub type ScoreFn =
    dyn Fn(&Model, &DependencyGraph, GroupId) -> Result<GroupImportance> + Send + Sync;

/// A user-defined importance criterion, set in [`crate::PruneConfig::custom_importance`]: it
/// replaces `ImportanceConfig::criterion` (and its reduction), while the configured
/// [`Normalizer`] still rescales each group's scores so a global ranking stays meaningful.
///
/// Invariant: the pruner refuses a score vector whose length is not the group's unit count, or
/// that holds a NaN, with an error naming the criterion and the group. The closure is not
/// serialized; reports carry the built-in settings only, so their format is unchanged.
#[derive(Clone)]
pub struct CustomImportance {
    name: String,
    score: std::sync::Arc<ScoreFn>,
}

impl CustomImportance {
    /// A criterion called `name` (used in error messages) scoring groups with `score`.
    pub fn new(
        name: impl Into<String>,
        score: impl Fn(&Model, &DependencyGraph, GroupId) -> Result<GroupImportance>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        CustomImportance {
            name: name.into(),
            score: std::sync::Arc::new(score),
        }
    }

    /// The name given to [`CustomImportance::new`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group's checked and normalized scores (see the type's invariant); `key` names the
    /// group in errors.
    pub fn score(
        &self,
        model: &Model,
        graph: &DependencyGraph,
        gid: GroupId,
        key: &str,
        normalizer: Normalizer,
    ) -> Result<GroupImportance> {
        Ok(match (self.score)(model, graph, gid)? {
            GroupImportance::Scores(mut s) => {
                let units = graph.group(gid).units.len();
                if s.len() != units || s.iter().any(|x| x.is_nan()) {
                    return Err(crate::PrunerError::config(
                        "importance",
                        format!(
                            "custom criterion '{}' gave {} scores (NaN or not {units}) for the group of {key}",
                            self.name,
                            s.len()
                        ),
                    ));
                }
                normalize(&mut s, normalizer);
                GroupImportance::Scores(s)
            }
            missing => missing,
        })
    }
}

impl std::fmt::Debug for CustomImportance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomImportance")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Scores groups of one model; decodes each needed tensor once, up front.
///
/// Invariant: `sums` holds the axis sums of every parameter member the criterion measures in
/// the groups given to [`Scorer::new`].
pub struct Scorer<'a> {
    model: &'a Model,
    graph: &'a DependencyGraph,
    cfg: &'a ImportanceConfig,
    sums: HashMap<(ValueId, usize), AxisSums>,
    activations: Option<&'a ActivationStats>,
    /// The role of every parameter of the groups given to [`Scorer::new`], found once.
    /// Indexed by value.
    roles: Vec<Option<ParamRole>>,
}

impl<'a> Scorer<'a> {
    /// Prepares scoring of `groups`; `activations` is required by activation criteria.
    pub fn new(
        model: &'a Model,
        graph: &'a DependencyGraph,
        cfg: &'a ImportanceConfig,
        groups: &[GroupId],
        activations: Option<&'a ActivationStats>,
    ) -> Result<Scorer<'a>> {
        let mut wanted = BTreeSet::new();
        let magnitude = matches!(
            cfg.criterion,
            Criterion::L1 | Criterion::L2 | Criterion::Lamp | Criterion::BnScale
        );
        // Only which tensors are measured is needed here: unit indices are found per group
        // when it is scored and dropped after, never held for every group at once.
        let mut roles: Vec<Option<ParamRole>> = vec![None; model.graph.values.len()];
        let mut role =
            |v: ValueId| *roles[v.index()].get_or_insert_with(|| param_role(model, graph, v));
        if magnitude {
            for &gid in groups {
                for (_, value, axis, role) in member_axes_with(graph, graph.group(gid), &mut role) {
                    if role.is_some_and(|r| measured(cfg, r)) {
                        wanted.insert((value, axis));
                    }
                }
            }
        }
        if cfg.criterion.needs_activations() && activations.is_none() {
            return Err(crate::PrunerError::config(
                "importance",
                format!(
                    "{:?} needs calibration inputs (random samples or a folder of .npy)",
                    cfg.criterion
                ),
            ));
        }
        Ok(Scorer {
            model,
            graph,
            cfg,
            sums: all_axis_sums(model, &wanted)?,
            activations,
            roles,
        })
    }

    /// The importance of group `gid`; `key` names the group stably (it seeds `random`).
    pub fn score(&self, gid: GroupId, key: &str) -> Result<GroupImportance> {
        let group = self.graph.group(gid);
        let ms = &members_with(self.graph, group, |v| {
            self.roles[v.index()].unwrap_or_else(|| param_role(self.model, self.graph, v))
        });
        let raw = match self.cfg.criterion {
            Criterion::L1 | Criterion::L2 | Criterion::Lamp | Criterion::BnScale => {
                magnitude::scores(self, ms)
            }
            Criterion::Fpgm => fpgm::scores(self.model, group, ms)?,
            Criterion::Random => {
                let mut rng = shears_verify::Rng::new(self.cfg.seed ^ fnv1a(key));
                GroupImportance::Scores(
                    (0..group.units.len())
                        .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
                        .collect(),
                )
            }
            Criterion::Apoz | Criterion::MeanAct => {
                let stats = self.activations.expect("checked in new");
                activation::scores(self.model, self.graph, group, ms, stats, self.cfg)
            }
        };
        Ok(match raw {
            GroupImportance::Scores(mut s) => {
                if self.cfg.criterion == Criterion::Lamp {
                    lamp(&mut s);
                } else {
                    normalize(&mut s, self.cfg.normalizer);
                }
                GroupImportance::Scores(s)
            }
            missing => missing,
        })
    }
}

/// Whether a parameter of this role is measured by magnitude criteria.
fn measured(cfg: &ImportanceConfig, role: ParamRole) -> bool {
    match cfg.criterion {
        Criterion::BnScale => role == ParamRole::NormScale,
        _ => match role {
            ParamRole::Weight | ParamRole::NormScale => true,
            ParamRole::Vector => cfg.include_vectors,
            ParamRole::Statistic => false,
        },
    }
}

/// Combines per-member score vectors (all of the same length) unit by unit.
pub fn reduce(per_member: &[Vec<f64>], how: Reduction) -> Vec<f64> {
    let Some(first) = per_member.first() else {
        return Vec::new();
    };
    let mut out = vec![0.0; first.len()];
    for (u, o) in out.iter_mut().enumerate() {
        let vals = per_member.iter().map(|m| m[u]);
        *o = match how {
            Reduction::Sum => vals.sum(),
            Reduction::Mean => vals.sum::<f64>() / per_member.len() as f64,
            Reduction::Max => vals.fold(f64::NEG_INFINITY, f64::max),
        };
    }
    out
}

/// Rescales `s` in place; a degenerate group (zero mean, max or sum, or all equal for min-max)
/// is left as it is rather than divided by zero.
pub fn normalize(s: &mut [f64], how: Normalizer) {
    if s.is_empty() {
        return;
    }
    let n = s.len() as f64;
    let (min, max) = s
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let sum: f64 = s.iter().sum();
    let (shift, scale) = match how {
        Normalizer::None => return,
        Normalizer::Mean => (0.0, sum / n),
        Normalizer::Max => (0.0, max),
        Normalizer::Sum => (0.0, sum),
        Normalizer::MinMax => (min, max - min),
    };
    if scale == 0.0 || !scale.is_finite() {
        return;
    }
    for x in s {
        *x = (*x - shift) / scale;
    }
}

/// LAMP: each score divided by the sum of the scores at least as large (itself included), so
/// scores of groups of different sizes and scales compare (Lee et al., 2021).
pub fn lamp(s: &mut [f64]) {
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(b.cmp(&a)));
    let mut acc = 0.0;
    let mut out = vec![0.0; s.len()];
    for &i in &order {
        acc += s[i];
        out[i] = if acc > 0.0 { s[i] / acc } else { 0.0 };
    }
    s.copy_from_slice(&out);
}

/// FNV-1a of a string: a stable per-group seed.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The per-unit sums of one member's axis sums: each unit sums the indices it owns.
fn unit_sums(m: &Member, per_index: &[f64]) -> Vec<f64> {
    m.unit_indices
        .iter()
        .map(|idx| idx.iter().map(|&i| per_index[i as usize]).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_and_normalizers() {
        let per = vec![vec![1.0, 4.0], vec![3.0, 0.0]];
        assert_eq!(reduce(&per, Reduction::Mean), vec![2.0, 2.0]);
        assert_eq!(reduce(&per, Reduction::Sum), vec![4.0, 4.0]);
        assert_eq!(reduce(&per, Reduction::Max), vec![3.0, 4.0]);
        let check = |how, want: &[f64]| {
            let mut s = vec![1.0, 2.0, 5.0];
            normalize(&mut s, how);
            assert_eq!(s, want, "{how:?}");
        };
        check(Normalizer::None, &[1.0, 2.0, 5.0]);
        check(Normalizer::Mean, &[0.375, 0.75, 1.875]);
        check(Normalizer::Max, &[0.2, 0.4, 1.0]);
        check(Normalizer::Sum, &[0.125, 0.25, 0.625]);
        check(Normalizer::MinMax, &[0.0, 0.25, 1.0]);
        let mut zeros = vec![0.0, 0.0];
        normalize(&mut zeros, Normalizer::Mean);
        assert_eq!(zeros, vec![0.0, 0.0]);
    }

    #[test]
    fn lamp_divides_by_the_mass_at_least_as_large() {
        let mut s = vec![1.0, 3.0, 2.0, 4.0];
        lamp(&mut s);
        assert_eq!(s, vec![1.0 / 10.0, 3.0 / 7.0, 2.0 / 9.0, 1.0]);
    }
}
