//! `shears prune --ratio / --target-*`: the summary, the report, schedules, calibration inputs
//! and bad input, through the binary.

mod common;
use common::{ok, read_json, shears, text, write_npys};

const MODEL: &str = "tests/fixtures/tiny_resnet-keepbn.onnx";

#[test]
fn the_summary_lists_layers_totals_stages_and_what_stayed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("small.onnx");
    let o = shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "-o",
        out.to_str().unwrap(),
    ]);
    ok(&o);
    // Not a terminal: no progress bar, nothing on stderr.
    assert_eq!(text(&o.stderr), "");
    let s = text(&o.stdout).replace(out.to_str().unwrap(), "OUT");
    insta::assert_snapshot!("ratio_text", s);
}

#[test]
fn the_report_holds_plans_that_reproduce_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = (dir.path().join("a.onnx"), dir.path().join("r.json"));
    let o = shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.4",
        "--global",
        "--normalize",
        "--round-to",
        "2",
        "-o",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    ok(&o);
    let r = read_json(&report);
    assert_eq!(r["settings"]["allocation"]["global"], true);
    assert_eq!(r["settings"]["importance"]["normalizer"], "mean");
    assert_eq!(r["settings"]["allocation"]["round_to"], 2);
    let stages = r["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 1);
    for g in stages[0]["groups"].as_array().unwrap() {
        assert_eq!(g["after"].as_u64().unwrap() % 2, 0, "{g}");
    }
    // The plans in the report, applied with --plan, give the same file.
    let plans = dir.path().join("plans.json");
    std::fs::write(&plans, stages[0]["plans"].to_string()).unwrap();
    let again = dir.path().join("b.onnx");
    ok(&shears(&[
        "prune",
        MODEL,
        "--plan",
        plans.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
    // The summary in the report is the one --json prints.
    let o = shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.4",
        "--global",
        "--normalize",
        "--round-to",
        "2",
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    ok(&o);
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(printed, r["summary"]);
    let layers = printed["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    for l in layers {
        assert!(l["macs"][1].as_u64() <= l["macs"][0].as_u64(), "{l}");
    }
}

#[test]
fn every_group_is_either_pruned_or_left_whole_with_a_reason() {
    // `groups --json` counts the model's groups; each stage must account for all of them.
    let g = shears(&["groups", MODEL, "--json"]);
    ok(&g);
    let all: serde_json::Value = serde_json::from_slice(&g.stdout).unwrap();
    let total = all.as_array().unwrap().len();
    let dir = tempfile::tempdir().unwrap();
    for round_to in ["1", "16", "1000000"] {
        let (out, report) = (dir.path().join("a.onnx"), dir.path().join("r.json"));
        let o = shears(&[
            "prune",
            MODEL,
            "--ratio",
            "0.5",
            "--round-to",
            round_to,
            "-o",
            out.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ]);
        if round_to == "1000000" {
            // Nothing can lose a channel: exit 2, and the error lists every group.
            assert_eq!(o.status.code(), Some(2));
            let err = text(&o.stderr);
            let listed = err.lines().filter(|l| l.starts_with("  /")).count();
            assert_eq!(listed, total, "{err}");
            assert!(err.contains("multiples of --round-to 1000000"), "{err}");
            continue;
        }
        ok(&o);
        let r = read_json(&report);
        let stage = &r["stages"][0];
        let pruned = stage["groups"].as_array().unwrap().len();
        let skipped = stage["skipped"].as_array().unwrap();
        assert_eq!(
            pruned + skipped.len(),
            total,
            "--round-to {round_to}: {stage}"
        );
        for s in skipped {
            assert!(!s["reason"].as_str().unwrap().is_empty(), "{s}");
        }
        // The summary says so too: one line per group left whole.
        let summary = text(&o.stdout);
        let after = summary.split("left whole:\n").nth(1).unwrap_or("");
        assert_eq!(after.lines().count(), skipped.len(), "{summary}");
    }
}

#[test]
fn agp_steps_make_one_stage_each() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = (dir.path().join("a.onnx"), dir.path().join("r.json"));
    ok(&shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.6",
        "--steps",
        "3",
        "--schedule",
        "agp",
        "-o",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]));
    let r = read_json(&report);
    let stages = r["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 3);
    let s: Vec<f64> = stages
        .iter()
        .map(|s| s["target"]["sparsity"].as_f64().unwrap())
        .collect();
    assert!(
        s[0] > 0.6 / 3.0 && s[0] < s[1] && s[1] < s[2] && s[2] == 0.6,
        "{s:?}"
    );
}

#[test]
fn target_macs_reports_whether_it_was_reached() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = (dir.path().join("a.onnx"), dir.path().join("r.json"));
    let o = shears(&[
        "prune",
        MODEL,
        "--target-macs",
        "0.6",
        "-o",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    ok(&o);
    let r = read_json(&report);
    let (b, a) = (
        r["summary"]["macs"][0].as_f64().unwrap(),
        r["summary"]["macs"][1].as_f64().unwrap(),
    );
    let within = ((a / b) / 0.6 - 1.0).abs() <= 0.02;
    assert_eq!(r["target_reached"], within);
    assert!(text(&o.stdout).contains("target MACs 60.0% of the original"));
}

#[test]
fn activation_criteria_read_calibration_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let calib = dir.path().join("calib");
    std::fs::create_dir(&calib).unwrap();
    let out = dir.path().join("a.onnx");
    // Without inputs: refused, nothing written.
    let o = shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "--importance",
        "apoz",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("calibration"),
        "{}",
        text(&o.stderr)
    );
    // An empty folder: named in the error.
    let o = shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "--importance",
        "apoz",
        "--calib-dir",
        calib.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no .npy file"),
        "{}",
        text(&o.stderr)
    );
    assert!(!out.exists());
    write_npys(&calib, 2);
    for crit in ["apoz", "mean-act"] {
        ok(&shears(&[
            "prune",
            MODEL,
            "--ratio",
            "0.5",
            "--importance",
            crit,
            "--calib-dir",
            calib.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]));
        ok(&shears(&[
            "prune",
            MODEL,
            "--ratio",
            "0.5",
            "--importance",
            crit,
            "--calib-random",
            "2",
            "-o",
            out.to_str().unwrap(),
        ]));
    }
}

