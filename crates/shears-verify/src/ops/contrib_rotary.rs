//! onnxruntime's rotary ops (domain `com.microsoft`; docs/fused.md), as its CPU kernels compute
//! them (checked against onnxruntime 1.32):
//! - `RotaryEmbedding(input, position_ids, cos_cache, sin_cache)`: each head of `input`
//!   (`[B, S, N·d]` or `[B, N, S, d]`) has its first `r = 2·cache width` positions rotated by
//!   the cache row of its position: pairs `(j, j + r/2)` (or `(2j, 2j + 1)` when `interleaved`).
//! - `GroupQueryAttention` in its prefill form (no past, every sequence full): optional rotary
//!   of q and k (`do_rotary`, positions `0..S`), then causal attention, query head `h` reading
//!   key/value head `h / (N / Nkv)`; `present_key`/`present_value` are the (rotated) keys and
//!   the values, `[B, Nkv, S, d]`. Decoding with past state, padding, local windows, softcap
//!   and smooth softmax are refused.

use std::collections::HashMap;

use candle_core::Tensor;

use super::contrib::{attend, attention_scale, float_input, split_heads};
use super::{bail, floats, opt_input, tensor_f32, with_f32, Ctx, OpFn, OpResult};

pub(crate) fn register_ms(t: &mut HashMap<&'static str, OpFn>) {
    t.insert("RotaryEmbedding", rotary_embedding);
    t.insert("GroupQueryAttention", group_query_attention);
}

/// The cos and sin caches `[positions, r/2]`, checked against each other.
struct Caches {
    cos: Vec<f32>,
    sin: Vec<f32>,
    half: usize,
    interleaved: bool,
}

impl Caches {
    fn read(inputs: &[Option<Tensor>], slot: usize, interleaved: bool) -> OpResult<Caches> {
        let (Some(c), Some(s)) = (opt_input(inputs, slot), opt_input(inputs, slot + 1)) else {
            bail!(
                "cos_cache and sin_cache (inputs {slot}, {}) are needed",
                slot + 1
            );
        };
        let (&[_, half], true) = (c.dims(), c.dims() == s.dims()) else {
            bail!(
                "cos {:?} and sin {:?} caches are not one [positions, r/2] shape",
                c.dims(),
                s.dims()
            );
        };
        Ok(Caches {
            cos: floats(c)?,
            sin: floats(s)?,
            half,
            interleaved,
        })
    }

    /// Rotates the first `2·half` values of `row` by the cache row `pos`.
    fn rotate(&self, row: &mut [f32], pos: usize) -> OpResult<()> {
        let h = self.half;
        if (pos + 1) * h > self.cos.len() || 2 * h > row.len() {
            bail!(
                "position {pos} or rotary width {} is outside the caches or the head",
                2 * h
            );
        }
        let (cos, sin) = (&self.cos[pos * h..][..h], &self.sin[pos * h..][..h]);
        for j in 0..h {
            let (a, b) = if self.interleaved {
                (2 * j, 2 * j + 1)
            } else {
                (j, j + h)
            };
            let (x, y) = (row[a], row[b]);
            row[a] = x * cos[j] - y * sin[j];
            row[b] = x * sin[j] + y * cos[j];
        }
        Ok(())
    }

    /// `x` `[B, S, H·d]` with every head's row at `(b, s)` rotated by `pos(b, s)`.
    fn apply(
        &self,
        x: &Tensor,
        heads: usize,
        pos: impl Fn(usize, usize) -> usize,
    ) -> OpResult<Tensor> {
        let &[b, s, w] = x.dims() else {
            bail!("{:?} is not [batch, sequence, width]", x.dims());
        };
        let d = w / heads.max(1);
        let mut data = with_f32(x, <[f32]>::to_vec)?;
        for bi in 0..b {
            for si in 0..s {
                for h in 0..heads {
                    self.rotate(
                        &mut data[((bi * s + si) * heads + h) * d..][..d],
                        pos(bi, si),
                    )?;
                }
            }
        }
        tensor_f32(data, x.dims())
    }
}

