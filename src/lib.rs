//! Shears: dependency-graph structural pruning for ONNX models.
//!
//! This crate is the facade a library user needs: it re-exports the parts under clear module
//! names ([`onnx`], [`graph`], [`plan`], [`exec`], [`pruner`], [`recover`], [`sparsity`],
//! [`verify`]), gathers the common
//! types in a [`prelude`], and adds the few functions that take a model from a file to a
//! smaller file: [`load`] (shapes inferred), [`plan_layer`], [`apply`] and [`save`] (which keeps
//! the input's storage: tensors external in the input stay external).
//!
//! # Quickstart
//!
//! Torch-Pruning's README example (remove output channels 2 and 6 of the first conv and
//! everything coupled to them), on a model the repository ships:
//!
//! ```
//! # fn main() -> Result<(), shears::Error> {
//! # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny_resnet-keepbn.onnx");
//! # let dir = tempfile::tempdir().unwrap();
//! # let out = dir.path().join("pruned.onnx");
//! use shears::prelude::*;
//!
//! let model = shears::load(fixture)?; // shapes inferred, or an error naming the file
//! let graph = DependencyGraph::build(&model);
//! let plan = shears::plan_layer(&model, &graph, "conv1.weight", &[2, 6])?;
//! print!("{}", render_text(&plan));
//! let pruned = shears::apply(&model, &[plan])?;
//! shears::save(&model, &pruned, &out)?;
//! # assert_eq!(shears::load(&out)?.proto, pruned.proto);
//! # Ok(()) }
//! ```
//!
//! The pruner chooses channels by importance instead ([`pruner::prune`],
//! [`pruner::prune_iterative`]); see `examples/` for both, and `docs/prune.md` for its options.
#![warn(missing_docs)]

use std::path::Path;

pub use shears_exec as exec;
pub use shears_graph as graph;
pub use shears_onnx as onnx;
pub use shears_plan as plan;
pub use shears_pruner as pruner;
pub use shears_recover as recover;
pub use shears_sparsity as sparsity;
pub use shears_verify as verify;

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::save::{SaveOptions, SaveReport};
use shears_onnx::{InputShapes, Model};
use shears_plan::PruningPlan;

/// The types and functions most programs use, in one import: `use shears::prelude::*;`.
pub mod prelude {
    pub use crate::{apply, load, load_with_shapes, plan_layer, save, Error};
    pub use shears_graph::DependencyGraph;
    pub use shears_onnx::{InputShapes, Model};
    pub use shears_plan::{diff_lines, render_lines, render_text, PruningPlan};
    pub use shears_pruner::{
        prune, prune_iterative, Control, Criterion, CustomImportance, Goal, ImportanceConfig,
        NoProgress, Outcome, PruneConfig, Stage,
    };
}

/// Every error the facade's functions return. Each message names the file, layer or tensor
/// concerned (the wrapped crate errors already do; the variants here add the file where the
/// crate cannot know it).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, decoding, validating or writing a model (the message names the file).
    #[error(transparent)]
    Onnx(#[from] shears_onnx::OnnxError),
    /// Shapes could not be inferred, typically a symbolic input dimension that a channel size
    /// depends on (the message names the dimension and the node; pass the input's shape to
    /// [`load_with_shapes`]).
    #[error("{path}: shape inference: {source}")]
    Shapes {
        /// The model file.
        path: String,
        /// What inference could not do.
        source: shears_onnx::OnnxError,
    },
    /// The plan request names no layer of the model, or an index out of range.
    #[error("{path}: {source}")]
    Plan {
        /// The model file.
        path: String,
        /// What is wrong with the request.
        source: shears_plan::PlanError,
    },
    /// The plans could not be applied together (or were made for another model).
    #[error("{path}: {source}")]
    Exec {
        /// The model file the plans were applied to.
        path: String,
        /// Why the batch was refused.
        source: shears_exec::ExecError,
    },
    /// The pruned model is not a valid graph or fails shape inference: a bug, never a file.
    #[error("{path}: the pruned model is inconsistent: {source}")]
    Pruned {
        /// The model file the plans were applied to.
        path: String,
        /// What the re-analysis found.
        source: shears_onnx::OnnxError,
    },
    /// A pruner setting or run failed.
    #[error(transparent)]
    Pruner(#[from] shears_pruner::PrunerError),
}

/// Loads the model at `path` and infers shapes for every value. A symbolic dimension (a batch
/// or sequence axis) is analysed at a placeholder and every axis depending on it stays fixed;
/// one that a channel size depends on is an error naming it (use [`load_with_shapes`]).
///
/// Every other function here expects a model with inferred shapes: without them the
/// dependency graph has no channels to couple.
pub fn load(path: impl AsRef<Path>) -> Result<Model, Error> {
    load_with_shapes(path, &InputShapes::default())
}

/// [`load`] with static sizes for symbolic input dimensions.
pub fn load_with_shapes(path: impl AsRef<Path>, inputs: &InputShapes) -> Result<Model, Error> {
    let mut model = Model::load(path.as_ref())?;
    shears_onnx::shape::infer_shapes(&mut model, inputs).map_err(|source| Error::Shapes {
        path: model.source.clone(),
        source,
    })?;
    Ok(model)
}

/// The plan removing output channels `indices` of `layer` (a node name or its weight's name)
/// and everything coupled to them; `graph` must be built from `model`.
pub fn plan_layer(
    model: &Model,
    graph: &DependencyGraph,
    layer: &str,
    indices: &[usize],
) -> Result<PruningPlan, Error> {
    shears_plan::plan(model, graph, layer, indices).map_err(|source| Error::Plan {
        path: model.source.clone(),
        source,
    })
}

/// Applies `plans` (all made for `model`) together and returns the smaller model, re-analysed
/// with the same input shapes (so it can be planned, pruned or saved in turn). `model` is not
/// changed; the result reads unchanged external tensors from `model`'s side files.
pub fn apply(model: &Model, plans: &[PruningPlan]) -> Result<Model, Error> {
    let applied = shears_exec::apply(model, plans).map_err(|source| Error::Exec {
        path: model.source.clone(),
        source,
    })?;
    let store = match model.external.model_file() {
        Some(f) => ExternalStore::for_model_file(f),
        None => ExternalStore::none(),
    };
    let pruned_err = |source| Error::Pruned {
        path: model.source.clone(),
        source,
    };
    let mut pruned =
        Model::from_proto(applied.proto, model.source.clone(), store).map_err(pruned_err)?;
    shears_onnx::shape::infer_shapes(&mut pruned, &input_shapes(model)).map_err(pruned_err)?;
    Ok(pruned)
}

/// The static shape of every graph input of `model` whose shape is known (after inference,
/// all of them), so a transformed copy is analysed with the shapes the original was.
fn input_shapes(model: &Model) -> InputShapes {
    let g = &model.graph;
    InputShapes(
        g.inputs
            .iter()
            .filter_map(|&v| Some((g.value(v).name.clone(), g.value(v).shape.clone()?)))
            .collect(),
    )
}

/// Writes `pruned` (made from `original`) to `path`, with external data in `<path>.data`, and
/// keeps `original`'s storage: every tensor external there is external here, edited or not
/// ([`SaveOptions::keeping_storage_of`]). Written through temporary files and renamed; the
/// original's files are never overwritten.
pub fn save(original: &Model, pruned: &Model, path: impl AsRef<Path>) -> Result<SaveReport, Error> {
    let opts = SaveOptions::keeping_storage_of(original);
    Ok(shears_onnx::save::save_proto(
        &pruned.proto,
        &pruned.external,
        path.as_ref(),
        &opts,
    )?)
}
