//! FPGM (He et al., 2019): filters close to the geometric median of a layer's filters are the
//! most replaceable. A filter's score is its summed Euclidean distance to every other filter
//! of the group's root layer; the smallest sums sit nearest the median and go first.

use shears_graph::Group;
use shears_onnx::Model;

use super::GroupImportance;
use crate::error::Result;
use crate::members::Member;
use crate::roles::ParamRole;
use crate::tensors::dense;

/// The filters measured: the group's root dim when it is a parameter, else the first weight
/// member (a root seen through a Transpose has its weight among the members).
fn filter_member<'m>(group: &Group, ms: &'m [Member]) -> Option<&'m Member> {
    ms.iter()
        .find(|m| m.dim == group.root && m.role.is_some())
        .or_else(|| ms.iter().find(|m| m.role == Some(ParamRole::Weight)))
}

pub(super) fn scores(model: &Model, group: &Group, ms: &[Member]) -> Result<GroupImportance> {
    let Some(m) = filter_member(group, ms) else {
        return Ok(GroupImportance::Missing(
            "no filter tensor in the group".into(),
        ));
    };
    let t = dense(model, m.value)?;
    let filters: Vec<Vec<f32>> = m
        .unit_indices
        .iter()
        .map(|idx| t.slice(m.axis, idx))
        .collect();
    Ok(GroupImportance::Scores(distance_sums(&filters)))
}

/// `Σ_j ‖f_i − f_j‖₂` for every filter `i` (filters of equal length).
pub fn distance_sums(filters: &[Vec<f32>]) -> Vec<f64> {
    let n = filters.len();
    let mut sums = vec![0.0f64; n];
    for i in 0..n {
        for j in i + 1..n {
            let d: f64 = filters[i]
                .iter()
                .zip(&filters[j])
                .map(|(&a, &b)| {
                    let d = (a - b) as f64;
                    d * d
                })
                .sum::<f64>()
                .sqrt();
            sums[i] += d;
            sums[j] += d;
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_nearest_the_others_scores_lowest() {
        // Points on a line at 0, 1, 10: distance sums 11, 10, 19.
        let f = vec![vec![0.0f32], vec![1.0], vec![10.0]];
        assert_eq!(distance_sums(&f), vec![11.0, 10.0, 19.0]);
    }
}
