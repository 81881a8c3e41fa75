//! `shears inspect`: a model's inputs and outputs with shapes, its op histogram, and the
//! parameters and MACs of every layer and in total, as an aligned text report or as JSON (schema
//! in `docs/inspect.md`).
//!
//! The report is built once ([`Report`]) and rendered either way, so both carry the same facts.
//! Output is deterministic: layers in topological order, maps with sorted keys.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use shears_onnx::cost::{self, CostReport};
use shears_onnx::shape::{self, format_shape};
use shears_onnx::{tensor, Model};

use super::common::{thousands, ShapeArgs};

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model to describe.
    pub model: PathBuf,
    /// Print JSON for scripts (schema: docs/inspect.md) instead of the text table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub shapes: ShapeArgs,
    /// Also check each weight against this N:M pattern (2:4 is always checked).
    #[arg(long, value_name = "N:M")]
    pub pattern: Option<String>,
}

/// Version tag of the JSON schema; bumped on any incompatible change.
const SCHEMA: &str = "shears-inspect/1";

/// Everything `inspect` reports. Field order is alphabetical so that the JSON keys are sorted.
#[derive(Serialize)]
struct Report {
    external_data: Vec<ExternalFile>,
    file: String,
    file_size: Option<u64>,
    inputs: Vec<TensorInfo>,
    ir_version: i64,
    layers: Vec<Layer>,
    nodes: usize,
    op_histogram: BTreeMap<String, usize>,
    opsets: BTreeMap<String, i64>,
    outputs: Vec<TensorInfo>,
    producer: String,
    schema: &'static str,
    sparsity: Sparsity,
    /// Symbolic input dimensions, counted at [`shape::symbolic::BASE`]; absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    symbolic_dimensions: Vec<SymbolInfo>,
    totals: Totals,
    unknown_shapes: Vec<Blocked>,
}

#[derive(Serialize)]
struct SymbolInfo {
    /// Shapes and MACs are counted with the dimension at this size.
    counted_at: usize,
    /// The `dim_param`; empty when the dimension is unnamed.
    dimension: String,
    /// `input[axis]` of every declaration.
    inputs: Vec<String>,
}

#[derive(Serialize)]
struct ExternalFile {
    location: String,
    size: Option<u64>,
}

#[derive(Serialize)]
struct TensorInfo {
    dtype: String,
    name: String,
    shape: Option<Vec<usize>>,
    /// The shape as the file declares it where an axis is symbolic (`batchx3x32x32`).
    #[serde(skip_serializing_if = "Option::is_none")]
    declared: Option<String>,
}

#[derive(Serialize)]
struct Layer {
    macs: Option<u64>,
    name: String,
    op_type: String,
    output_shape: Option<Vec<usize>>,
    parameters: u64,
    statistics: u64,
}

#[derive(Serialize)]
struct Totals {
    macs: u64,
    macs_complete: bool,
    parameters: u64,
    statistics: u64,
}

/// Zeros of the model's float initializers, and per Conv/ConvTranspose/Gemm/MatMul weight its
/// zeros and the N:M patterns it satisfies (`null`: the reduction size is not a multiple of M).
#[derive(Serialize)]
struct Sparsity {
    elements: u64,
    weights: Vec<WeightZeros>,
    zeros: u64,
}

#[derive(Serialize)]
struct WeightZeros {
    elements: u64,
    layer: String,
    op_type: String,
    patterns: BTreeMap<String, Option<bool>>,
    weight: String,
    zeros: u64,
}

