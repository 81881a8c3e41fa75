//! Removing indices along one axis of a dense little-endian payload.

/// Copies `data` (a row-major tensor of `dims` with `elem`-byte elements) without the indices
/// `removed` (sorted) along `axis`. Returns the new bytes; the new dims are `dims` with
/// `dims[axis] - removed.len()`.
pub fn slice_axis(
    data: &[u8],
    dims: &[usize],
    elem: usize,
    axis: usize,
    removed: &[u32],
) -> Vec<u8> {
    let outer: usize = dims[..axis].iter().product();
    let n = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product::<usize>() * elem;
    let kept: Vec<usize> = {
        let mut r = removed.iter().peekable();
        (0..n)
            .filter(|&i| {
                if r.peek().is_some_and(|&&x| x as usize == i) {
                    r.next();
                    false
                } else {
                    true
                }
            })
            .collect()
    };
    let mut out = Vec::with_capacity(outer * kept.len() * inner);
    for o in 0..outer {
        let base = o * n * inner;
        // Runs of consecutive kept indices are copied in one go.
        let mut k = 0;
        while k < kept.len() {
            let start = kept[k];
            let mut end = start + 1;
            while k + 1 < kept.len() && kept[k + 1] == end {
                k += 1;
                end += 1;
            }
            out.extend_from_slice(&data[base + start * inner..base + end * inner]);
            k += 1;
        }
    }
    out
}

/// Copies `data` (a row-major tensor of `dims` with `elem`-byte elements) without the indices
/// each of `cuts` removes along its axis (axes ascending and distinct, indices sorted), in one
/// pass: the result is [`slice_axis`] applied axis after axis, without the intermediate copies
/// and with the output allocated once at its final size.
pub fn slice_axes(data: &[u8], dims: &[usize], elem: usize, cuts: &[(usize, &[u32])]) -> Vec<u8> {
    let Some(&(last, _)) = cuts.last() else {
        return data.to_vec();
    };
    // Per axis up to the last cut one: the kept indices, as runs of consecutive ones.
    let runs: Vec<Vec<(usize, usize)>> = (0..=last)
        .map(|a| {
            let removed = cuts
                .iter()
                .find(|(x, _)| *x == a)
                .map_or(&[][..], |(_, r)| *r);
            kept_runs(dims[a], removed)
        })
        .collect();
    let inner: usize = dims[last + 1..].iter().product::<usize>() * elem;
    // Byte stride of each axis up to `last`.
    let mut stride = vec![inner; last + 1];
    for a in (0..last).rev() {
        stride[a] = stride[a + 1] * dims[a + 1];
    }
    let kept_len = |a: usize| runs[a].iter().map(|(s, e)| e - s).sum::<usize>();
    let total = (0..=last).map(kept_len).product::<usize>() * inner;
    let mut out = Vec::with_capacity(total);
    // An odometer over the kept indices of the axes before `last`.
    let outer_idx: Vec<Vec<usize>> = (0..last)
        .map(|a| runs[a].iter().flat_map(|&(s, e)| s..e).collect())
        .collect();
    let mut pos = vec![0usize; last];
    let copy = RowCopy::new(&runs[last], inner);
    loop {
        if outer_idx.iter().any(Vec::is_empty) {
            break;
        }
        let base: usize = (0..last).map(|a| outer_idx[a][pos[a]] * stride[a]).sum();
        copy.append(&data[base..], &mut out);
        // Advance the odometer; done when it wraps past axis 0.
        let mut a = last;
        loop {
            if a == 0 {
                debug_assert_eq!(out.len(), total);
                return out;
            }
            a -= 1;
            pos[a] += 1;
            if pos[a] < outer_idx[a].len() {
                break;
            }
            pos[a] = 0;
        }
    }
    out
}

/// How the kept runs of the last cut axis are copied out of one row: run by run, or index by
/// index with a fixed-size copy when the runs are short.
///
/// Scattered removals (25% of a matrix's columns chosen by magnitude) leave runs of two or
/// three elements: one `memcpy` call per run then costs more than the bytes it moves, while a
/// fixed-size copy per index compiles to a single load and store. Both give the same bytes.
enum RowCopy<'a> {
    /// `(start, end)` runs of indices, `inner` bytes per index.
    Runs(&'a [(usize, usize)], usize),
    /// Byte offsets of every kept index; each copies `N` bytes (`N` = `inner`).
    Gather2(Vec<usize>),
    Gather4(Vec<usize>),
    Gather8(Vec<usize>),
}

impl<'a> RowCopy<'a> {
    /// Runs averaging fewer bytes than this are copied index by index.
    const SHORT_RUN_BYTES: usize = 32;

    fn new(runs: &'a [(usize, usize)], inner: usize) -> Self {
        let kept: usize = runs.iter().map(|(s, e)| e - s).sum();
        let short = !runs.is_empty() && kept * inner < Self::SHORT_RUN_BYTES * runs.len();
        let offsets = || -> Vec<usize> {
            runs.iter()
                .flat_map(|&(s, e)| s..e)
                .map(|i| i * inner)
                .collect()
        };
        match inner {
            2 if short => RowCopy::Gather2(offsets()),
            4 if short => RowCopy::Gather4(offsets()),
            8 if short => RowCopy::Gather8(offsets()),
            _ => RowCopy::Runs(runs, inner),
        }
    }

