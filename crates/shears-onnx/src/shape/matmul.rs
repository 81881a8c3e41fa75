//! Matrix products: `Gemm` (2-D, `transA`/`transB`, bias broadcast to `[M, N]`) and `MatMul`
//! (numpy semantics: 1-D operands promoted and the added axis removed, batch dims broadcast).

use super::{broadcast, invalid, Ctx, Fail, Out, ShapeFn};

type R = Result<Vec<Out>, Fail>;

pub(super) const RULES: &[(&str, ShapeFn)] = &[("Gemm", gemm), ("MatMul", matmul)];

/// `(M, K, N)` of a `Gemm` node, for shapes and for MAC counting.
pub(crate) fn gemm_dims(
    a: &[usize],
    b: &[usize],
    trans_a: bool,
    trans_b: bool,
) -> Result<(usize, usize, usize), String> {
    if a.len() != 2 || b.len() != 2 {
        return Err(format!(
            "operands of rank {} and {} (need 2 and 2)",
            a.len(),
            b.len()
        ));
    }
    let (m, k) = if trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
    let (kb, n) = if trans_b { (b[1], b[0]) } else { (b[0], b[1]) };
    if k != kb {
        return Err(format!(
            "inner dimensions differ: A gives K = {k}, B gives K = {kb}"
        ));
    }
    Ok((m, k, n))
}

fn gemm(c: &Ctx<'_>) -> R {
    let (a, b) = (c.shape(0)?, c.shape(1)?);
    let (m, _, n) = gemm_dims(a, b, c.attr_i("transA", 0) != 0, c.attr_i("transB", 0) != 0)?;
    if c.has(2) {
        let bias = c.shape(2)?;
        if broadcast(&[bias, &[m, n]]).ok().as_deref() != Some(&[m, n][..]) {
            return invalid(format!(
                "C of shape {bias:?} does not broadcast to [{m}, {n}]"
            ));
        }
    }
    Ok(vec![Out::new(vec![m, n], c.dtype(0)?)])
}

/// The output shape of `a @ b` and `(batch elements, M, K, N)`.
pub(crate) fn matmul_dims(a: &[usize], b: &[usize]) -> Result<(Vec<usize>, [usize; 4]), String> {
    if a.is_empty() || b.is_empty() {
        return Err("MatMul operands must have rank >= 1".into());
    }
    let a2: Vec<usize> = if a.len() == 1 {
        vec![1, a[0]]
    } else {
        a.to_vec()
    };
    let b2: Vec<usize> = if b.len() == 1 {
        vec![b[0], 1]
    } else {
        b.to_vec()
    };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (kb, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != kb {
        return Err(format!(
            "inner dimensions differ: {a:?} @ {b:?} (K = {k} vs {kb})"
        ));
    }
    let batch = broadcast(&[&a2[..a2.len() - 2], &b2[..b2.len() - 2]])
        .map_err(|_| format!("batch dimensions of {a:?} and {b:?} do not broadcast"))?;
    let batch_n = batch.iter().try_fold(1usize, |p, &d| p.checked_mul(d));
    let batch_n = batch_n.ok_or_else(|| format!("batch dims {batch:?} overflow"))?;
    let mut out = batch;
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    Ok((out, [batch_n, m, k, n]))
}

fn matmul(c: &Ctx<'_>) -> R {
    let (out, _) = matmul_dims(c.shape(0)?, c.shape(1)?)?;
    Ok(vec![Out::new(out, c.dtype(0)?)])
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn gemm_shapes() {
        check(
            17,
            "Gemm",
            vec![ai("transB", 1)],
            &[s(&[1, 512]), s(&[1000, 512]), s(&[1000])],
            &[&[1, 1000]],
        );
        check(
            17,
            "Gemm",
            vec![ai("transA", 1)],
            &[s(&[512, 2]), s(&[512, 10])],
            &[&[2, 10]],
        );
        check(
            17,
            "Gemm",
            vec![],
            &[s(&[3, 4]), s(&[4, 5]), s(&[3, 1])],
            &[&[3, 5]],
        );
        check_err(
            17,
            "Gemm",
            vec![],
            &[s(&[1, 512]), s(&[1000, 512])],
            "inner dimensions",
        );
        check_err(
            17,
            "Gemm",
            vec![],
            &[s(&[3, 4]), s(&[4, 5]), s(&[2, 5])],
            "broadcast",
        );
    }

    #[test]
    fn matmul_shapes() {
        let cases: &[(&[usize], &[usize], &[usize])] = &[
            (&[2, 3], &[3, 4], &[2, 4]),
            (&[1, 17, 32], &[32, 96], &[1, 17, 96]),
            (&[2, 4, 17, 8], &[2, 4, 8, 17], &[2, 4, 17, 17]),
            (&[5, 1, 3, 4], &[6, 4, 2], &[5, 6, 3, 2]),
            (&[4], &[4, 3], &[3]),
            (&[2, 3, 4], &[4], &[2, 3]),
            (&[4], &[4], &[]),
        ];
        for (a, b, out) in cases {
            check(17, "MatMul", vec![], &[s(a), s(b)], &[out]);
        }
        check_err(
            17,
            "MatMul",
            vec![],
            &[s(&[2, 3]), s(&[4, 5])],
            "inner dimensions",
        );
        check_err(
            17,
            "MatMul",
            vec![],
            &[s(&[2, 2, 3]), s(&[3, 3, 5])],
            "batch",
        );
    }
}
