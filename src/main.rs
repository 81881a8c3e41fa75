//! `shears`: the command-line interface. Each subcommand lives in its own module under `cli/`
//! with an `Args` struct and a `run` function; this file only dispatches.
//!
//! Exit status: 0 on success, 1 when a check the command performs fails (for example `verify`
//! finding different output shapes), 2 on bad input or any other error.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "shears",
    version,
    about = "Dependency-graph structural pruning for ONNX models"
)]
struct Cli {
    /// Print no text report on stdout (output asked for with --json still is); errors still
    /// go to stderr and the exit status is unchanged.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inputs, outputs, op histogram, parameters and MACs of a model.
    Inspect(cli::inspect::Args),
    /// Evaluate two models on the same random inputs and compare their outputs.
    Verify(cli::verify::Args),
    /// The pruning plan for removing output channels of one layer.
    Plan(cli::plan::Args),
    /// Every group of coupled channels, prunable or blocked (and by what).
    Groups(cli::groups::Args),
    /// Compare two plans (saved JSON, or two models planned with the same request).
    Diff(cli::diff::Args),
    /// Write a physically smaller model: channels chosen by importance, or given plans.
    Prune(cli::prune::Args),
    /// Physically remove the channels a mask-based pruner left dead (zero or foldable constant).
    Compact(cli::compact::Args),
    /// Zero individual weights (unstructured, by threshold, or N:M such as 2:4).
    Sparsify(cli::sparsify::Args),
    /// Accuracy on a folder of .npy inputs and labels, and fidelity to a reference model.
    Eval(cli::eval::Args),
    /// Print a shell completion script, e.g. `shears completions bash > ~/.local/share/bash-completion/completions/shears`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::common::set_quiet(cli.quiet);
    let result = match cli.command {
        Command::Inspect(args) => cli::inspect::run(args),
        Command::Verify(args) => cli::verify::run(args),
        Command::Plan(args) => cli::plan::run(args),
        Command::Groups(args) => cli::groups::run(args),
        Command::Diff(args) => cli::diff::run(args),
        Command::Prune(args) => cli::prune::run(args),
        Command::Compact(args) => cli::compact::run(args),
        Command::Sparsify(args) => cli::sparsify::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "shears", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        // A closed stdout (`shears ... | head`) ends the command quietly.
        Err(e) if cli::common::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