#[derive(Serialize)]
struct Blocked {
    node: String,
    op_type: String,
    reason: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut model = shears_onnx::Model::load(&args.model)?;
    let shapes = args.shapes.parse()?;
    shape::infer_shapes(&mut model, &shapes)
        .with_context(|| format!("{}: shape inference", model.source))?;
    let costs = cost::analyze(&model).with_context(|| format!("{}: costs", model.source))?;
    let mut patterns = vec![shears_sparsity::NmPattern { n: 2, m: 4 }];
    if let Some(p) = &args.pattern {
        let p: shears_sparsity::NmPattern =
            p.parse().map_err(|e| anyhow::anyhow!("--pattern: {e}"))?;
        if !patterns.contains(&p) {
            patterns.push(p);
        }
    }
    let sparsity = sparsity(&model, &patterns)?;
    let report = build(&model, &costs, sparsity);
    if args.json {
        // Through `serde_json::Value`, whose maps keep keys sorted.
        let s = serde_json::to_string_pretty(&serde_json::to_value(&report)?)?;
        super::common::out(s + "\n")?;
    } else {
        super::common::print_text(&render_text(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `op_type`, prefixed with `domain:` outside the default domain.
fn qualified_op(domain: &str, op: &str) -> String {
    if domain.is_empty() || domain == "ai.onnx" {
        op.to_string()
    } else {
        format!("{domain}:{op}")
    }
}

fn sparsity(m: &Model, patterns: &[shears_sparsity::NmPattern]) -> anyhow::Result<Sparsity> {
    let (zeros, elements) =
        shears_sparsity::inspect::model_zeros(m).with_context(|| format!("{}: zeros", m.source))?;
    let weights = shears_sparsity::layer_sparsity(m, patterns)
        .with_context(|| format!("{}: sparsity", m.source))?
        .into_iter()
        .map(|w| WeightZeros {
            elements: w.elements,
            layer: w.layer,
            op_type: w.op_type,
            patterns: w.patterns.into_iter().collect(),
            weight: w.weight,
            zeros: w.zeros,
        })
        .collect();
    Ok(Sparsity {
        elements,
        weights,
        zeros,
    })
}

fn build(m: &Model, costs: &CostReport, sparsity: Sparsity) -> Report {
    let g = &m.graph;
    let tensor_info = |v: shears_onnx::ValueId| {
        let value = g.value(v);
        let symbolic = value
            .declared
            .iter()
            .flatten()
            .any(|d| matches!(d, shears_onnx::Dim::Dynamic(_)));
        TensorInfo {
            dtype: tensor::dtype_name(value.dtype).to_string(),
            name: value.name.clone(),
            shape: value.shape.clone(),
            declared: value
                .declared
                .as_deref()
                .filter(|_| symbolic && !m.symbolic.is_empty())
                .map(shape::format_declared),
        }
    };
    let mut op_histogram = BTreeMap::new();
    for n in &g.nodes {
        *op_histogram
            .entry(qualified_op(&n.domain, &n.op_type))
            .or_insert(0) += 1;
    }
    let opsets = m
        .proto
        .opset_import
        .iter()
        .map(|o| {
            let d = if o.domain.is_empty() {
                "ai.onnx"
            } else {
                &o.domain
            };
            (d.to_string(), o.version)
        })
        .collect();
    let layers = costs
        .nodes
        .iter()
        .filter(|c| c.parameters > 0 || c.statistics > 0 || c.macs != Some(0))
        .map(|c| {
            let n = g.node(c.node);
            Layer {
                macs: c.macs,
                name: n.name.clone(),
                op_type: qualified_op(&n.domain, &n.op_type),
                output_shape: n.output(0).and_then(|v| g.value(v).shape.clone()),
                parameters: c.parameters,
                statistics: c.statistics,
            }
        })
        .collect();
    let unknown_shapes = shape::blockers(m)
        .into_iter()
        .map(|(id, why)| {
            let n = g.node(id);
            Blocked {
                node: n.name.clone(),
                op_type: qualified_op(&n.domain, &n.op_type),
                reason: why.to_string(),
            }
        })
        .collect();
    Report {
        external_data: external_files(m),
        file: m.source.clone(),
        file_size: m.file_size,
        inputs: g.inputs.iter().map(|&v| tensor_info(v)).collect(),
        ir_version: m.proto.ir_version,
        layers,
        nodes: g.nodes.len(),
        op_histogram,
        opsets,
        outputs: g.outputs.iter().map(|&v| tensor_info(v)).collect(),
        producer: format!("{} {}", m.proto.producer_name, m.proto.producer_version)
            .trim()
            .to_string(),
        schema: SCHEMA,
        sparsity,
        symbolic_dimensions: m
            .symbolic
            .symbols
            .iter()
            .map(|s| SymbolInfo {
                counted_at: shape::symbolic::BASE,
                dimension: s.param.clone(),
                inputs: s.uses.iter().map(|(i, a)| format!("{i}[{a}]")).collect(),
            })
            .collect(),
        totals: Totals {
            macs: costs.macs,
            macs_complete: costs.macs_unknown.is_empty(),
            parameters: costs.parameters,
            statistics: costs.statistics,
        },
        unknown_shapes,
    }
}

/// The side files the initializers' external data lives in, in first-use order, with their
/// sizes where they can be read.
fn external_files(m: &Model) -> Vec<ExternalFile> {
    let Some(g) = m.proto.graph.as_ref() else {
        return Vec::new();
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for t in g.initializer.iter().filter(|t| tensor::is_external(t)) {
        let Ok(r) = shears_onnx::external::ExternalRef::of(t) else {
            continue;
        };
        if !seen.insert(r.location.clone()) {
            continue;
        }
        let size = m
            .external
            .resolve(&r.location)
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|md| md.len());
        out.push(ExternalFile {
            location: r.location,
            size,
        });
    }
    out
}

/// `1814073344` as `1.81 G`.
fn human(n: u64) -> String {
    let units = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")];
    for (scale, unit) in units {
        if n as f64 >= scale {
            return format!("{:.2} {unit}", n as f64 / scale);
        }
    }
    n.to_string()
}

fn shape_text(s: &Option<Vec<usize>>) -> String {
    s.as_deref().map_or_else(|| "?".to_string(), format_shape)
}

/// Rows as columns padded to their widest cell; `right[i]` right-aligns column `i`.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>], right: &[bool]) {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &[String]| {
        let mut l = String::from(" ");
        for (i, cell) in cells.iter().enumerate() {
            let pad = width[i] - cell.chars().count();
            l.push(' ');
            if right[i] {
                l.push_str(&" ".repeat(pad));
                l.push_str(cell);
            } else {
                l.push_str(cell);
                l.push_str(&" ".repeat(pad));
            }
            l.push(' ');
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    line(out, &header);
    for r in rows {
        line(out, r);
    }
}

fn render_text(r: &Report) -> String {
    let mut o = String::new();
    let opsets: Vec<String> = r.opsets.iter().map(|(d, v)| format!("{d} {v}")).collect();
    let mut facts = vec![
        ("model", r.file.clone()),
        (
            "file size",
            r.file_size
                .map_or_else(|| "-".into(), |s| format!("{} bytes", thousands(s))),
        ),
    ];
    for e in &r.external_data {
        let size = e.size.map_or_else(
            || "unreadable".into(),
            |s| format!("{} bytes", thousands(s)),
        );
        facts.push(("external data", format!("{} ({size})", e.location)));
    }
    facts.extend([
        ("producer", r.producer.clone()),
        ("ir version", r.ir_version.to_string()),
        ("opsets", opsets.join(", ")),
        ("nodes", r.nodes.to_string()),
    ]);
    for (k, v) in facts {
        let _ = writeln!(o, "{k:<14}{v}");
    }

    for (title, list) in [("inputs", &r.inputs), ("outputs", &r.outputs)] {
        let _ = writeln!(o, "\n{title}");
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|t| {
                let shape = t.declared.clone().unwrap_or_else(|| shape_text(&t.shape));
                vec![t.name.clone(), t.dtype.clone(), shape]
            })
            .collect();
        table(
            &mut o,
            &["name", "type", "shape"],
            &rows,
            &[false, false, false],
        );
    }

    let _ = writeln!(o, "\noperators");
    let mut ops: Vec<(&String, &usize)> = r.op_histogram.iter().collect();
    ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let rows: Vec<Vec<String>> = ops
        .iter()
        .map(|(op, n)| vec![op.to_string(), n.to_string()])
        .collect();
    table(&mut o, &["op", "count"], &rows, &[false, true]);

    let _ = writeln!(o, "\nlayers");
    let mut rows: Vec<Vec<String>> = r
        .layers
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.op_type.clone(),
                shape_text(&l.output_shape),
                thousands(l.parameters),
                l.macs.map_or_else(|| "?".into(), thousands),
            ]
        })
        .collect();
    rows.push(vec![
        "total".into(),
        String::new(),
        String::new(),
        thousands(r.totals.parameters),
        thousands(r.totals.macs),
    ]);
    table(
        &mut o,
        &["node", "op", "output", "parameters", "MACs"],
        &rows,
        &[false, false, false, true, true],
    );

