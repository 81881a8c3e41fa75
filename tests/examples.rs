//! Every example in `examples/` run on its default model (one the repository ships), with its
//! printed output checked. The examples' `run` functions are compiled in here (`cargo test`
//! does not run example binaries); `.ci/run` also builds and runs the binaries themselves.

use std::path::Path;

#[allow(dead_code)] // the example's `main` is unused here
#[path = "../examples/custom_importance.rs"]
mod custom_importance;
#[allow(dead_code)] // the example's `main` is unused here
#[path = "../examples/iterative.rs"]
mod iterative;
#[allow(dead_code)] // the example's `main` is unused here
#[path = "../examples/plan_and_prune.rs"]
mod plan_and_prune;
#[allow(dead_code)] // the example's `main` is unused here
#[path = "../examples/plan_diff.rs"]
mod plan_diff;
#[allow(dead_code)] // the example's `main` is unused here
#[path = "../examples/ratio_prune.rs"]
mod ratio_prune;

const RESNET: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny_resnet-keepbn.onnx"
);

/// An example's `run` function.
type Run = fn(&str, &mut dyn std::io::Write) -> Result<(), Box<dyn std::error::Error>>;

fn output(run: Run) -> String {
    assert!(Path::new(RESNET).exists());
    let mut out = Vec::new();
    run(RESNET, &mut out).expect("the example runs");
    String::from_utf8(out).expect("UTF-8 output")
}

/// `A -> B` pairs on lines containing `marker`.
fn arrows(text: &str, marker: &str) -> Vec<(String, u64, u64)> {
    text.lines()
        .filter(|l| l.contains(marker))
        .map(|l| {
            let (head, tail) = l.split_once(": ").expect("NAME: A -> B");
            let nums: Vec<u64> = tail
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            (head.to_string(), nums[0], nums[1])
        })
        .collect()
}

#[test]
fn plan_and_prune_removes_the_two_channels_and_what_is_coupled() {
    let text = output(plan_and_prune::run);
    // The plan: conv1's filters, bn1's four vectors, and the two consumers' input slices.
    assert!(text.contains("remove 2 of 8 channels: [2, 6]"), "{text}");
    let entries = text.lines().filter(|l| l.starts_with('[')).count();
    assert_eq!(entries, 7, "{text}");
    assert!(text.contains("Total: 378 parameters removed"), "{text}");
    // The saved file: conv1 lost two channels, and exactly the plan's parameters are gone.
    assert!(text.contains("conv1.weight out channels: 8 -> 6"), "{text}");
    let (_, before, after) = arrows(&text, "parameters: ")[0].clone();
    assert_eq!(before - after, 378, "{text}");
}

#[test]
fn ratio_prune_halves_every_prunable_group() {
    let text = output(ratio_prune::run);
    let groups = arrows(&text, " channels");
    assert!(!groups.is_empty(), "{text}");
    for (layer, before, after) in &groups {
        assert_eq!(*after, before.div_ceil(2), "{layer} in {text}");
    }
    // Fewer parameters, and the saved file has the outcome's count.
    let line = text
        .lines()
        .find(|l| l.starts_with("parameters: "))
        .unwrap();
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(nums[1] < nums[0], "{line}");
    assert_eq!(nums[1], nums[2], "{line}");
}

#[test]
fn iterative_evaluates_each_of_three_stages() {
    let text = output(iterative::run);
    let stages: Vec<&str> = text.lines().filter(|l| l.starts_with("stage ")).collect();
    assert_eq!(stages.len(), 3, "{text}");
    let params: Vec<u64> = stages
        .iter()
        .map(|l| {
            l.split(": ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(params.windows(2).all(|w| w[1] < w[0]), "{text}");
    assert!(
        stages
            .iter()
            .all(|l| l.contains("output shapes equal: true")),
        "{text}"
    );
    assert!(text.contains("evaluated 3 stages"), "{text}");
    let last = text.lines().last().unwrap();
    assert!(last.ends_with(&format!("-> {}", params[2])), "{text}");
}

#[test]
fn plan_diff_shows_the_index_change_on_every_coupled_tensor() {
    let text = output(plan_diff::run);
    // One line per tensor, plus the header naming the indices, on each side.
    let removed: Vec<&str> = text.lines().filter(|l| l.starts_with("- prune_")).collect();
    let added: Vec<&str> = text.lines().filter(|l| l.starts_with("+ prune_")).collect();
    let header = |sign: &str, idxs: &str| {
        text.lines().any(|l| {
            l.starts_with(&format!("{sign} Pruning plan: conv1.weight")) && l.ends_with(idxs)
        })
    };
    assert!(header("-", "[2, 6]") && header("+", "[2, 7]"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with(['-', '+'])).count(),
        2 + 2 + 7 + 7,
        "{text}"
    );
    assert_eq!(removed.len(), 7, "{text}");
    assert_eq!(added.len(), 7, "{text}");
    assert!(removed.iter().all(|l| l.contains("idxs=[2, 6]")), "{text}");
    assert!(added.iter().all(|l| l.contains("idxs=[2, 7]")), "{text}");
}

#[test]
fn custom_importance_scores_every_group_it_prunes() {
    let text = output(custom_importance::run);
    let groups = arrows(&text, " channels");
    assert!(!groups.is_empty(), "{text}");
    for (layer, before, after) in &groups {
        // Ratio 0.25: a quarter of each group goes.
        assert_eq!(*after, before - before / 4, "{layer} in {text}");
    }
    let scored: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("l-inf scored "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the scored-groups line");
    assert!(scored >= groups.len(), "{text}");
}
