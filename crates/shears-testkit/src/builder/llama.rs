//! A Llama-shaped decoder written straight to disk with external data, at any size: the
//! generator of the multi-gigabyte models the bounded-memory bench (`benches/big_model.rs`)
//! measures, and of small copies for tests.
//!
//! The graph is built with [`ModelBuilder`]; every weight is an external-data initializer whose
//! payload is generated and appended to the side file the moment the tensor is declared, so the
//! generator holds one tensor's bytes at most, never the model (a 1.6 B-parameter model is
//! written with a few MB of memory).
//!
//! Per layer: RMSNorm (`x * x`, ReduceMean, Add eps, Sqrt, Div, Mul by the scale), q/k/v
//! MatMuls, the heads split by Reshape + Transpose, grouped-query attention with `repeat_kv` as
//! Unsqueeze + Expand + Reshape, scores MatMul, Div by √d, Softmax, context MatMul, the heads
//! merged back, the output projection and a residual Add; then RMSNorm and the SwiGLU MLP
//! (`gate`, Sigmoid, Mul, `up`, Mul, `down`) and a residual Add. An embedding Gather in front, a
//! final RMSNorm and the LM head behind. No rotary embedding: it carries no weights, and the
//! bench is about weight bytes.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use half::f16;

use super::{prng::Rng, ModelBuilder};
use shears_onnx::proto::tensor_proto::{DataLocation, DataType};
use shears_onnx::proto::{StringStringEntryProto, TensorProto};

/// The shape of a generated decoder. Invariants: `hidden = heads * head_dim`,
/// `heads % kv_heads == 0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlamaConfig {
    pub layers: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub vocab: usize,
    /// The static sequence length of the `input_ids` input (batch 1).
    pub seq: usize,
    /// Weights in float16 (`true`) or float32.
    pub f16: bool,
}

impl LlamaConfig {
    /// TinyLlama-1.1B's widths (hidden 2048, MLP 5632, 32 heads over 4 KV heads, vocab 32000)
    /// with 34 layers: 1.63 B parameters, 3.26 GB of float16 weights.
    pub fn llm_1_6b() -> Self {
        LlamaConfig {
            layers: 34,
            hidden: 2048,
            intermediate: 5632,
            heads: 32,
            kv_heads: 4,
            vocab: 32000,
            seq: 16,
            f16: true,
        }
    }

    /// A small model with the same structure, for tests.
    pub fn tiny() -> Self {
        LlamaConfig {
            layers: 2,
            hidden: 32,
            intermediate: 48,
            heads: 4,
            kv_heads: 2,
            vocab: 64,
            seq: 5,
            f16: false,
        }
    }

    /// The number of weights the model has.
    pub fn parameters(&self) -> u64 {
        let (h, i, v) = (
            self.hidden as u64,
            self.intermediate as u64,
            self.vocab as u64,
        );
        let kv = (self.kv_heads * self.head_dim()) as u64;
        let layer = 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h;
        self.layers as u64 * layer + 2 * v * h + h
    }

    fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }
}

/// Where [`write_llama`] put the model.
#[derive(Clone, Debug)]
pub struct WrittenModel {
    pub model: PathBuf,
    pub data: PathBuf,
    /// Bytes of the side file.
    pub data_bytes: u64,
}

/// Writes the decoder `cfg` describes to `path`, its weights to `<path>.data` (64-byte aligned
/// payloads), streaming each weight to the side file as it is declared.
pub fn write_llama(cfg: &LlamaConfig, path: &Path) -> std::io::Result<WrittenModel> {
    assert!(
        cfg.hidden.is_multiple_of(cfg.heads) && cfg.heads.is_multiple_of(cfg.kv_heads),
        "llama: bad head counts in {cfg:?}"
    );
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| std::io::Error::other("the model path needs a UTF-8 file name"))?;
    let location = format!("{name}.data");
    let data_path = path.with_file_name(&location);
    let mut g = Gen {
        b: ModelBuilder::new(17).named("llama"),
        out: BufWriter::with_capacity(1 << 22, std::fs::File::create(&data_path)?),
        location,
        cursor: 0,
        cfg: cfg.clone(),
        dtype: if cfg.f16 {
            DataType::Float16
        } else {
            DataType::Float
        } as i32,
    };
    let y = g.decoder()?;
    g.b.output(&y);
    let Gen { b, out, cursor, .. } = g;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let proto = b.build();
    std::fs::write(path, prost::Message::encode_to_vec(&proto))?;
    Ok(WrittenModel {
        model: path.to_path_buf(),
        data: data_path,
        data_bytes: cursor,
    })
}

