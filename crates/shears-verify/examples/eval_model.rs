//! Evaluates a model on seeded random inputs and prints each output's shape, its largest
//! absolute value and the time taken; with `--npy DIR` also writes the inputs and outputs as
//! `.npy` files (for comparing with another runtime).
//!
//! `cargo run --release -p shears-verify --example eval_model -- MODEL [--seed S] [--runs N] [--npy DIR] [NAME=1,3,224,224]...`

use std::path::PathBuf;
use std::time::Instant;

use shears_verify::{random_inputs, Evaluator, Rng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args.next().ok_or("usage: eval_model MODEL [options]")?;
    let (mut seed, mut runs, mut npy, mut specs) = (0u64, 1usize, None::<PathBuf>, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => seed = args.next().ok_or("--seed needs a value")?.parse()?,
            "--runs" => runs = args.next().ok_or("--runs needs a value")?.parse()?,
            "--npy" => npy = Some(args.next().ok_or("--npy needs a folder")?.into()),
            _ => specs.push(a),
        }
    }
    let t = Instant::now();
    let m = shears_onnx::Model::load(&model)?;
    let eval = Evaluator::new(&m)?;
    println!("prepared {model} in {:.3}s", t.elapsed().as_secs_f64());
    let shapes = shears_onnx::InputShapes::parse(&specs)?.resolve(&m.graph)?;
    let x = random_inputs(&m, &shapes, &mut Rng::new(seed))?;
    let mut outputs = Vec::new();
    for run in 0..runs.max(1) {
        let t = Instant::now();
        outputs = eval.eval(&x)?;
        println!("run {run}: {:.3}s", t.elapsed().as_secs_f64());
    }
    for (name, y) in &outputs {
        let max = y
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_dtype(candle_core::DType::F64)?;
        println!(
            "{name}: {:?}, max |v| {:.4}",
            y.dims(),
            max.to_scalar::<f64>()?
        );
    }
    if let Some(dir) = npy {
        std::fs::create_dir_all(&dir)?;
        for (i, (_, t)) in x.iter().enumerate() {
            t.write_npy(dir.join(format!("input_{i}.npy")))?;
        }
        for (i, (_, t)) in outputs.iter().enumerate() {
            t.write_npy(dir.join(format!("output_{i}.npy")))?;
        }
    }
    Ok(())
}
