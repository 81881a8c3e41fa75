//! `shears plan`, `shears groups` and `shears diff` as commands: output is byte-identical from
//! run to run (separate processes, so hash seeds differ), and bad requests exit with status 2
//! and a clear one-line error, never a panic.

use std::path::Path;
use std::process::{Command, Output};

const RESNET: &str = "tests/fixtures/tiny_resnet-keepbn.onnx";
const SHUFFLE: &str = "tests/fixtures/tiny_shufflenet-dynamo.onnx";

fn shears(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shears"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("run shears")
}

fn succeeds(args: &[&str]) -> Vec<u8> {
    let out = shears(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[track_caller]
fn fails(args: &[&str], needles: &[&str]) {
    let out = shears(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: '{err}' lacks '{n}'");
    }
    assert!(out.stdout.is_empty(), "{args:?} printed a report");
}

#[test]
fn plans_and_groups_are_byte_identical_run_to_run() {
    let runs: &[&[&str]] = &[
        &[
            "plan",
            RESNET,
            "--layer",
            "layer1.0.conv2.weight",
            "--idxs",
            "0,2,5",
        ],
        &[
            "plan",
            RESNET,
            "--layer",
            "layer1.0.conv2.weight",
            "--idxs",
            "0,2,5",
            "--json",
        ],
        &[
            "plan",
            SHUFFLE,
            "--layer",
            "node_Conv_284",
            "--idxs",
            "1..4",
        ],
        &[
            "plan",
            SHUFFLE,
            "--layer",
            "node_Conv_284",
            "--idxs",
            "1..4",
            "--json",
        ],
        &["groups", SHUFFLE],
        &["groups", SHUFFLE, "--json"],
    ];
    for args in runs {
        let first = succeeds(args);
        assert!(!first.is_empty(), "{args:?}");
        for _ in 0..2 {
            assert_eq!(succeeds(args), first, "{args:?} differs between runs");
        }
    }
}

#[test]
fn a_saved_plan_renders_like_the_plan_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let json = succeeds(&[
        "plan",
        RESNET,
        "--layer",
        "conv1.weight",
        "--idxs",
        "1,3",
        "--json",
    ]);
    let saved = dir.path().join("plan.json");
    std::fs::write(&saved, &json).unwrap();
    let text = succeeds(&["plan", RESNET, "--layer", "conv1.weight", "--idxs", "1,3"]);
    let plan: shears_plan::PruningPlan = serde_json::from_slice(&json).unwrap();
    assert_eq!(shears_plan::render_text(&plan).as_bytes(), text.as_slice());
    // diff of a plan with itself: no output, status 0.
    let s = saved.to_str().unwrap();
    assert!(succeeds(&["diff", s, s]).is_empty());
}

/// keepbn and fused exports of the same layer: the BatchNorm lines and the renamed conv tensors
/// change; the classifier's line, the same tensor in both, is unchanged context.
#[test]
fn diff_of_two_exports_shows_only_the_changed_lines() {
    let out = shears(&[
        "diff",
        "tests/fixtures/tiny_vgg-keepbn.onnx",
        "tests/fixtures/tiny_vgg-fused.onnx",
        "--layer",
        "/features/features.11/Conv",
        "--idxs",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let d = String::from_utf8(out.stdout).unwrap();
    let context: Vec<&str> = d.lines().filter(|l| l.starts_with("  prune")).collect();
    assert_eq!(context.len(), 1, "{d}");
    assert!(
        context[0].starts_with("  prune_in classifier.1.weight  axis 1"),
        "{d}"
    );
    let removed: Vec<&str> = d.lines().filter(|l| l.starts_with("- prune")).collect();
    let added: Vec<&str> = d.lines().filter(|l| l.starts_with("+ prune")).collect();
    // keepbn: conv weight and bias, BN weight, bias, mean, var; fused: the folded weight and
    // bias under exporter names.
    assert_eq!((removed.len(), added.len()), (6, 2), "{d}");
    assert!(
        removed
            .iter()
            .any(|l| l.contains("features.12.running_var")),
        "{d}"
    );
}

#[test]
fn bad_requests_fail_clearly() {
    let r = RESNET;
    fails(
        &["plan", r, "--layer", "conv1.weight", "--idxs", "0..8"],
        &["all 8 channels", "conv1.weight", r],
    );
    fails(
        &["plan", r, "--layer", "conv1.weight", "--idxs", "2,2"],
        &["index 2 is repeated", r],
    );
    fails(
        &["plan", r, "--layer", "conv1.weight", "--idxs", "8"],
        &["index 8 is out of range", "8 channels", r],
    );
    fails(
        &["plan", r, "--layer", "conv9.weight", "--idxs", "0"],
        &["no node or parameter named 'conv9.weight'", r],
    );
    fails(
        &["plan", r, "--layer", "bn1.running_mean", "--idxs", "0"],
        &["'bn1.running_mean' has no output channels"],
    );
    fails(
        &["plan", r, "--layer", "fc.weight", "--idxs", "0"],
        &["graph output"],
    );
    fails(
        &["plan", r, "--layer", "conv1.weight", "--idxs", "a"],
        &["bad index 'a'"],
    );
    fails(
        &["plan", r, "--layer", "conv1.weight", "--idxs", "3..1"],
        &["empty index range"],
    );
    fails(
        &["plan", r, "--layer", "conv1.weight", "--idxs", ""],
        &["no indices"],
    );
    fails(
        &[
            "plan",
            r,
            "--layer",
            "conv1.weight",
            "--idxs",
            "0..99999999999",
        ],
        &["is longer than"],
    );
    fails(
        &[
            "plan",
            "tests/fixtures/missing.onnx",
            "--layer",
            "x",
            "--idxs",
            "0",
        ],
        &["missing.onnx"],
    );
    fails(
        &["groups", "tests/fixtures/missing.onnx"],
        &["missing.onnx"],
    );
    assert!(!Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/missing.onnx")
        .exists());
}

/// `--quiet` (global: before or after the subcommand) drops text reports, keeps what `--json`
/// asks for, and leaves errors and exit statuses alone.
#[test]
fn quiet_prints_only_json_and_errors() {
    let plan = ["plan", RESNET, "--layer", "conv1.weight", "--idxs", "2,6"];
    assert!(!succeeds(&plan).is_empty());
    let mut quiet = vec!["--quiet"];
    quiet.extend(plan);
    assert!(succeeds(&quiet).is_empty());

    let mut json = plan.to_vec();
    json.push("--json");
    let loud = succeeds(&json);
    json.push("-q");
    assert_eq!(succeeds(&json), loud);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pruned.onnx");
    let out_s = out.to_str().unwrap();
    let prune = [
        "prune",
        RESNET,
        "-o",
        out_s,
        "--layer",
        "conv1.weight",
        "--idxs",
        "2,6",
        "--quiet",
    ];
    assert!(succeeds(&prune).is_empty());
    assert!(out.exists());
    let groups = ["--quiet", "groups", RESNET];
    assert!(succeeds(&groups).is_empty());

    fails(
        &[
            "--quiet",
            "plan",
            RESNET,
            "--layer",
            "no_such_layer",
            "--idxs",
            "0",
        ],
        &["no_such_layer"],
    );
}

/// `shears completions SHELL` prints clap's completion script, naming every subcommand.
#[test]
fn completions_cover_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = String::from_utf8(succeeds(&["completions", shell])).unwrap();
        for cmd in [
            "inspect",
            "verify",
            "plan",
            "groups",
            "diff",
            "prune",
            "eval",
            "completions",
        ] {
            assert!(script.contains(cmd), "{shell} lacks {cmd}");
        }
        assert!(script.contains("input-shape"), "{shell} lacks options");
    }
    let out = shears(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
