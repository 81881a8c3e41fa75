//! The evaluator runs every op the dependency graph has a coupling rule for, in the rule's
//! domain (onnxruntime's fused ops included), so that any model Shears can prune, it can also
//! verify.

#[test]
fn every_op_with_a_coupling_rule_is_evaluated() {
    let missing: Vec<String> = shears_graph::rules::all_rules()
        // Constant nodes are decoded when the evaluator is prepared, not run.
        .filter(|(d, op, _)| {
            let constant = d.is_empty() && *op == "Constant";
            !constant && !shears_verify::supported_ops_in(d).contains(op)
        })
        .map(|(d, op, _)| format!("{d}:{op}"))
        .collect();
    assert!(missing.is_empty(), "no evaluator op for {missing:?}");
}
