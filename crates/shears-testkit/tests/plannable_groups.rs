//! `groups` never calls prunable a group that planning refuses: every prunable group of every
//! zoo model and repository fixture plans (its first unit, and a seeded random subset of its
//! units), applies, and re-analyses. What can only be found while planning (computed slice
//! bounds, computed shape entries, a rewrite the model forbids) must block the group instead.

mod common;
#[path = "common/plannable.rs"]
mod plannable;

use shears_onnx::external::ExternalStore;
use shears_onnx::Model;
use shears_testkit::builder::zoo;

#[test]
fn every_prunable_group_of_every_zoo_model_can_be_planned() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, build) in zoo::MODELS {
        let mut m = Model::from_proto(build(), *name, ExternalStore::none()).unwrap();
        let shapes = common::static_shapes(&m);
        shears_onnx::shape::infer_shapes(&mut m, &shapes).unwrap();
        let (n, f) = plannable::refusals(&m, &shapes, name);
        checked += n;
        failures.extend(f);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 50, "only {checked} groups checked");
}

#[test]
fn every_prunable_group_of_every_fixture_can_be_planned() {
    let mut failures = Vec::new();
    for f in common::fixture_files() {
        let what = f.file_name().unwrap().to_string_lossy().into_owned();
        let mut m = Model::load(&f).unwrap();
        let shapes = common::static_shapes(&m);
        shears_onnx::shape::infer_shapes(&mut m, &shapes).unwrap();
        let (n, fails) = plannable::refusals(&m, &shapes, &what);
        assert!(n > 0, "{what}: no group checked");
        failures.extend(fails);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
