//! Line diffs of rendered plans, so a change in couplings shows as a small diff.

/// A unified-style line diff of `a` and `b` (`-` lines only in `a`, `+` only in `b`), or
/// `None` when they are equal. Uses the longest common subsequence of lines.
pub fn diff_lines(a: &str, b: &str) -> Option<String> {
    if a == b {
        return None;
    }
    let x: Vec<&str> = a.lines().collect();
    let y: Vec<&str> = b.lines().collect();
    let (n, m) = (x.len(), y.len());
    // lcs[i][j]: LCS length of x[i..] and y[j..]; plans are small enough for O(n·m).
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if x[i] == y[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && x[i] == y[j] {
            out.push_str("  ");
            out.push_str(x[i]);
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str("- ");
            out.push_str(x[i]);
            i += 1;
        } else {
            out.push_str("+ ");
            out.push_str(y[j]);
            j += 1;
        }
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shows_changed_lines_only_as_plus_minus() {
        let d = super::diff_lines("a\nb\nc\n", "a\nB\nc\n").unwrap();
        assert_eq!(d, "  a\n- b\n+ B\n  c\n");
        assert!(super::diff_lines("x\n", "x\n").is_none());
    }
}
