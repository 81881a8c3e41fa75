//! Layer name patterns for `--ignore` and `--layer-ratio`.
//!
//! A pattern matches a layer when it matches one of the layer's names (its node name, or a
//! parameter the node reads directly, such as `layer1.0.conv1.weight`) in one of two ways:
//! - as a glob, where `*` is any run of characters and `?` any one character;
//! - as a dotted module prefix: `layer4` matches `layer4.0.conv1.weight` (a module and all its
//!   submodules, as PyTorch names parameters and as Torch-Pruning ignores submodules).

/// A layer name pattern.
///
/// Invariant: `text` is not empty.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Pattern {
    pub text: String,
}

impl Pattern {
    pub fn new(text: &str) -> Option<Pattern> {
        (!text.is_empty()).then(|| Pattern {
            text: text.to_string(),
        })
    }

    /// Whether the pattern matches `name`.
    pub fn matches(&self, name: &str) -> bool {
        let p = self.text.as_str();
        glob(p.as_bytes(), name.as_bytes())
            || name
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('.'))
    }

    /// Whether the pattern matches any of `names`.
    pub fn matches_any<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> bool {
        names.into_iter().any(|n| self.matches(n))
    }
}

/// Glob match with `*` and `?`, iterative with single backtracking (linear for one `*`).
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, name: &str, want: bool) {
        let p = Pattern::new(pattern).unwrap();
        assert_eq!(p.matches(name), want, "{pattern} ~ {name}");
    }

    #[test]
    fn globs_exact_names_and_module_prefixes() {
        check("fc", "fc", true);
        check("fc", "fc.weight", true);
        check("fc", "fc2.weight", false);
        check("layer4", "layer4.1.conv2.weight", true);
        check("layer4.*.conv1*", "layer4.0.conv1.weight", true);
        check("layer4.*.conv1*", "layer4.0.conv2.weight", false);
        check("/layer1/*/Conv", "/layer1/layer1.0/conv1/Conv", true);
        check("*conv?", "a.conv1", true);
        check("*conv?", "a.conv12", false);
        check("*", "", true);
        assert!(Pattern::new("").is_none());
    }
}