    let _ = writeln!(o);
    let stats = if r.totals.statistics > 0 {
        format!(
            ", not counting {} BatchNormalization running-statistic values",
            thousands(r.totals.statistics)
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "{:<14}{} ({}){stats}",
        "parameters",
        thousands(r.totals.parameters),
        human(r.totals.parameters)
    );
    let incomplete = if r.totals.macs_complete {
        String::new()
    } else {
        ", incomplete: some layer shapes are unknown".into()
    };
    let batch_only = !r.symbolic_dimensions.is_empty()
        && r.symbolic_dimensions
            .iter()
            .all(|s| s.inputs.iter().all(|i| i.ends_with("[0]")));
    let _ = writeln!(
        o,
        "{:<14}{} ({}{incomplete}){}",
        "MACs",
        thousands(r.totals.macs),
        human(r.totals.macs),
        if batch_only { " per batch element" } else { "" }
    );
    if !r.symbolic_dimensions.is_empty() {
        let names: Vec<String> = r
            .symbolic_dimensions
            .iter()
            .map(|s| match s.inputs.first() {
                Some(i) if s.dimension.is_empty() => format!("unnamed {i}"),
                _ => format!("'{}'", s.dimension),
            })
            .collect();
        let per = if batch_only {
            "MACs and shapes are per batch element".to_string()
        } else {
            format!(
                "MACs and shapes are counted with {} at {}",
                names.join(", "),
                shape::symbolic::BASE
            )
        };
        let _ = writeln!(
            o,
            "note: symbolic input dimension{} {}: {per}; --input-shape sets a size",
            if names.len() > 1 { "s" } else { "" },
            names.join(", ")
        );
    }
    render_sparsity(&mut o, &r.sparsity);
    for b in &r.unknown_shapes {
        let _ = writeln!(
            o,
            "note: shapes unknown from node '{}' ({}): {}",
            b.node, b.op_type, b.reason
        );
    }
    o
}

/// The zeros line, and a table of the weights that hold zeros (every weight's N:M verdicts).
fn render_sparsity(o: &mut String, s: &Sparsity) {
    let pct = |z: u64, n: u64| format!("{:.2}%", 100.0 * z as f64 / n.max(1) as f64);
    let _ = writeln!(
        o,
        "{:<14}{} of {} float parameters ({})",
        "zeros",
        thousands(s.zeros),
        thousands(s.elements),
        pct(s.zeros, s.elements)
    );
    if s.zeros == 0 || s.weights.is_empty() {
        return;
    }
    let names: Vec<&String> = s.weights[0].patterns.keys().collect();
    let mut header = vec!["weight", "op", "elements", "sparsity"];
    header.extend(names.iter().map(|n| n.as_str()));
    let rows: Vec<Vec<String>> = s
        .weights
        .iter()
        .map(|w| {
            let mut row = vec![
                w.weight.clone(),
                w.op_type.clone(),
                thousands(w.elements),
                pct(w.zeros, w.elements),
            ];
            row.extend(w.patterns.values().map(|v| match v {
                None => "-".into(),
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
            }));
            row
        })
        .collect();
    let _ = writeln!(o, "\nsparsity");
    let mut right = vec![false, false, true, true];
    right.extend(names.iter().map(|_| false));
    table(o, &header, &rows, &right);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        let cases = [
            (0, "0", "0"),
            (999, "999", "999"),
            (1000, "1,000", "1.00 K"),
            (11_689_512, "11,689,512", "11.69 M"),
            (1_814_073_344, "1,814,073,344", "1.81 G"),
        ];
        for (n, t, h) in cases {
            assert_eq!(thousands(n), t);
            assert_eq!(human(n), h);
        }
    }
}