struct Gen {
    b: ModelBuilder,
    out: BufWriter<std::fs::File>,
    location: String,
    cursor: u64,
    cfg: LlamaConfig,
    dtype: i32,
}

impl Gen {
    fn decoder(&mut self) -> std::io::Result<String> {
        let c = self.cfg.clone();
        let (s, h) = (c.seq as i64, c.hidden as i64);
        let ids = self
            .b
            .input_typed("input_ids", &[1, s], DataType::Int64 as i32);
        let emb = self.weight("model.embed_tokens.weight", &[c.vocab, c.hidden], 0.02)?;
        let outs = self.b.node_named(
            "/model/embed_tokens/Gather",
            "Gather",
            &[&emb, &ids],
            1,
            vec![],
        );
        self.typed(&outs[0], &[1, s, h]);
        let mut x = outs[0].clone();
        for l in 0..c.layers {
            x = self.layer(&x, l)?;
        }
        let x = self.rms_norm(&x, "model.norm")?;
        let head = self.weight("lm_head.weight", &[c.hidden, c.vocab], 0.02)?;
        let b = &mut self.b;
        let out = b.layer_op(
            "lm_head",
            "MatMul",
            &[&x, &head],
            vec![],
            vec![1, s, c.vocab as i64],
        );
        Ok(out)
    }

    fn layer(&mut self, x: &str, l: usize) -> std::io::Result<String> {
        let c = self.cfg.clone();
        let (s, h) = (c.seq as i64, c.hidden as i64);
        let (nh, nkv, d) = (c.heads as i64, c.kv_heads as i64, c.head_dim() as i64);
        let p = format!("model.layers.{l}");
        self.b.set_scope(format!("{p}/self_attn"));
        let n = self.rms_norm(x, &format!("{p}.input_layernorm"))?;
        let q = self.linear(&n, &format!("{p}.self_attn.q_proj"), c.hidden)?;
        let k = self.linear(&n, &format!("{p}.self_attn.k_proj"), (nkv * d) as usize)?;
        let v = self.linear(&n, &format!("{p}.self_attn.v_proj"), (nkv * d) as usize)?;
        let b = &mut self.b;
        let q = b.reshape(&q, &[1, s, nh, d]);
        let q = b.transpose(&q, &[0, 2, 1, 3]);
        let k = b.reshape(&k, &[1, s, nkv, d]);
        let k = b.transpose(&k, &[0, 2, 3, 1]);
        let v = b.reshape(&v, &[1, s, nkv, d]);
        let v = b.transpose(&v, &[0, 2, 1, 3]);
        let k = repeat_kv(b, &k, nh / nkv);
        let v = repeat_kv(b, &v, nh / nkv);
        let att = b.matmul(&q, &k);
        let scale = self.scalar("attn_scale", (d as f32).sqrt())?;
        let b = &mut self.b;
        let att = b.div(&att, &scale);
        let att = b.softmax(&att, -1);
        let o = b.matmul(&att, &v);
        let o = b.transpose(&o, &[0, 2, 1, 3]);
        let o = b.reshape(&o, &[1, s, h]);
        let o = self.linear(&o, &format!("{p}.self_attn.o_proj"), c.hidden)?;
        let r = self.b.add(x, &o);
        self.b.set_scope(format!("{p}/mlp"));
        let n = self.rms_norm(&r, &format!("{p}.post_attention_layernorm"))?;
        let gate = self.linear(&n, &format!("{p}.mlp.gate_proj"), c.intermediate)?;
        let up = self.linear(&n, &format!("{p}.mlp.up_proj"), c.intermediate)?;
        let b = &mut self.b;
        let sig = b.sigmoid(&gate);
        let act = b.mul(&gate, &sig);
        let m = b.mul(&act, &up);
        let down = self.linear(&m, &format!("{p}.mlp.down_proj"), c.hidden)?;
        let y = self.b.add(&r, &down);
        self.b.set_scope("");
        Ok(y)
    }

    /// RMSNorm as exporters decompose it; `{name}.weight` is the scale.
    fn rms_norm(&mut self, x: &str, name: &str) -> std::io::Result<String> {
        let eps = self.scalar("rms_eps", 1e-5)?;
        let w = self.weight(&format!("{name}.weight"), &[self.cfg.hidden], 0.0)?;
        let b = &mut self.b;
        let sq = b.mul(x, x);
        let mean = b.reduce_mean(&sq, &[-1], true);
        let var = b.add(&mean, &eps);
        let r = b.sqrt(&var);
        let y = b.div(x, &r);
        Ok(b.mul(&y, &w))
    }

