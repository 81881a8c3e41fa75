//! Recovery between the stages of `shears_pruner::prune_iterative`.

use shears_onnx::Model;
use shears_pruner::{Progress, Stage};

use crate::config::RecoverConfig;
use crate::error::Result;
use crate::kept::Kept;
use crate::report::RecoveryReport;
use crate::{copy_with, recover_kept, Sample};

/// Recovers each stage's model against the first stage's original (not against the previous
/// stage), with the kept channels composed over the stages, so errors do not accumulate.
///
/// Invariants: `kept` maps the last recovered stage's channels to the original's; `start` is
/// that stage's recovered model (the one the next stage's plans are made on), `None` before
/// the first stage.
pub struct StagedRecovery<'a> {
    original: &'a Model,
    samples: &'a [Sample],
    cfg: &'a RecoverConfig,
    kept: Kept,
    start: Option<Model>,
    /// One report per recovered stage, in order.
    pub reports: Vec<RecoveryReport>,
}

impl<'a> StagedRecovery<'a> {
    pub fn new(original: &'a Model, samples: &'a [Sample], cfg: &'a RecoverConfig) -> Self {
        StagedRecovery {
            original,
            samples,
            cfg,
            kept: Kept::default(),
            start: None,
            reports: Vec::new(),
        }
    }

    /// Recovers `stage.model` in place (the callback of `prune_iterative` calls this).
    pub fn after_stage(&mut self, stage: &mut Stage, progress: &dyn Progress) -> Result<()> {
        let start = self.start.as_ref().unwrap_or(self.original);
        let step = Kept::from_plans(start, &stage.report.plans)?;
        let kept = self.kept.then(&step);
        let (model, report) = recover_kept(
            self.original,
            &stage.model,
            &kept,
            self.samples,
            self.cfg,
            progress,
        )?;
        self.start = Some(copy_with(&model, &Default::default())?);
        self.kept = kept;
        stage.model = model;
        self.reports.push(report);
        Ok(())
    }
}
