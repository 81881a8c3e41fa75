//! Matrix products: MatMul (numpy semantics: 1-D promotion, broadcast batch dimensions) and
//! Gemm (alpha, beta, transA/transB, unidirectionally broadcast C).

use std::collections::HashMap;

use candle_core::{DType, Tensor};

use super::{bail, broadcast_shapes, input, Ctx, OpFn, OpResult};

pub(crate) fn register(t: &mut HashMap<&'static str, OpFn>) {
    t.insert("MatMul", matmul);
    t.insert("Gemm", gemm);
}

fn float_pair<'a>(a: &'a Tensor, b: &'a Tensor) -> OpResult<()> {
    if a.dtype() != DType::F32 || b.dtype() != DType::F32 {
        bail!(
            "implemented for float tensors only, found {:?} and {:?}",
            a.dtype(),
            b.dtype()
        );
    }
    Ok(())
}

pub(crate) fn matmul(_: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
    float_pair(a, b)?;
    if a.rank() == 0 || b.rank() == 0 {
        bail!("MatMul needs inputs of rank 1 or more");
    }
    let a_vec = a.rank() == 1;
    let b_vec = b.rank() == 1;
    let a2 = if a_vec { a.unsqueeze(0)? } else { a.clone() };
    let b2 = if b_vec { b.unsqueeze(1)? } else { b.clone() };
    let mut out = batched(&a2, &b2)?;
    if a_vec {
        out = out.squeeze(out.rank() - 2)?;
    }
    if b_vec {
        out = out.squeeze(out.rank() - 1)?;
    }
    Ok(vec![out])
}

/// `[..., m, k] @ [..., k, n]` with broadcast batch dimensions.
pub(crate) fn batched(a: &Tensor, b: &Tensor) -> OpResult<Tensor> {
    let (ra, rb) = (a.rank(), b.rank());
    let (m, k) = (a.dims()[ra - 2], a.dims()[ra - 1]);
    let (k2, n) = (b.dims()[rb - 2], b.dims()[rb - 1]);
    if k != k2 {
        bail!("inner dimensions differ: {:?} @ {:?}", a.dims(), b.dims());
    }
    let batch_a = &a.dims()[..ra - 2];
    if rb == 2 {
        // Activations times a weight matrix: fold every batch dimension into the rows.
        let rows: usize = batch_a.iter().product::<usize>() * m;
        let y = a.reshape((rows, k))?.matmul(b)?;
        let mut shape = batch_a.to_vec();
        shape.extend([m, n]);
        return Ok(y.reshape(shape)?);
    }
    let batch = broadcast_shapes(&[batch_a, &b.dims()[..rb - 2]])?;
    let mut sa = batch.clone();
    sa.extend([m, k]);
    let mut sb = batch.clone();
    sb.extend([k, n]);
    let (a, b) = (a.broadcast_as(sa)?, b.broadcast_as(sb)?);
    let mut shape = batch.clone();
    shape.extend([m, n]);
    if batch.len() == 1 {
        return Ok(a.matmul(&b)?);
    }
    // candle's matmul takes a single batch dimension (any stride); fold the others.
    let nb: usize = batch.iter().product();
    let y = a.reshape((nb, m, k))?.matmul(&b.reshape((nb, k, n))?)?;
    Ok(y.reshape(shape)?)
}

fn gemm(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
    float_pair(a, b)?;
    if a.rank() != 2 || b.rank() != 2 {
        bail!(
            "Gemm needs 2-D inputs, found {:?} and {:?}",
            a.dims(),
            b.dims()
        );
    }
    let a = if c.attr_i("transA", 0) != 0 {
        a.t()?
    } else {
        a.clone()
    };
    let b = if c.attr_i("transB", 0) != 0 {
        b.t()?
    } else {
        b.clone()
    };
    if a.dims()[1] != b.dims()[0] {
        bail!("inner dimensions differ: {:?} @ {:?}", a.dims(), b.dims());
    }
    let mut y = a.matmul(&b)?;
    let alpha = c.attr_f("alpha", 1.0) as f64;
    if alpha != 1.0 {
        y = y.affine(alpha, 0.0)?;
    }
    if let Some(Some(bias)) = inputs.get(2) {
        let beta = c.attr_f("beta", 1.0) as f64;
        let bias = if beta != 1.0 {
            bias.affine(beta, 0.0)?
        } else {
            bias.clone()
        };
        let shape = broadcast_shapes(&[y.dims(), bias.dims()])?;
        if shape != y.dims() {
            bail!(
                "C of shape {:?} does not broadcast to {:?}",
                bias.dims(),
                y.dims()
            );
        }
        y = y.broadcast_add(&bias)?;
    }
    Ok(vec![y])
}
