//! What several commands share: loading a model with static shapes, and its dependency graph.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use shears_graph::DependencyGraph;
use shears_onnx::{InputShapes, Model};

/// Set once by `main` from the global `--quiet` flag.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Records `--quiet` for the whole run.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `--quiet` was given: text reports and progress bars are not drawn, while output a
/// `--json` flag asks for, errors (stderr) and exit statuses are unchanged.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Prints a command's text report on stdout through [`out`], unless `--quiet`.
pub fn print_text(text: &str) -> anyhow::Result<()> {
    if quiet() {
        return Ok(());
    }
    out(text)
}

/// `--input-shape` arguments: the one definition, flattened into every command that needs
/// static shapes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ShapeArgs {
    /// Static shape of a graph input with dynamic dimensions: NAME=1,3,224,224 (repeatable).
    /// A fixed dimension the model declares cannot be changed.
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shape: Vec<String>,
}

/// What a whole head is under grouped-query attention (`--gqa`); without it both are one
/// attention head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum GqaUnit {
    /// A key/value head with the query heads reading it.
    #[default]
    Kv,
    /// One query head of every group, every key/value head kept.
    Query,
}

impl GqaUnit {
    pub fn granularity(self) -> shears_graph::Granularity {
        match self {
            GqaUnit::Kv => shears_graph::Granularity::Heads,
            GqaUnit::Query => shears_graph::Granularity::QueryHeads,
        }
    }
}

impl ShapeArgs {
    pub fn parse(&self) -> anyhow::Result<InputShapes> {
        Ok(InputShapes::parse(&self.input_shape)?)
    }
}

/// Calibration inputs and the seed of everything random: the one definition, flattened into
/// `prune` and `sparsify`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CalibArgs {
    /// Calibrate on N seeded random inputs (activation criteria, recovery).
    #[arg(long, value_name = "N", conflicts_with = "calib_dir")]
    pub calib_random: Option<usize>,
    /// Calibrate on the .npy inputs in DIR (activation criteria, recovery).
    #[arg(long, value_name = "DIR")]
    pub calib_dir: Option<std::path::PathBuf>,
    /// Seed of random calibration inputs and of a random ranking.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl CalibArgs {
    /// The calibration inputs the flags name, if any.
    pub fn calibration(&self) -> Option<shears_pruner::Calibration> {
        match (self.calib_random, &self.calib_dir) {
            (Some(samples), None) => Some(shears_pruner::Calibration::Random {
                samples,
                seed: self.seed,
            }),
            (None, Some(dir)) => Some(shears_pruner::Calibration::Dir(dir.clone())),
            _ => None,
        }
    }
}

/// Loads `path` and infers static shapes.
pub fn load_with_shapes(path: &Path, shapes: &ShapeArgs) -> anyhow::Result<Model> {
    let inputs = shapes.parse()?;
    let mut model = Model::load(path)?;
    shears_onnx::shape::infer_shapes(&mut model, &inputs)
        .with_context(|| format!("{}: shape inference", path.display()))?;
    Ok(model)
}

/// Loads `path`, infers shapes and builds its dependency graph.
pub fn load_graph(path: &Path, shapes: &ShapeArgs) -> anyhow::Result<(Model, DependencyGraph)> {
    let model = load_with_shapes(path, shapes)?;
    let graph = DependencyGraph::build(&model);
    Ok((model, graph))
}

/// The longest `a..b` range `--idxs` accepts.
const MAX_RANGE: usize = 1 << 24;

/// Parses `2,6,9` (ranges `0..4` allowed) into indices.
pub fn parse_indices(s: &str) -> anyhow::Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once("..") {
            let a: usize = a
                .parse()
                .with_context(|| format!("bad index range '{part}'"))?;
            let b: usize = b
                .parse()
                .with_context(|| format!("bad index range '{part}'"))?;
            anyhow::ensure!(a < b, "empty index range '{part}'");
            // No layer is this wide; refuse before allocating the range.
            anyhow::ensure!(
                b - a <= MAX_RANGE,
                "index range '{part}' is longer than {MAX_RANGE}"
            );
            out.extend(a..b);
        } else {
            out.push(
                part.parse()
                    .with_context(|| format!("bad index '{part}'"))?,
            );
        }
    }
    Ok(out)
}

/// Writes `text` to stdout, returning write errors (a closed pipe among them) instead of
/// panicking as `print!` does; `main` ends quietly on a closed pipe ([`is_closed_pipe`]).
pub fn out(text: impl AsRef<str>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_ref().as_bytes())?;
    o.flush()?;
    Ok(())
}

/// Whether `e` comes from writing to a closed stdout (`shears ... | head -1`): not the user's
/// mistake, so no message and no failure status.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A value parser for a library setting chosen by name: its names (less `except`) are the
/// possible values.
pub fn named<T: shears_pruner::named::Named + Clone + Send + Sync>(
    except: &'static [&'static str],
) -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(
        T::ALL
            .iter()
            .map(|v| v.name())
            .filter(move |n| !except.contains(n)),
    )
    .try_map(|s| T::from_name(&s).ok_or("not a possible value"))
}

/// How a column of [`table`] lines up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
    /// Not padded (a trailing free-text column).
    Raw,
}

/// Rows under `head`, columns two spaces apart, each padded to its widest cell as `align`
/// says: one line per row, the header first.
pub fn table<const N: usize>(
    head: [&str; N],
    rows: &[[String; N]],
    align: [Align; N],
) -> Vec<String> {
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; N]| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(align)
            .map(|((c, &w), a)| match a {
                Align::Left => format!("{c:<w$}"),
                Align::Right => format!("{c:>w$}"),
                Align::Raw => c.to_string(),
            })
            .collect();
        parts.join("  ")
    };
    std::iter::once(line(head))
        .chain(
            rows.iter()
                .map(|r| line(std::array::from_fn(|i| r[i].as_str()))),
        )
        .collect()
}
