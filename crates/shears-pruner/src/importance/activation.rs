//! Activation criteria (APoZ, mean activation): statistics of the group's activations after
//! the activation function, gathered by running calibration inputs through the evaluator.

use std::collections::HashMap;

use shears_graph::{DependencyGraph, Group};
use shears_onnx::{ops, Model, ValueId};

use super::{reduce, Criterion, GroupImportance, ImportanceConfig};
use crate::members::Member;

/// Per index of one activation axis, over every calibration sample and every other axis.
///
/// Invariant: the three vectors have the axis length; `zeros[i] <= count[i]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChannelStats {
    pub count: Vec<u64>,
    pub zeros: Vec<u64>,
    pub sum: Vec<f64>,
}

impl ChannelStats {
    pub fn new(size: usize) -> Self {
        ChannelStats {
            count: vec![0; size],
            zeros: vec![0; size],
            sum: vec![0.0; size],
        }
    }

    /// Adds one tensor of shape `shape` whose `axis` this accumulates.
    pub fn add(&mut self, data: &[f32], shape: &[usize], axis: usize) {
        let outer: usize = shape[..axis].iter().product();
        let size = shape[axis];
        let inner: usize = shape[axis + 1..].iter().product();
        for o in 0..outer {
            for i in 0..size.min(self.count.len()) {
                let start = (o * size + i) * inner;
                let slice = &data[start..start + inner];
                self.count[i] += inner as u64;
                self.zeros[i] += slice.iter().filter(|&&x| x == 0.0).count() as u64;
                self.sum[i] += slice.iter().map(|&x| x as f64).sum::<f64>();
            }
        }
    }
}

/// Statistics per observed (value, axis) of one model.
#[derive(Clone, Debug, Default)]
pub struct ActivationStats {
    pub channels: HashMap<(ValueId, usize), ChannelStats>,
    /// Calibration samples run.
    pub samples: usize,
}

/// The activation members of `group` that activation criteria read: those produced by an
/// activation function; failing any, the outputs of the group's layers (their pre-activation
/// values). Empty when the group has neither.
pub fn observed_values(
    model: &Model,
    graph: &DependencyGraph,
    group: &Group,
) -> Vec<(ValueId, usize)> {
    let g = &model.graph;
    let acts: Vec<(ValueId, usize)> = group
        .dims
        .iter()
        .filter_map(|&d| {
            let info = graph.dim(d);
            match info.key {
                shears_graph::DimKey::Axis(v, a) if !info.is_param => Some((v, a)),
                _ => None,
            }
        })
        .collect();
    let after_activation: Vec<(ValueId, usize)> = acts
        .iter()
        .copied()
        .filter(|&(v, _)| {
            g.producer(v)
                .is_some_and(|n| ops::facts(g.node(n)).role == ops::OpRole::Activation)
        })
        .collect();
    if !after_activation.is_empty() {
        return after_activation;
    }
    acts.into_iter()
        .filter(|&(v, _)| {
            g.producer(v).is_some_and(|n| {
                graph.verdicts[n.index()]
                    .as_ref()
                    .ok()
                    .and_then(|c| c.out_channels)
                    .and_then(|(w, a)| graph.dim_id(shears_graph::DimKey::Axis(w, a)))
                    .is_some_and(|d| group.dims.binary_search(&d).is_ok())
            })
        })
        .collect()
}

pub(super) fn scores(
    model: &Model,
    graph: &DependencyGraph,
    group: &Group,
    ms: &[Member],
    stats: &ActivationStats,
    cfg: &ImportanceConfig,
) -> GroupImportance {
    let observed = observed_values(model, graph, group);
    let per_member: Vec<Vec<f64>> = ms
        .iter()
        .filter(|m| observed.contains(&(m.value, m.axis)))
        .filter_map(|m| {
            let st = stats.channels.get(&(m.value, m.axis))?;
            Some(
                m.unit_indices
                    .iter()
                    .map(|idx| {
                        let (mut n, mut z, mut s) = (0u64, 0u64, 0.0f64);
                        for &i in idx {
                            let i = i as usize;
                            n += st.count[i];
                            z += st.zeros[i];
                            s += st.sum[i];
                        }
                        let n = n.max(1) as f64;
                        match cfg.criterion {
                            // Fewer zeros after the activation: more important.
                            Criterion::Apoz => 1.0 - z as f64 / n,
                            _ => s / n,
                        }
                    })
                    .collect(),
            )
        })
        .collect();
    if per_member.is_empty() {
        return GroupImportance::Missing("no activation of the group was observed".into());
    }
    GroupImportance::Scores(reduce(&per_member, cfg.reduction))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_stats_count_zeros_and_sums_per_channel() {
        let mut s = ChannelStats::new(2);
        // [1, 2, 3]: channel 0 = [0, 1, 0], channel 1 = [2, 0, 4].
        s.add(&[0.0, 1.0, 0.0, 2.0, 0.0, 4.0], &[1, 2, 3], 1);
        assert_eq!(s.count, vec![3, 3]);
        assert_eq!(s.zeros, vec![2, 1]);
        assert_eq!(s.sum, vec![1.0, 6.0]);
    }
}
