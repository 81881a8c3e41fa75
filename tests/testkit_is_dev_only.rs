//! Test tooling stays out of production: no library crate and not the `shears` package depends
//! (directly or through another workspace crate) on `shears-testkit`, and the executor does not
//! link the evaluator. Read from the manifests' `[dependencies]` sections, so a dev-dependency
//! never counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The names listed in a manifest's `[dependencies]` section.
fn normal_dependencies(manifest: &Path) -> BTreeSet<String> {
    dependencies_in(manifest, "[dependencies]")
}

/// The names listed in a manifest's `section` (`[dependencies]`, `[dev-dependencies]`).
fn dependencies_in(manifest: &Path, section: &str) -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let mut in_deps = false;
    let mut deps = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == section;
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            deps.insert(name.to_string());
        }
    }
    deps
}

/// Every workspace package's normal dependencies, by package name.
fn workspace() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut packages = BTreeMap::new();
    packages.insert(
        "shears".to_string(),
        normal_dependencies(&root.join("Cargo.toml")),
    );
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        packages.insert(name, normal_dependencies(&dir.join("Cargo.toml")));
    }
    packages
}

/// `package`'s normal dependencies, transitively through workspace packages.
fn closure(packages: &BTreeMap<String, BTreeSet<String>>, package: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![package.to_string()];
    while let Some(p) = todo.pop() {
        for d in packages.get(&p).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn no_package_but_the_testkit_depends_on_the_testkit() {
    let packages = workspace();
    assert!(packages.contains_key("shears-testkit"));
    assert!(packages.len() >= 9, "{:?}", packages.keys());
    for name in packages.keys().filter(|n| *n != "shears-testkit") {
        let deps = closure(&packages, name);
        assert!(
            !deps.contains("shears-testkit"),
            "{name} depends on shears-testkit: {deps:?}"
        );
    }
}

#[test]
fn the_executor_does_not_link_the_evaluator() {
    let packages = workspace();
    let deps = closure(&packages, "shears-exec");
    assert!(deps.contains("shears-plan"), "{deps:?}");
    for evaluator in ["shears-verify", "candle-core", "rayon"] {
        assert!(!deps.contains(evaluator), "shears-exec links {evaluator}");
    }
}

#[test]
fn the_executor_is_tested_without_the_evaluator_too() {
    // Its integration tests need the exactness check, so they live in the testkit's package:
    // `cargo tree -p shears-exec`, dev-dependencies included, shows no candle-core.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/shears-exec/Cargo.toml");
    let dev = dependencies_in(&manifest, "[dev-dependencies]");
    for tool in ["shears-testkit", "shears-verify"] {
        assert!(!dev.contains(tool), "shears-exec's tests use {tool}");
    }
}
