//! Removing indices along one axis of a dense little-endian payload; every cut axis at once is
//! [`shears_onnx::cut::slice_axes`].

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

pub use shears_onnx::cut::slice_axes;

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