    /// MatMul by `{name}.weight` `[in, out]`.
    fn linear(&mut self, x: &str, name: &str, out: usize) -> std::io::Result<String> {
        let mut shape = self.b.shape_of(x).to_vec();
        let k = *shape.last().unwrap_or(&0) as usize;
        let w = self.weight(&format!("{name}.weight"), &[k, out], 0.0)?;
        if let Some(last) = shape.last_mut() {
            *last = out as i64;
        }
        Ok(self.b.layer_op(name, "MatMul", &[x, &w], vec![], shape))
    }

    /// Declares a scalar of the model's float type (inline).
    fn scalar(&mut self, base: &str, v: f32) -> std::io::Result<String> {
        let name = self.b.unique_value_name(base);
        let raw = if self.cfg.f16 {
            f16::from_f32(v).to_le_bytes().to_vec()
        } else {
            v.to_le_bytes().to_vec()
        };
        Ok(self.b.initializer(TensorProto {
            name,
            data_type: self.dtype,
            raw_data: Bytes::from(raw),
            ..Default::default()
        }))
    }

    /// Declares the external initializer `name` and appends its payload to the side file:
    /// uniform in `±bound` (`bound` 0: `±1/sqrt(dims[0])`, the fan-in of a `[in, out]` weight);
    /// a 1-D weight (a norm scale) is uniform in `[0.5, 1.5)`.
    fn weight(&mut self, name: &str, dims: &[usize], bound: f32) -> std::io::Result<String> {
        let count: usize = dims.iter().product();
        let elem = if self.cfg.f16 { 2 } else { 4 };
        let offset = self.cursor.next_multiple_of(64);
        let pad = (offset - self.cursor) as usize;
        self.out.write_all(&[0u8; 64][..pad])?;
        let (lo, hi) = if dims.len() == 1 {
            (0.5, 1.5)
        } else {
            let b = if bound > 0.0 {
                bound
            } else {
                1.0 / (dims[0] as f32).sqrt()
            };
            (-b, b)
        };
        let mut rng = Rng::for_tensor(0x11a3a, name);
        let mut chunk = Vec::with_capacity(1 << 16);
        let mut left = count;
        while left > 0 {
            let n = left.min((1 << 16) / elem);
            chunk.clear();
            for _ in 0..n {
                let x = rng.uniform(lo, hi);
                if self.cfg.f16 {
                    chunk.extend_from_slice(&f16::from_f32(x).to_le_bytes());
                } else {
                    chunk.extend_from_slice(&x.to_le_bytes());
                }
            }
            self.out.write_all(&chunk)?;
            left -= n;
        }
        let len = (count * elem) as u64;
        self.cursor = offset + len;
        let entry = |k: &str, v: String| StringStringEntryProto::new(k, v);
        Ok(self.b.initializer(TensorProto {
            name: name.to_string(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: self.dtype,
            data_location: DataLocation::External as i32,
            external_data: vec![
                entry("location", self.location.clone()),
                entry("offset", offset.to_string()),
                entry("length", len.to_string()),
            ],
            ..Default::default()
        }))
    }

    fn typed(&mut self, v: &str, shape: &[i64]) {
        self.b.set_shape(v, shape);
        self.b.set_dtype(v, self.dtype);
    }
}

/// `repeat_kv` as Hugging Face exports it: `[1, kv, a, b]` → Unsqueeze → Expand to
/// `[1, kv, n_rep, a, b]` → Reshape `[1, kv·n_rep, a, b]`.
fn repeat_kv(b: &mut ModelBuilder, x: &str, n_rep: i64) -> String {
    let s = b.shape_of(x).to_vec();
    let u = b.unsqueeze(x, &[2]);
    let target = [s[0], s[1], n_rep, s[2], s[3]];
    let node = b.auto_node_name("Expand");
    let shape = b.vec_i64(&format!("{node}_shape"), &target);
    let e = b.emit(node, "Expand", &[&u, &shape], vec![], target.to_vec());
    b.reshape(&e, &[s[0], s[1] * n_rep, s[2], s[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_count_matches_the_written_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LlamaConfig::tiny();
        let w = write_llama(&cfg, &dir.path().join("tiny.onnx")).unwrap();
        let m = shears_onnx::Model::load(&w.model).unwrap();
        let g = m.proto.graph.as_ref().unwrap();
        let weights: u64 = g
            .initializer
            .iter()
            .filter(|t| shears_onnx::tensor::is_external(t))
            .map(|t| t.dims.iter().product::<i64>() as u64)
            .sum();
        assert_eq!(weights, cfg.parameters());
        assert_eq!(
            std::fs::metadata(&w.data).unwrap().len(),
            w.data_bytes,
            "the side file ends at the last payload"
        );
        assert!(LlamaConfig::llm_1_6b().parameters() > 1_500_000_000);
    }
}
