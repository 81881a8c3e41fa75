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

#[cfg(test)]
mod tests {
    use super::slice_axis;

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
