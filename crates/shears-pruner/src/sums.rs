//! The magnitude kernel: per index of some axes of one tensor, the sums of `|x|` and `x²`,
//! every requested axis in one pass over the tensor's rows.
//!
//! The summation order is fixed by the tensor's shape alone, so sums are the same bits on
//! every run, whatever the thread count (a tensor is always summed by one thread) and whether
//! the rows come widened from bytes or from decoded values. Trailing axes of size 1 are not
//! walked (`summed_shape`: a 1x1 convolution's input channels are the columns), and:
//! - **the last axis** (columns): each column adds its elements as `f64`, row after row, from
//!   row 0 (the column loop walks [`BLOCK_ROWS`] rows per column before moving on, which
//!   changes which loads and stores happen, not the order of the additions);
//! - **an earlier axis**: each row's sums (below) are added to its index's total, in row order;
//! - **a row's sums**: element `k` goes to `f64` lane `k % LANES`, and the lanes are added in
//!   lane order at the end of the row: independent chains the CPU vectorizes, where one chain
//!   waits on every addition. Rows shorter than [`SHORT_ROW`] add their elements in order.
//!
//! All arithmetic is `f64` (each element widened once), so no sum overflows where the
//! element-by-element one would not.

use crate::tensors::AxisSums;

/// `f64` accumulators per row sum: the chains of additions that run side by side.
const LANES: usize = 16;
/// Rows shorter than this are summed element by element (lanes would cost more than they save).
const SHORT_ROW: usize = 2 * LANES;
/// Rows read per column before the next column: a column's running sum stays in a register
/// across them.
pub(crate) const BLOCK_ROWS: usize = 8;

/// The sums of `axes` (each below the rank of `shape`, any order, no repeats) of a tensor of
/// `shape`, fed its rows (its last axis) in order, in blocks of a multiple of [`BLOCK_ROWS`]
/// rows (the last block may be short).
///
/// Invariant: `out[k]` has one entry per index of `axes[k]`; `cursors[k]` is where the next
/// row goes for an earlier axis `axes[k]`.
pub(crate) struct AxisAccumulator {
    shape: Vec<usize>,
    /// Per requested axis: rows per index block (consecutive rows sharing an index), or `None`
    /// for the last axis, whose index is the column.
    per_block: Vec<Option<usize>>,
    out: Vec<AxisSums>,
    /// Per requested earlier axis: the index the next row adds to and the rows left before
    /// the index moves on (counted, not divided out of the row number: one row may be one
    /// element, a 1x1 convolution's, and a division per element would cost more than its sum).
    cursors: Vec<(usize, usize)>,
}

/// Rows to feed [`AxisAccumulator::add_block`] at a time for rows of `row_len`: a multiple of
/// [`BLOCK_ROWS`] (the sums are the same for any such count: blocks only batch the calls), at
/// least 16 Ki elements when the rows are short, so a call's fixed cost is spread over many.
pub(crate) fn rows_per_block(row_len: usize) -> usize {
    const MIN_ELEMENTS: usize = 16 * 1024;
    let per_block = BLOCK_ROWS * row_len.max(1);
    BLOCK_ROWS * MIN_ELEMENTS.div_ceil(per_block).max(1)
}

impl AxisAccumulator {
    /// An accumulator for `axes` of a tensor of `shape`.
    pub(crate) fn new(shape: &[usize], axes: &[usize]) -> Self {
        let out = axes
            .iter()
            .map(|&a| AxisSums {
                l1: vec![0.0; shape[a]],
                l2: vec![0.0; shape[a]],
            })
            .collect();
        let shape = summed_shape(shape, axes);
        let last = shape.len().saturating_sub(1);
        let per_block: Vec<Option<usize>> = axes
            .iter()
            .map(|&a| (a != last).then(|| shape[a + 1..last].iter().product()))
            .collect();
        let cursors = per_block.iter().map(|per| (0, per.unwrap_or(0))).collect();
        AxisAccumulator {
            shape,
            per_block,
            out,
            cursors,
        }
    }

    /// The length of a row (1 for a scalar): the last axis not dropped by `summed_shape`.
    pub(crate) fn row_len(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }

    /// Adds the next rows (`values.len()` a multiple of the row length; a multiple of
    /// [`BLOCK_ROWS`] rows except for the last call, see [`rows_per_block`]).
    pub(crate) fn add_block(&mut self, values: &[f32]) {
        let row_len = self.row_len();
        if row_len == 0 || values.is_empty() {
            return;
        }
        debug_assert!(values.len().is_multiple_of(row_len));
        if let Some(k) = self.per_block.iter().position(Option::is_none) {
            let s = &mut self.out[k];
            for block in values.chunks(BLOCK_ROWS * row_len) {
                columns(block, row_len, &mut s.l1, &mut s.l2);
            }
        }
        if self.per_block.iter().any(Option::is_some) {
            for row in values.chunks_exact(row_len) {
                let (p, q) = row_sums(row);
                for (k, per) in self.per_block.iter().enumerate() {
                    let Some(per) = *per else { continue };
                    let (i, left) = &mut self.cursors[k];
                    self.out[k].l1[*i] += p;
                    self.out[k].l2[*i] += q;
                    *left -= 1;
                    if *left == 0 {
                        *left = per;
                        *i += 1;
                        if *i == self.out[k].l1.len() {
                            *i = 0;
                        }
                    }
                }
            }
        }
    }

