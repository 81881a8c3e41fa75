//! `shears inspect`: placeholder until the inspect command lands.
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model to describe.
    pub model: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let m = shears_onnx::Model::load(&args.model)?;
    println!("{}: {} nodes", m.source, m.graph.nodes.len());
    Ok(ExitCode::SUCCESS)
}
