//! The one reader of plan files, shared by `prune --plan` and `diff`: a single plan
//! (`shears plan --json`), an array of plans, or a `prune --report` whose stages hold plans.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::{render_lines, PlanError, PruningPlan};

/// The plans of one file, by stage.
///
/// Invariants: at least one stage. A single plan or an array of plans is one stage (plans of
/// the same model, applied together). A report's stages are in order, and the plans of stage
/// `t` are in the coordinates of the model stages `1..t` leave (the pruner re-analyses the model
/// after each stage), so they must be applied one stage after another, never batched across
/// stages. A stage may be empty (a pruner stage that removed nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanFile {
    pub stages: Vec<Vec<PruningPlan>>,
}

impl PlanFile {
    /// Reads and parses `path`; errors name the file.
    pub fn read(path: &Path) -> Result<PlanFile, PlanError> {
        let bytes = std::fs::read(path).map_err(|e| PlanError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        PlanFile::parse(&bytes).map_err(|reason| PlanError::File {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Parses the JSON of a plan, an array of plans or a `prune --report`.
    pub fn parse(bytes: &[u8]) -> Result<PlanFile, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
        let plans = |v: Value, what: &str| -> Result<Vec<PruningPlan>, String> {
            serde_json::from_value(v).map_err(|e| format!("{what}: not a Shears plan ({e})"))
        };
        match value {
            Value::Array(_) => Ok(PlanFile {
                stages: vec![plans(value, "array")?],
            }),
            Value::Object(ref o) if o.contains_key("stages") => {
                let Some(Value::Array(stages)) = o.get("stages") else {
                    return Err("report: 'stages' is not an array".into());
                };
                if stages.is_empty() {
                    return Err("report: no stages".into());
                }
                let mut out = Vec::with_capacity(stages.len());
                for (i, stage) in stages.iter().enumerate() {
                    let Some(p) = stage.get("plans") else {
                        return Err(format!("report: stage {} has no 'plans'", i + 1));
                    };
                    out.push(plans(p.clone(), &format!("report stage {}", i + 1))?);
                }
                Ok(PlanFile { stages: out })
            }
            single => Ok(PlanFile {
                stages: vec![vec![serde_json::from_value(single)
                    .map_err(|e| format!("not a Shears plan ({e})"))?]],
            }),
        }
    }

    /// The plans of several files applied together: one file as it is; several are batched
    /// into one stage, so each must hold a single stage (a multi-stage report is refused
    /// unless it is the only file, since its later stages need the model earlier ones leave).
    pub fn read_all(paths: &[impl AsRef<Path>]) -> Result<PlanFile, PlanError> {
        let mut files = Vec::with_capacity(paths.len());
        for p in paths {
            files.push((p.as_ref(), PlanFile::read(p.as_ref())?));
        }
        if files.len() == 1 {
            return Ok(files.pop().expect("one file").1);
        }
        let mut batch = Vec::new();
        for (path, f) in files {
            if f.stages.len() > 1 {
                return Err(PlanError::File {
                    path: path.display().to_string(),
                    reason: format!(
                        "a report of {} stages must be given alone: its later stages apply to \
                         the model its earlier ones leave, not together with other plans",
                        f.stages.len()
                    ),
                });
            }
            batch.extend(f.stages.into_iter().flatten());
        }
        Ok(PlanFile {
            stages: vec![batch],
        })
    }

    /// Every plan, stage after stage.
    pub fn plans(&self) -> impl Iterator<Item = &PruningPlan> {
        self.stages.iter().flatten()
    }

    /// The unaligned one-entry-per-line form of every plan ([`render_lines`]), what `diff`
    /// compares. With several stages, each starts with a `stage T/N` line, so a plan moving
    /// between stages shows as a change.
    pub fn render_lines(&self) -> String {
        let mut s = String::new();
        let n = self.stages.len();
        for (t, stage) in self.stages.iter().enumerate() {
            if n > 1 {
                let _ = writeln!(s, "stage {}/{n}", t + 1);
            }
            for p in stage {
                s.push_str(&render_lines(p));
            }
        }
        s
    }
}