    /// The sums, one per requested axis, in the order of `axes`.
    pub(crate) fn finish(self) -> Vec<AxisSums> {
        self.out
    }
}

/// `shape` as the kernel walks it for `axes`: without its trailing axes of size 1 that are
/// not requested (a 1x1 convolution's input channels are then the columns, and its output
/// channels rows of them, instead of one-element rows). It depends on the shape alone for any
/// request of axes larger than 1, so an axis's sums are the same bits whatever else is asked.
/// Row-major order, and with it the element order, is unchanged.
fn summed_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    let mut walked = shape.to_vec();
    while walked.len() > 1 && walked[walked.len() - 1] == 1 && !axes.contains(&(walked.len() - 1)) {
        walked.pop();
    }
    walked
}

/// Adds `|x|` and `x²` of every row of `block` (rows of `row_len`) to the column totals, row
/// after row for each column.
fn columns(block: &[f32], row_len: usize, l1: &mut [f64], l2: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { columns_avx2(block, row_len, l1, l2) };
    }
    columns_body(block, row_len, l1, l2)
}

/// [`columns_body`] compiled for AVX2: the same operations in the same order, on wider
/// registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn columns_avx2(block: &[f32], row_len: usize, l1: &mut [f64], l2: &mut [f64]) {
    columns_body(block, row_len, l1, l2)
}

#[inline(always)]
fn columns_body(block: &[f32], row_len: usize, l1: &mut [f64], l2: &mut [f64]) {
    let n = block.len() / row_len;
    if n == BLOCK_ROWS {
        // A fixed row count unrolls the inner loop, so the column loop is the innermost one
        // and vectorizes across columns.
        let rows: [&[f32]; BLOCK_ROWS] =
            std::array::from_fn(|k| &block[k * row_len..(k + 1) * row_len]);
        let (l1, l2) = (&mut l1[..row_len], &mut l2[..row_len]);
        for j in 0..row_len {
            let (mut a, mut b) = (l1[j], l2[j]);
            for row in &rows {
                let x = row[j] as f64;
                a += x.abs();
                b += x * x;
            }
            l1[j] = a;
            l2[j] = b;
        }
        return;
    }
    for row in block.chunks_exact(row_len) {
        for ((a, b), &x) in l1.iter_mut().zip(l2.iter_mut()).zip(row) {
            let x = x as f64;
            *a += x.abs();
            *b += x * x;
        }
    }
}

/// `(Σ|x|, Σx²)` of one row, in the lane order of the module docs.
fn row_sums(row: &[f32]) -> (f64, f64) {
    if row.len() < SHORT_ROW {
        return row.iter().fold((0.0, 0.0), |(p, q), &x| {
            let x = x as f64;
            (p + x.abs(), q + x * x)
        });
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { lanes_avx2(row) };
    }
    lanes_body(row)
}

/// [`lanes_body`] with AVX: four `f64` lanes per register, each lane added exactly as
/// [`lanes_body`] adds it (widen, absolute value or square, add), so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lanes_avx2(row: &[f32]) -> (f64, f64) {
    use std::arch::x86_64::*;
    const REGS: usize = LANES / 4;
    let mut a = [_mm256_setzero_pd(); REGS];
    let mut b = [_mm256_setzero_pd(); REGS];
    let sign = _mm256_set1_pd(-0.0);
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for q in 0..REGS {
            // SAFETY: `c` holds LANES = 4 * REGS values; this reads values 4q..4q+4.
            let x = _mm256_cvtps_pd(unsafe { _mm_loadu_ps(c.as_ptr().add(4 * q)) });
            a[q] = _mm256_add_pd(a[q], _mm256_andnot_pd(sign, x));
            b[q] = _mm256_add_pd(b[q], _mm256_mul_pd(x, x));
        }
    }
    let (mut la, mut lb) = ([0.0f64; LANES], [0.0f64; LANES]);
    for q in 0..REGS {
        // SAFETY: each store writes 4 values at 4q, inside the LANES-long arrays.
        unsafe {
            _mm256_storeu_pd(la.as_mut_ptr().add(4 * q), a[q]);
            _mm256_storeu_pd(lb.as_mut_ptr().add(4 * q), b[q]);
        }
    }
    for (k, &x) in chunks.remainder().iter().enumerate() {
        let x = x as f64;
        la[k] += x.abs();
        lb[k] += x * x;
    }
    (la.iter().sum(), lb.iter().sum())
}

