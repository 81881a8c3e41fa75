//! The evaluator runs every op the dependency graph has a coupling rule for, so that any model
//! Shears can prune, it can also verify.

#[test]
fn every_op_with_a_coupling_rule_is_evaluated() {
    let supported = shears_verify::supported_ops();
    let missing: Vec<&str> = shears_graph::rules::RULES
        .iter()
        .flat_map(|r| r.ops.iter().copied())
        // Constant nodes are decoded when the evaluator is prepared, not run.
        .filter(|op| *op != "Constant" && !supported.contains(op))
        .collect();
    assert!(missing.is_empty(), "no evaluator op for {missing:?}");
}