fn rotary_embedding(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = float_input(inputs, 0)?;
    if c.attr_i("is_packed_batching", 0) != 0 {
        bail!("is_packed_batching is not supported");
    }
    let caches = Caches::read(inputs, 2, c.attr_i("interleaved", 0) != 0)?;
    // [B, N, S, d] is rotated as [B, S, N, d] and turned back.
    let four = x.rank() == 4;
    let x3 = if four {
        let &[b, n, s, d] = x.dims() else {
            unreachable!()
        };
        x.transpose(1, 2)?.contiguous()?.reshape((b, s, n * d))?
    } else {
        x.clone()
    };
    let &[b, s, w] = x3.dims() else {
        bail!("input {:?} is not 3-D or 4-D", x.dims());
    };
    let heads = if four {
        x.dims()[1]
    } else {
        match c.attr_i("num_heads", 0) {
            0 => w / (2 * caches.half).max(1),
            h => usize::try_from(h).unwrap_or(0),
        }
    };
    if heads == 0 || w % heads != 0 {
        bail!("the heads of input {:?} are not known", x.dims());
    }
    let pos = floats(super::input(inputs, 1)?)?;
    let at: Box<dyn Fn(usize, usize) -> usize> = match pos.len() {
        1 => Box::new(|_, si| pos[0] as usize + si),
        n if n == b * s => Box::new(|bi, si| pos[bi * s + si] as usize),
        n => bail!(
            "position_ids has {n} values, not 1 or batch·sequence ({})",
            b * s
        ),
    };
    let y = caches.apply(&x3, heads, at)?;
    let y = if four {
        y.reshape((b, s, heads, w / heads))?
            .transpose(1, 2)?
            .contiguous()?
    } else {
        y
    };
    Ok(vec![y])
}

fn group_query_attention(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let q = float_input(inputs, 0)?;
    let (Some(k), Some(v)) = (opt_input(inputs, 1), opt_input(inputs, 2)) else {
        bail!("packed query/key/value (no key or value input) is not supported");
    };
    for (slot, what) in [
        (9, "position_ids"),
        (10, "attention_bias"),
        (11, "head_sink"),
    ] {
        if opt_input(inputs, slot).is_some() {
            bail!("input {slot} ({what}) is not supported");
        }
    }
    for (attr, none) in [
        ("local_window_size", -1),
        ("smooth_softmax", 0),
        ("qk_output", 0),
    ] {
        if c.attr_i(attr, none) != none {
            bail!("{attr} is not supported");
        }
    }
    if c.attr_f("softcap", 0.0) != 0.0 {
        bail!("softcap is not supported");
    }
    let (&[b, s, qw], &[_, _, kw]) = (q.dims(), k.dims()) else {
        bail!("query {:?} / key {:?} are not 3-D", q.dims(), k.dims());
    };
    let n = usize::try_from(c.attr_i("num_heads", 0)).unwrap_or(0);
    let nkv = usize::try_from(c.attr_i("kv_num_heads", 0)).unwrap_or(0);
    if n == 0 || nkv == 0 || n % nkv != 0 || qw % n != 0 || kw != qw / n * nkv {
        bail!("num_heads {n} and kv_num_heads {nkv} do not group widths {qw} and {kw}");
    }
    if opt_input(inputs, 3).is_some_and(|p| p.dims().get(2) != Some(&0)) {
        bail!("past state (a non-empty past_key) is not supported: only the prefill form");
    }
    let lens = floats(super::input(inputs, 5)?)?;
    if lens.len() != b || lens.iter().any(|&l| l as usize + 1 != s) {
        bail!("seqlens_k {lens:?} is not sequence - 1 for every batch (padding is not supported)");
    }
    let (mut q, mut k) = (q.clone(), k.clone());
    if c.attr_i("do_rotary", 0) != 0 {
        let caches = Caches::read(inputs, 7, c.attr_i("rotary_interleaved", 0) != 0)?;
        q = caches.apply(&q, n, |_, si| si)?;
        k = caches.apply(&k, nkv, |_, si| si)?;
    }
    let d = qw / n;
    let (qh, kh, vh) = (
        split_heads(&q, n)?,
        split_heads(&k, nkv)?,
        split_heads(v, nkv)?,
    );
    // Key/value head j serves query heads j·g .. (j + 1)·g.
    let repeat = |t: &Tensor| -> OpResult<Tensor> {
        Ok(t.unsqueeze(2)?
            .broadcast_as((b, nkv, n / nkv, s, d))?
            .contiguous()?
            .reshape((b, n, s, d))?)
    };
    let later: Vec<f32> = (0..s * s)
        .map(|i| if i % s > i / s { f32::MIN } else { 0.0 })
        .collect();
    let causal = tensor_f32(later, &[1, 1, s, s])?;
    let y = attend(
        &qh,
        &repeat(&kh)?,
        &repeat(&vh)?,
        attention_scale(c, d),
        Some(causal),
    )?;
    Ok(vec![y.reshape((b, s, qw))?, kh, vh])
}
