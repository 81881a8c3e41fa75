//! User-supplied static shapes for graph inputs (`--input-shape NAME=1,3,224,224`).

use indexmap::IndexMap;

use crate::error::{OnnxError, Result};
use crate::ir::{Dim, Graph};

/// Static shapes for graph inputs, by input name, in the order given.
///
/// Invariant: every shape has only concrete (non-negative) dimensions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputShapes(pub IndexMap<String, Vec<usize>>);

impl InputShapes {
    /// Parses specs of the form `NAME=1,3,224,224` (also `NAME=1x3x224x224`).
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Self> {
        let mut out = IndexMap::new();
        for spec in specs {
            let spec = spec.as_ref();
            let bad = |reason: &str| OnnxError::InputShapeSpec {
                spec: spec.to_string(),
                reason: reason.to_string(),
            };
            let (name, dims) = spec
                .rsplit_once('=')
                .ok_or_else(|| bad("expected NAME=D0,D1,..."))?;
            if name.is_empty() {
                return Err(bad("empty input name"));
            }
            let dims: Vec<usize> = dims
                .split([',', 'x'])
                .map(|d| d.trim().parse::<usize>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| bad("dimensions must be non-negative integers"))?;
            if dims.is_empty() {
                return Err(bad("no dimensions"));
            }
            if out.insert(name.to_string(), dims).is_some() {
                return Err(bad("input given twice"));
            }
        }
        Ok(InputShapes(out))
    }

    /// The declared shapes of `graph`'s inputs that have dynamic dimensions, with each such
    /// dimension set to `value`: what tests and tools use when the user gave no shape.
    pub fn dynamic_as(graph: &Graph, value: usize) -> Self {
        let mut out = IndexMap::new();
        for &v in &graph.inputs {
            let Some(decl) = &graph.value(v).declared else {
                continue;
            };
            if decl.iter().any(|d| matches!(d, Dim::Dynamic(_))) {
                let dims = decl
                    .iter()
                    .map(|d| match d {
                        Dim::Known(n) => *n,
                        Dim::Dynamic(_) => value,
                    })
                    .collect();
                out.insert(graph.value(v).name.clone(), dims);
            }
        }
        InputShapes(out)
    }

    /// The concrete shape of every runtime input of `graph`: the user's value where given,
    /// otherwise the declared shape, which must then be fully static.
    pub fn resolve(&self, graph: &Graph) -> Result<Vec<(String, Vec<usize>)>> {
        for name in self.0.keys() {
            let known = graph.inputs.iter().any(|&v| &graph.value(v).name == name);
            if !known {
                let names: Vec<&str> = graph
                    .inputs
                    .iter()
                    .map(|&v| graph.value(v).name.as_str())
                    .collect();
                return Err(OnnxError::InputShapeSpec {
                    spec: name.clone(),
                    reason: format!(
                        "the model has no input of that name (inputs: {})",
                        names.join(", ")
                    ),
                });
            }
        }
        graph
            .inputs
            .iter()
            .map(|&v| {
                let value = graph.value(v);
                if let Some(s) = self.0.get(&value.name) {
                    return Ok((value.name.clone(), s.clone()));
                }
                let declared = value
                    .declared
                    .as_ref()
                    .ok_or_else(|| OnnxError::DynamicInput {
                        input: value.name.clone(),
                        dim: 0,
                        param: "no shape declared".into(),
                    })?;
                let dims = declared
                    .iter()
                    .enumerate()
                    .map(|(i, d)| match d {
                        Dim::Known(n) => Ok(*n),
                        Dim::Dynamic(p) => Err(OnnxError::DynamicInput {
                            input: value.name.clone(),
                            dim: i,
                            param: p.clone(),
                        }),
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok((value.name.clone(), dims))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comma_and_x_separated_dims() {
        let s = InputShapes::parse(&["input=1,3,224,224", "mask=2x5"]).unwrap();
        assert_eq!(s.0["input"], vec![1, 3, 224, 224]);
        assert_eq!(s.0["mask"], vec![2, 5]);
    }

    #[test]
    fn rejects_malformed_specs() {
        for bad in ["input", "=1,2", "x=1,-2", "x=", "a=1,2"] {
            let specs = if bad == "a=1,2" {
                vec![bad, bad]
            } else {
                vec![bad]
            };
            assert!(InputShapes::parse(&specs).is_err(), "{bad} accepted");
        }
    }
}