#[test]
fn bad_settings_exit_2_and_name_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.onnx");
    let o = out.to_str().unwrap();
    for (args, says) in [
        (vec!["--ratio", "1.5"], "ratio"),
        (vec!["--target-macs", "0"], "target"),
        (vec!["--ratio", "0.5", "--max-ratio", "0"], "max-ratio"),
        (
            vec!["--ratio", "0.5", "--layer-ratio", "layer1"],
            "--layer-ratio layer1",
        ),
        (
            vec!["--ratio", "0.5", "--layer-ratio", "layer1=2"],
            "layer-ratio",
        ),
        (vec!["--ratio", "0.5", "--round-to", "0"], "round-to"),
        (vec!["--ratio", "0.5", "--steps", "0"], "steps"),
        (vec!["--ratio", "0.5", "--layer", "conv1"], "cannot be used"),
    ] {
        let mut a = vec!["prune", MODEL, "-o", o];
        a.extend(args.iter().copied());
        let r = shears(&a);
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        assert!(
            text(&r.stderr).contains(says),
            "{args:?}: {}",
            text(&r.stderr)
        );
        assert!(!out.exists(), "{args:?} wrote a file");
    }
}

#[test]
fn a_run_that_removes_nothing_exits_2_with_every_group_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.onnx");
    let o = out.to_str().unwrap();
    for (args, says) in [
        // Every group left whole: ignored, or blocked by the graph's input and output.
        (
            vec!["--ratio", "0.5", "--ignore", "*"],
            vec![
                "nothing pruned: of 11 groups, 11 cannot lose a channel",
                "/layer1/layer1.0/conv1/Conv (layer1.0.conv1.weight[0]): ignored (--ignore *)",
                "/conv1/Conv (conv1.weight[1]): blocked (input[1]: 'input' is a graph input)",
            ],
        ),
        // Prunable groups, but the goal gives none a channel to lose.
        (
            vec!["--ratio", "0"],
            vec![
                "of 11 groups, 2 cannot lose a channel, and at ratio 0.0000 none of the other 9 loses one",
                "/layer2/layer2.0/conv1/Conv (layer2.0.conv1.weight[0]): the allocation at ratio 0.0000 removes none of its 8 channels",
                "/fc/Gemm (fc.weight[0]): blocked (output[1]: 'output' is a graph output)",
            ],
        ),
    ] {
        let mut a = vec!["prune", MODEL, "-o", o];
        a.extend(args.iter().copied());
        let r = shears(&a);
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        for s in says {
            assert!(err.contains(s), "{args:?}: lacks {s:?}: {err}");
        }
        assert!(r.stdout.is_empty(), "{args:?}: printed a summary");
        assert!(!out.exists(), "{args:?} wrote a file");
    }
}

#[test]
fn settings_are_chosen_by_the_library_s_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.onnx");
    let prune = |flag: &str, value: &str| {
        shears(&[
            "prune",
            MODEL,
            "--ratio",
            "0.5",
            flag,
            value,
            "-o",
            out.to_str().unwrap(),
        ])
    };
    // An unknown name: a usage error listing the names, in the library's order.
    let o = prune("--importance", "l3");
    assert_eq!(o.status.code(), Some(2));
    let e = text(&o.stderr);
    assert!(
        e.contains("[possible values: l1, l2, bn-scale, fpgm, lamp, random, apoz, mean-act]"),
        "{e}"
    );
    // `--normalize` takes every normalizer but `none` (leaving the flag out means none).
    let o = prune("--normalize=min-max", "--schedule=agp");
    ok(&o);
    let o = shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "--normalize=none",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("[possible values: mean, max, sum, min-max]"),
        "{}",
        text(&o.stderr)
    );
}