    /// Appends the kept bytes of the row starting at `row[0]` to `out`.
    fn append(&self, row: &[u8], out: &mut Vec<u8>) {
        match self {
            RowCopy::Runs(runs, inner) => {
                for &(s, e) in *runs {
                    out.extend_from_slice(&row[s * inner..e * inner]);
                }
            }
            RowCopy::Gather2(offsets) => gather::<2>(row, offsets, out),
            RowCopy::Gather4(offsets) => gather::<4>(row, offsets, out),
            RowCopy::Gather8(offsets) => gather::<8>(row, offsets, out),
        }
    }
}

/// Appends the `N` bytes at each of `offsets` in `row` to `out`.
fn gather<const N: usize>(row: &[u8], offsets: &[usize], out: &mut Vec<u8>) {
    // Sized first (a row's worth, still in cache when overwritten): the loop then stores into
    // a slice, without a capacity check and length update per element.
    let start = out.len();
    out.resize(start + offsets.len() * N, 0);
    for (d, &o) in out[start..].chunks_exact_mut(N).zip(offsets) {
        d.copy_from_slice(&row[o..o + N]);
    }
}

/// The indices `0..n` without `removed` (sorted), as half-open runs of consecutive indices.
fn kept_runs(n: usize, removed: &[u32]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = 0;
    for &r in removed {
        let r = r as usize;
        if r > start {
            runs.push((start, r));
        }
        start = r + 1;
    }
    if start < n {
        runs.push((start, n));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::{slice_axes, slice_axis};

    #[test]
    fn one_pass_equals_axis_after_axis() {
        let dims = [3usize, 4, 5, 2];
        let data: Vec<u8> = (0..dims.iter().product::<usize>() * 2)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let cases: [&[(usize, &[u32])]; 6] = [
            &[(0, &[1])],
            &[(1, &[0, 3])],
            &[(3, &[0])],
            &[(0, &[0]), (2, &[1, 2, 4])],
            &[(1, &[1, 2]), (2, &[0]), (3, &[1])],
            &[(0, &[]), (2, &[])],
        ];
        for cuts in cases {
            let mut want = data.clone();
            let mut d = dims.to_vec();
            for &(axis, removed) in cuts {
                want = slice_axis(&want, &d, 2, axis, removed);
                d[axis] -= removed.len();
            }
            assert_eq!(slice_axes(&data, &dims, 2, cuts), want, "{cuts:?}");
        }
        // Every index of an outer axis removed: nothing is left.
        assert!(slice_axes(&data, &dims, 2, &[(0, &[0, 1, 2]), (1, &[0])]).is_empty());
    }

    #[test]
    fn scattered_and_long_runs_give_the_same_bytes_in_every_element_size() {
        // Every third index removed (runs of two: copied index by index for 2, 4 and 8-byte
        // elements) and one index removed (long runs: copied run by run), on the last axis and
        // on a middle one, for every element size.
        let dims = [3usize, 5, 40];
        let scattered: Vec<u32> = (0..40).filter(|i| i % 3 == 0).collect();
        for elem in [1usize, 2, 4, 8, 3] {
            let data: Vec<u8> = (0..dims.iter().product::<usize>() * elem)
                .map(|i| (i * 31 % 253) as u8)
                .collect();
            let cases: [&[(usize, &[u32])]; 4] = [
                &[(2, &scattered)],
                &[(2, &[7])],
                &[(1, &[1, 3]), (2, &scattered)],
                &[(0, &[2]), (1, &[0])],
            ];
            for cuts in cases {
                let mut want = data.clone();
                let mut d = dims.to_vec();
                for &(axis, removed) in cuts {
                    want = slice_axis(&want, &d, elem, axis, removed);
                    d[axis] -= removed.len();
                }
                assert_eq!(
                    slice_axes(&data, &dims, elem, cuts),
                    want,
                    "{elem} {cuts:?}"
                );
            }
        }
    }

    #[test]
    fn removes_rows_columns_and_middle_axes() {
        // 2x3 matrix of bytes 0..6
        let m: Vec<u8> = (0..6).collect();
        assert_eq!(slice_axis(&m, &[2, 3], 1, 0, &[0]), vec![3, 4, 5]);
        assert_eq!(slice_axis(&m, &[2, 3], 1, 1, &[1]), vec![0, 2, 3, 5]);
        // 2x2x2 with 2-byte elements: drop axis 1 index 0
        let t: Vec<u8> = (0..16).collect();
        assert_eq!(
            slice_axis(&t, &[2, 2, 2], 2, 1, &[0]),
            vec![4, 5, 6, 7, 12, 13, 14, 15]
        );
        assert_eq!(slice_axis(&m, &[2, 3], 1, 1, &[]), m);
    }
}
