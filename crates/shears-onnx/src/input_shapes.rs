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

    /// The symbolic dimensions of `graph`'s inputs that the user left unbound, in order of
    /// first use. A `dim_param` names one size wherever it appears: binding it on one input
    /// (`--input-shape`) binds it everywhere, and binding it to two sizes is an error naming it.
    /// An unnamed dynamic dimension is a symbol of its own.
    ///
    /// Errors: an input the user names that the model lacks, an input without a declared shape
    /// that the user did not give, a `dim_param` bound to two sizes.
    pub fn symbols(&self, graph: &Graph) -> Result<Vec<Symbol>> {
        self.check_names(graph)?;
        let bound = self.bound_params(graph)?;
        let mut symbols: Vec<Symbol> = Vec::new();
        for &v in &graph.inputs {
            let value = graph.value(v);
            if self.0.contains_key(&value.name) {
                continue;
            }
            let declared = value
                .declared
                .as_ref()
                .ok_or_else(|| OnnxError::DynamicInput {
                    input: value.name.clone(),
                    dim: 0,
                    param: "no shape declared".into(),
                })?;
            for (axis, d) in declared.iter().enumerate() {
                let Dim::Dynamic(param) = d else { continue };
                if !param.is_empty() && bound.contains_key(param) {
                    continue;
                }
                let at = (value.name.clone(), axis);
                match symbols
                    .iter_mut()
                    .find(|s| !param.is_empty() && &s.param == param)
                {
                    Some(s) => s.uses.push(at),
                    None => symbols.push(Symbol {
                        param: param.clone(),
                        uses: vec![at],
                    }),
                }
            }
        }
        Ok(symbols)
    }

    /// The concrete shape of every runtime input of `graph`: the user's value where given,
    /// otherwise the declared shape, which must then be fully static (a `dim_param` the user
    /// bound on another input counts as given).
    pub fn resolve(&self, graph: &Graph) -> Result<Vec<(String, Vec<usize>)>> {
        let symbols = self.symbols(graph)?;
        if let Some(s) = symbols.first() {
            let (input, dim) = s.uses.first().cloned().unwrap_or_default();
            return Err(OnnxError::DynamicInput {
                input,
                dim,
                param: s.param.clone(),
            });
        }
        self.resolve_with(graph, &[], &[])
    }

    /// [`InputShapes::resolve`] with every symbolic dimension the user left unbound at `size`
    /// (what shape inference analyses them at, [`crate::shape::symbolic::BASE`], for inputs
    /// that must be concrete: random calibration samples).
    pub fn resolve_symbols_at(
        &self,
        graph: &Graph,
        size: usize,
    ) -> Result<Vec<(String, Vec<usize>)>> {
        let symbols = self.symbols(graph)?;
        self.resolve_with(graph, &symbols, &vec![size; symbols.len()])
    }

    /// [`InputShapes::resolve`] with each of `symbols` (from [`InputShapes::symbols`]) set to
    /// the size at the same position of `sizes`.
    pub fn resolve_with(
        &self,
        graph: &Graph,
        symbols: &[Symbol],
        sizes: &[usize],
    ) -> Result<Vec<(String, Vec<usize>)>> {
        self.check_names(graph)?;
        let bound = self.bound_params(graph)?;
        let symbol_size = |input: &str, axis: usize| {
            symbols
                .iter()
                .zip(sizes)
                .find(|(s, _)| s.uses.iter().any(|(i, a)| i == input && *a == axis))
                .map(|(_, &n)| n)
        };
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
                        Dim::Dynamic(p) => bound
                            .get(p)
                            .filter(|_| !p.is_empty())
                            .map(|(n, _)| *n)
                            .or_else(|| symbol_size(&value.name, i))
                            .ok_or_else(|| OnnxError::DynamicInput {
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

    /// Every input the user names must exist.
    fn check_names(&self, graph: &Graph) -> Result<()> {
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
        Ok(())
    }

    /// The size the user's shapes give each named `dim_param` (with the input that set it), or
    /// an error naming a `dim_param` two of them set to different sizes.
    fn bound_params(&self, graph: &Graph) -> Result<IndexMap<String, (usize, String)>> {
        let mut bound: IndexMap<String, (usize, String)> = IndexMap::new();
        for &v in &graph.inputs {
            let value = graph.value(v);
            let (Some(given), Some(declared)) = (self.0.get(&value.name), &value.declared) else {
                continue;
            };
            for (d, &n) in declared.iter().zip(given) {
                let Dim::Dynamic(param) = d else { continue };
                if param.is_empty() {
                    continue;
                }
                match bound.get(param) {
                    Some((m, other)) if *m != n => {
                        return Err(OnnxError::InputShapeSpec {
                            spec: format!("{}={}", value.name, join(given)),
                            reason: format!(
                                "the symbolic dimension '{param}' is {n} here but {m} in input '{other}'; one dimension has one size"
                            ),
                        })
                    }
                    Some(_) => {}
                    None => {
                        bound.insert(param.clone(), (n, value.name.clone()));
                    }
                }
            }
        }
        Ok(bound)
    }
}

fn join(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A symbolic input dimension left unbound: one `dim_param` (all the inputs and axes that
/// declare it), or one unnamed dynamic dimension.
///
/// Invariant: `uses` is non-empty; an empty `param` has exactly one use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// The `dim_param`; empty for an unnamed dimension.
    pub param: String,
    /// `(input name, axis)` of every declaration of it, in input order.
    pub uses: Vec<(String, usize)>,
}

impl std::fmt::Display for Symbol {
    /// `'batch'`, or `dimension 0 of input 'x'` for an unnamed one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.uses.first() {
            Some((input, axis)) if self.param.is_empty() => {
                write!(f, "dimension {axis} of input '{input}'")
            }
            _ => write!(f, "'{}'", self.param),
        }
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

    fn graph(inputs: &[(&str, &[i64])]) -> Graph {
        let mut b = crate::shape::testutil::GraphBuilder::new(17);
        for (name, dims) in inputs {
            let dims: Vec<Option<usize>> = dims.iter().map(|&d| usize::try_from(d).ok()).collect();
            b.input_dyn(name, &dims);
            let out = format!("{name}_out");
            b.node_named(&format!("r_{name}"), "Relu", &[name], &[&out], vec![]);
            b.output(&out);
        }
        Graph::build(&b.proto(), "test").unwrap()
    }

    #[test]
    fn one_dim_param_is_one_symbol_and_binding_it_once_binds_it_everywhere() {
        // The builder names a dynamic axis 0 'N' and a dynamic axis k 'dk'.
        let g = graph(&[("a", &[-1, 3]), ("b", &[-1, 5, -1])]);
        let syms = InputShapes::default().symbols(&g).unwrap();
        let names: Vec<String> = syms.iter().map(|s| s.to_string()).collect();
        assert_eq!(names, ["'N'", "'d2'"]);
        assert_eq!(syms[0].uses, [("a".to_string(), 0), ("b".to_string(), 0)]);
        let r = InputShapes::default()
            .resolve_with(&g, &syms, &[7, 2])
            .unwrap();
        assert_eq!(r[0].1, [7, 3]);
        assert_eq!(r[1].1, [7, 5, 2]);
        // Binding 'N' through input a binds it for b too; only 'd2' stays symbolic.
        let user = InputShapes::parse(&["a=4,3"]).unwrap();
        let syms = user.symbols(&g).unwrap();
        assert_eq!(syms.len(), 1);
        assert_eq!(syms[0].param, "d2");
        assert_eq!(user.resolve_with(&g, &syms, &[9]).unwrap()[1].1, [4, 5, 9]);
        let e = user.resolve(&g).unwrap_err().to_string();
        assert!(e.contains("'d2'") && e.contains("--input-shape b="), "{e}");
    }

    #[test]
    fn a_dim_param_bound_to_two_sizes_is_an_error_naming_it() {
        let g = graph(&[("a", &[-1, 3]), ("b", &[-1, 5])]);
        let user = InputShapes::parse(&["a=2,3", "b=3,5"]).unwrap();
        for e in [
            user.symbols(&g).unwrap_err().to_string(),
            user.resolve(&g).unwrap_err().to_string(),
        ] {
            assert!(e.contains("'N'") && e.contains("input 'a'"), "{e}");
        }
        InputShapes::parse(&["a=2,3", "b=2,5"])
            .unwrap()
            .resolve(&g)
            .unwrap();
    }
}
