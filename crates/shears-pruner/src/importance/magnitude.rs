//! Magnitude criteria (L1, L2, LAMP's base, BatchNorm scale): per member tensor, the unit's
//! slice norm, from the axis sums the scorer computed up front.

use super::{measured, reduce, unit_sums, Criterion, GroupImportance, Scorer};
use crate::members::Member;

pub(super) fn scores(s: &Scorer, ms: &[Member]) -> GroupImportance {
    let cfg = s.cfg;
    let per_member: Vec<Vec<f64>> = ms
        .iter()
        .filter(|m| m.role.is_some_and(|r| measured(cfg, r)))
        .filter_map(|m| {
            let sums = s.sums.get(&(m.value, m.axis))?;
            let per_index = match cfg.criterion {
                Criterion::L1 | Criterion::BnScale => &sums.l1,
                _ => &sums.l2,
            };
            Some(unit_sums(m, per_index))
        })
        .collect();
    if per_member.is_empty() {
        return GroupImportance::Missing(match cfg.criterion {
            Criterion::BnScale => "no normalization scale in the group".into(),
            _ => "no parameter slice to measure in the group".into(),
        });
    }
    GroupImportance::Scores(reduce(&per_member, cfg.reduction))
}
