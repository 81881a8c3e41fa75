//! Other exporters' forms of computed weights and rarer layouts, built with `onnx.helper`
//! (`tests/interop/computed_models.py`): weight-standardised convs (BiT's `var_mean` form, timm's
//! `StdConv2d` batch norm over a `[1, C, -1]` view, a 2-D `[C, -1]` view and back), a bias made by
//! ConstantOfShape and one by Expand, a GatherND, and a channel/patch regroup Reshape.
//! `shears prune --ratio 0.5` on each writes a model that `onnx.checker` (full_check) accepts
//! and onnxruntime runs with the original's output shapes; a `--layer/--idxs` plan on each is
//! exact by the zeroing check, computed by onnxruntime (`tests/interop/check_zeroed.py`).
#![cfg(feature = "interop")]

mod common;

use common::{ok, shears};

/// The model, the layer a plan starts from (a stored weight seen through its computation, or
/// a node) and the indices it removes.
const CASES: &[(&str, &str, &str)] = &[
    ("std_conv", "w1", "1,4"),
    ("std_conv_bn", "w1", "0,5,6"),
    ("std_conv_2d", "w1", "2,3"),
    ("const_bias", "conv1", "1,7"),
    ("gather_nd", "fc1", "0,3"),
    ("regroup", "conv1", "2,6"),
];

#[test]
fn computed_weights_prune_valid_and_exact_in_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = common::python("computed_models.py", &[d.to_path_buf()]);
    let built: Vec<&str> = names.lines().collect();
    assert_eq!(built, CASES.iter().map(|c| c.0).collect::<Vec<_>>());
    let mut pruned = Vec::new();
    let mut triples = Vec::new();
    for &(name, layer, idxs) in CASES {
        let m = d.join(format!("{name}.onnx"));
        let ratio = d.join(format!("{name}.ratio.onnx"));
        let by_layer = d.join(format!("{name}.layer.onnx"));
        let plan = d.join(format!("{name}.plan.json"));
        let (ms, rs, ls) = (
            m.to_str().unwrap(),
            ratio.to_str().unwrap(),
            by_layer.to_str().unwrap(),
        );
        ok(&shears(&["prune", ms, "--ratio", "0.5", "-o", rs]));
        let o = shears(&["plan", ms, "--layer", layer, "--idxs", idxs, "--json"]);
        ok(&o);
        std::fs::write(&plan, &o.stdout).unwrap();
        ok(&shears(&[
            "prune", ms, "--layer", layer, "--idxs", idxs, "-o", ls,
        ]));
        pruned.extend([ratio, by_layer.clone()]);
        triples.extend([m, by_layer, plan]);
    }
    let checked = common::python("check_models.py", &pruned);
    assert_eq!(checked.lines().count(), pruned.len(), "{checked}");
    let exact = common::python("check_zeroed.py", &triples);
    assert_eq!(exact.lines().count(), CASES.len(), "{exact}");
}