#[inline(always)]
fn lanes_body(row: &[f32]) -> (f64, f64) {
    let (mut a, mut b) = ([0.0f64; LANES], [0.0f64; LANES]);
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            let x = c[k] as f64;
            a[k] += x.abs();
            b[k] += x * x;
        }
    }
    for (k, &x) in chunks.remainder().iter().enumerate() {
        let x = x as f64;
        a[k] += x.abs();
        b[k] += x * x;
    }
    (a.iter().sum(), b.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sums of `axes`, element by element in `f64` (the reference, up to rounding).
    fn naive(data: &[f32], shape: &[usize], axis: usize) -> AxisSums {
        let inner: usize = shape[axis + 1..].iter().product();
        let size = shape[axis];
        let mut s = AxisSums {
            l1: vec![0.0; size],
            l2: vec![0.0; size],
        };
        for (e, &x) in data.iter().enumerate() {
            let i = (e / inner) % size;
            s.l1[i] += (x as f64).abs();
            s.l2[i] += x as f64 * x as f64;
        }
        s
    }

    fn sums(data: &[f32], shape: &[usize], axes: &[usize], block: usize) -> Vec<AxisSums> {
        let mut acc = AxisAccumulator::new(shape, axes);
        let step = block * acc.row_len();
        for b in data.chunks(step.max(1)) {
            acc.add_block(b);
        }
        acc.finish()
    }

    fn values(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 % 1013) as f32 - 500.0) * 1.37e-3 * (1.0 + (i % 5) as f32 * 1e3))
            .collect()
    }

    #[test]
    fn every_axis_agrees_with_the_element_by_element_sums() {
        // Rows long enough for the lanes (40, 70) and short ones (3), full and short blocks.
        for shape in [
            &[19usize, 70][..],
            &[3, 5, 40],
            &[2, 3, 4, 3],
            &[70],
            &[9, 1],
            // A 1x1 convolution's weight (trailing axes dropped) and a 3x3 one.
            &[4, 40, 1, 1],
            &[3, 4, 3, 3],
        ] {
            let data = values(shape.iter().product());
            let all: Vec<usize> = (0..shape.len()).collect();
            for axes in [&all[..], &all[..1], &all[all.len() - 1..]] {
                // Blocks batch the calls, never the order: any multiple of BLOCK_ROWS rows
                // gives the same bits.
                let batched = sums(&data, shape, axes, rows_per_block(shape[shape.len() - 1]));
                assert_eq!(
                    batched,
                    sums(&data, shape, axes, BLOCK_ROWS),
                    "{shape:?} {axes:?}"
                );
                for (k, &a) in axes.iter().enumerate() {
                    let got = &sums(&data, shape, axes, BLOCK_ROWS)[k];
                    let want = naive(&data, shape, a);
                    for (g, w) in got
                        .l1
                        .iter()
                        .zip(&want.l1)
                        .chain(got.l2.iter().zip(&want.l2))
                    {
                        assert!(
                            (g - w).abs() <= 1e-12 * w.abs(),
                            "{shape:?} axes {axes:?} axis {a}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn columns_add_rows_in_order_exactly() {
        // The last axis keeps the element-by-element order: equal bit for bit.
        let shape = [21usize, 37];
        let data = values(21 * 37);
        let got = &sums(&data, &shape, &[1], BLOCK_ROWS)[0];
        assert_eq!(*got, naive(&data, &shape, 1));
    }

    #[test]
    fn the_order_of_requested_axes_does_not_change_a_bit() {
        let shape = [5usize, 6, 40];
        let data = values(1200);
        let ab = sums(&data, &shape, &[0, 2], BLOCK_ROWS);
        let ba = sums(&data, &shape, &[2, 0], BLOCK_ROWS);
        assert_eq!((&ab[0], &ab[1]), (&ba[1], &ba[0]));
        assert_eq!(sums(&data, &shape, &[0], BLOCK_ROWS)[0], ab[0]);
        // A 1x1 convolution's weight, walked without its trailing axes either way.
        let shape = [6usize, 40, 1, 1];
        let both = sums(&data[..240], &shape, &[0, 1], BLOCK_ROWS);
        assert_eq!(sums(&data[..240], &shape, &[0], BLOCK_ROWS)[0], both[0]);
        assert_eq!(sums(&data[..240], &shape, &[1], BLOCK_ROWS)[0], both[1]);
    }

    #[test]
    fn squares_past_f32_range_stay_finite() {
        let data = vec![3e30f32; 64];
        let s = &sums(&data, &[2, 32], &[0, 1], BLOCK_ROWS);
        assert!(s[0].l2.iter().all(|x| x.is_finite() && *x > 1e62));
        assert!(s[1].l2.iter().all(|x| x.is_finite() && *x > 1e61));
    }

    #[test]
    fn vector_lanes_are_the_portable_lanes_bit_for_bit() {
        for n in [32usize, 33, 47, 48, 100, 1001] {
            let row = values(n);
            let portable = lanes_body(&row);
            assert_eq!(row_sums(&row), portable, "{n} values");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                assert_eq!(unsafe { lanes_avx2(&row) }, portable, "{n} values");
            }
        }
    }
}
