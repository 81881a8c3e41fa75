//! Which original channels a pruned model keeps, per (value, axis).

use std::collections::BTreeMap;

use shears_onnx::Model;
use shears_plan::PruningPlan;

use crate::error::Result;

/// The original model's channel indices each pruned (value name, axis) keeps, in order.
///
/// Invariants: every list is sorted and unique; a (value, axis) not listed keeps all its
/// channels. Indices are always the original model's, also after several stages
/// ([`Kept::then`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kept {
    map: BTreeMap<(String, usize), Vec<u32>>,
}

impl Kept {
    /// What `plans` (in `model`'s coordinates) keep; plans are checked against `model` and
    /// merged as the executor does (overlaps are errors).
    pub fn from_plans(model: &Model, plans: &[PruningPlan]) -> Result<Kept> {
        let cuts = shears_exec::merge(model, plans)?;
        let g = &model.graph;
        let mut map = BTreeMap::new();
        for ((v, axis), removed) in &cuts.removed {
            let size = g.value(*v).shape.as_ref().map_or(0, |s| s[*axis]);
            let kept: Vec<u32> = (0..size as u32)
                .filter(|i| removed.binary_search(i).is_err())
                .collect();
            map.insert((g.value(*v).name.clone(), *axis), kept);
        }
        Ok(Kept { map })
    }

    /// The composition of two stages: `self` maps the first stage's model to the original,
    /// `next` (from plans on the first stage's model) maps the second stage's to the first's.
    pub fn then(&self, next: &Kept) -> Kept {
        let mut map = self.map.clone();
        for (key, idx) in &next.map {
            let composed = match self.map.get(key) {
                Some(prev) => idx.iter().map(|&i| prev[i as usize]).collect(),
                None => idx.clone(),
            };
            map.insert(key.clone(), composed);
        }
        Kept { map }
    }

    /// The original indices `value`'s `axis` keeps, or `None` when it keeps them all.
    pub fn get(&self, value: &str, axis: usize) -> Option<&[u32]> {
        self.map
            .get(&(value.to_string(), axis))
            .map(|v| v.as_slice())
    }

    /// Whether nothing was removed.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
