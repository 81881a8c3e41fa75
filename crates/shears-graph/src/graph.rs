//! The [`DependencyGraph`]: channel dimensions of a model and the couplings between them.
//!
//! A *dim* is one axis of one value (an activation or a parameter), or a virtual per-group axis
//! a rule introduces. Each index of a dim is an *atom*. Rules link dims through index maps;
//! linked atoms must be removed together, so the connected sets of atoms are the *units* of
//! pruning. Units that touch exactly the same dims are interchangeable channels of one *group*
//! (a conv's output channels, with everything coupled to them). A dim is *fixed* when its size
//! must not change (graph inputs and outputs, axes an op does not map, ops without a rule); every
//! unit touching a fixed dim is blocked, and so is its group.
//!
//! Building is one pass over the nodes (rules), one union per linked atom pair, and one pass
//! over the atoms to form units and groups: linear in the model's channel count.

use std::collections::HashMap;

use petgraph::graph::{NodeIndex, UnGraph};
use shears_onnx::{Model, NodeId, ValueId, ValueKind};

use crate::rules::{self, Coupling, DimRef, Link};
use crate::union_find::UnionFind;

/// Index of a dim in [`DependencyGraph::dims`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DimId(pub u32);

/// What a dim is an axis of.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DimKey {
    /// Axis `1` of value `0`.
    Axis(ValueId, usize),
    /// Virtual axis `1` of node `0` (a per-group position).
    Virtual(NodeId, usize),
}

/// Why a dim's size must stay.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fix {
    /// The node that fixes it; `None` for graph inputs and outputs.
    pub node: Option<NodeId>,
    pub reason: String,
}

/// One channel dimension.
///
/// Invariant: its atoms are `atom_start .. atom_start + size`.
#[derive(Clone, Debug)]
pub struct DimInfo {
    pub key: DimKey,
    pub size: usize,
    pub atom_start: u32,
    /// Reasons this dim's size is fixed (empty when free).
    pub fixes: Vec<Fix>,
    /// Nodes whose rules link this dim (the ops that "force" it into a plan).
    pub linked_by: Vec<NodeId>,
    /// Nodes that mix this dim's channels without a weight.
    pub mixed_by: Vec<NodeId>,
    /// Whether the dim is an axis of a parameter: an initializer or a Constant node's output.
    pub is_param: bool,
}

/// Index of a unit (a connected set of atoms).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitId(pub u32);

/// Index of a group in [`DependencyGraph::groups`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub u32);

/// Coupled channels that are pruned together: units touching the same dims.
///
/// Invariants: `dims` is sorted and every unit of the group touches exactly these dims;
/// `units` are in order of their first atom, so channel k of the root is (usually) unit k.
#[derive(Clone, Debug)]
pub struct Group {
    pub id: GroupId,
    pub dims: Vec<DimId>,
    pub units: Vec<UnitId>,
    /// The dim the group is named after: a layer's output-channel weight axis when there is one.
    pub root: DimId,
    /// Fixed dims among `dims`, with the reasons: the group is prunable iff this is empty.
    pub blockers: Vec<(DimId, Fix)>,
}

impl Group {
    pub fn is_prunable(&self) -> bool {
        self.blockers.is_empty()
    }
}

/// The coupling edge between two dims, kept for explanations.
#[derive(Clone, Debug)]
pub struct Edge {
    pub node: NodeId,
    pub map: crate::channel_map::ChannelMap,
}

/// The dependency graph of a model.
///
/// Invariants: built from one `Model` with static shapes; read-only once built. Dims appear in
/// order of first mention (nodes in topological order), so ids and group order are
/// deterministic.
#[derive(Debug)]
pub struct DependencyGraph {
    pub dims: Vec<DimInfo>,
    dim_of: HashMap<DimKey, DimId>,
    /// Dims as petgraph nodes, couplings as edges.
    pub couplings: UnGraph<DimId, Edge>,
    /// Per node (by `NodeId`), its rule's verdict.
    pub verdicts: Vec<Result<Coupling, String>>,
    atom_dim: Vec<u32>,
    unit_of_atom: Vec<u32>,
    unit_atom_start: Vec<u32>,
    unit_atoms: Vec<u32>,
    unit_group: Vec<u32>,
    pub groups: Vec<Group>,
}

impl DependencyGraph {
    /// Builds the graph of `model`, whose values must carry static shapes where known.
    pub fn build(model: &Model) -> DependencyGraph {
        Builder::new(model).run()
    }

    pub fn dim(&self, id: DimId) -> &DimInfo {
        &self.dims[id.0 as usize]
    }
    pub fn dim_id(&self, key: DimKey) -> Option<DimId> {
        self.dim_of.get(&key).copied()
    }
    pub fn group(&self, id: GroupId) -> &Group {
        &self.groups[id.0 as usize]
    }
    /// The dim an atom belongs to.
    pub fn atom_dim(&self, atom: u32) -> DimId {
        DimId(self.atom_dim[atom as usize])
    }
    /// The unit of index `i` of dim `d`.
    pub fn unit_at(&self, d: DimId, i: usize) -> Option<UnitId> {
        let info = self.dim(d);
        (i < info.size).then(|| UnitId(self.unit_of_atom[info.atom_start as usize + i]))
    }
    /// The atoms of a unit, ascending.
    pub fn unit_atoms(&self, u: UnitId) -> &[u32] {
        let s = self.unit_atom_start[u.0 as usize] as usize;
        let e = self.unit_atom_start[u.0 as usize + 1] as usize;
        &self.unit_atoms[s..e]
    }
    /// The group a unit belongs to, if the unit touches a parameter.
    pub fn unit_group(&self, u: UnitId) -> Option<GroupId> {
        let g = self.unit_group[u.0 as usize];
        (g != u32::MAX).then_some(GroupId(g))
    }
    /// The group that dim `d`'s index `i` belongs to.
    pub fn group_at(&self, d: DimId, i: usize) -> Option<GroupId> {
        self.unit_group(self.unit_at(d, i)?)
    }
}

struct Builder<'m> {
    model: &'m Model,
    dims: Vec<DimInfo>,
    dim_of: HashMap<DimKey, DimId>,
    atom_dim: Vec<u32>,
    uf: UnionFind,
    couplings: UnGraph<DimId, Edge>,
    petgraph_node: Vec<NodeIndex>,
}

impl<'m> Builder<'m> {
    fn new(model: &'m Model) -> Self {
        Builder {
            model,
            dims: Vec::new(),
            dim_of: HashMap::new(),
            atom_dim: Vec::new(),
            uf: UnionFind::new(0),
            couplings: UnGraph::default(),
            petgraph_node: Vec::new(),
        }
    }

    /// Parameters are floating-point constants; integer constants are shape arithmetic.
    fn is_param(&self, v: ValueId) -> bool {
        use shears_onnx::proto::tensor_proto::DataType as D;
        let g = &self.model.graph;
        let constant = match g.value(v).kind {
            ValueKind::Initializer(_) => true,
            ValueKind::NodeOutput { node, .. } => g.node(node).op_type == "Constant",
            ValueKind::Input => false,
        };
        constant
            && self.model.constant(v).is_some_and(|t| {
                [D::Float, D::Float16, D::Bfloat16, D::Double]
                    .iter()
                    .any(|&d| t.data_type == d as i32)
            })
    }

    /// The dim for `key` with `size` atoms, created on first mention.
    fn dim(&mut self, key: DimKey, size: usize) -> DimId {
        if let Some(&d) = self.dim_of.get(&key) {
            return d;
        }
        let id = DimId(self.dims.len() as u32);
        let atom_start = self.atom_dim.len() as u32;
        self.atom_dim.extend(std::iter::repeat_n(id.0, size));
        self.uf.grow(size);
        let is_param = matches!(key, DimKey::Axis(v, _) if self.is_param(v));
        self.dims.push(DimInfo {
            key,
            size,
            atom_start,
            fixes: Vec::new(),
            linked_by: Vec::new(),
            mixed_by: Vec::new(),
            is_param,
        });
        self.dim_of.insert(key, id);
        self.petgraph_node.push(self.couplings.add_node(id));
        id
    }

    fn value_dim(&mut self, v: ValueId, axis: usize) -> Option<DimId> {
        let size = *self.model.graph.value(v).shape.as_ref()?.get(axis)?;
        Some(self.dim(DimKey::Axis(v, axis), size))
    }

    fn resolve(&mut self, node: NodeId, c: &Coupling, r: DimRef) -> Option<DimId> {
        match r {
            DimRef::Axis(v, a) => self.value_dim(v, a),
            DimRef::Virtual(k) => Some(self.dim(DimKey::Virtual(node, k), *c.virtuals.get(k)?)),
        }
    }

    fn fix(&mut self, d: DimId, node: Option<NodeId>, reason: String) {
        let info = &mut self.dims[d.0 as usize];
        info.fixes.push(Fix { node, reason });
        let (s, n) = (info.atom_start, info.size as u32);
        for a in s..s + n {
            self.uf.set_fixed(a);
        }
    }

    /// Applies a link; returns false (and links nothing) when the map does not fit the sizes.
    fn link(&mut self, node: NodeId, c: &Coupling, l: &Link) -> bool {
        let (Some(a), Some(b)) = (self.resolve(node, c, l.a), self.resolve(node, c, l.b)) else {
            return false;
        };
        let (ia, ib) = (&self.dims[a.0 as usize], &self.dims[b.0 as usize]);
        if !l.map.check(ia.size, ib.size) {
            return false;
        }
        let (sa, sb, na) = (ia.atom_start, ib.atom_start, ia.size);
        l.map
            .for_each_pair(na, |i, j| self.uf.union(sa + i as u32, sb + j as u32));
        for d in [a, b] {
            let lb = &mut self.dims[d.0 as usize].linked_by;
            if lb.last() != Some(&node) {
                lb.push(node);
            }
        }
        let (pa, pb) = (
            self.petgraph_node[a.0 as usize],
            self.petgraph_node[b.0 as usize],
        );
        self.couplings.add_edge(
            pa,
            pb,
            Edge {
                node,
                map: l.map.clone(),
            },
        );
        true
    }

    fn run(mut self) -> DependencyGraph {
        let g = &self.model.graph;
        let verdicts: Vec<Result<Coupling, String>> = g
            .node_ids()
            .map(|id| rules::couple(self.model, id))
            .collect();

        // Graph inputs and outputs keep their shapes.
        for (&v, what) in g
            .inputs
            .iter()
            .map(|v| (v, "graph input"))
            .chain(g.outputs.iter().map(|v| (v, "graph output")))
        {
            let rank = g.value(v).shape.as_ref().map_or(0, |s| s.len());
            for ax in 0..rank {
                if let Some(d) = self.value_dim(v, ax) {
                    self.fix(d, None, format!("'{}' is a {what}", g.value(v).name));
                }
            }
        }

        // Phase 1: every link except deferred reshape factors; fix what nodes leave unmapped.
        let mut deferred = Vec::new();
        for (id, verdict) in g.node_ids().zip(&verdicts) {
            let node = g.node(id);
            match verdict {
                Ok(c) => {
                    let mut mentioned: Vec<(ValueId, usize)> = Vec::new();
                    let mut bad_link = false;
                    for l in &c.links {
                        if !self.link(id, c, l) {
                            bad_link = true;
                        }
                        for r in [l.a, l.b] {
                            if let DimRef::Axis(v, a) = r {
                                mentioned.push((v, a));
                            }
                        }
                    }
                    if let Some(f) = &c.deferred {
                        for s in &f.splits {
                            mentioned.push(s.single);
                            mentioned.extend(s.factors.iter().map(|&(a, _)| (s.factors_of, a)));
                        }
                        deferred.push((id, f.clone()));
                    }
                    // A mixed axis may change size (the op only computes differently).
                    for &(v, a) in &c.mixing {
                        mentioned.push((v, a));
                        if let Some(d) = self.value_dim(v, a) {
                            self.dims[d.0 as usize].mixed_by.push(id);
                        }
                    }
                    for (v, a, reason) in &c.fixed {
                        mentioned.push((*v, *a)); // fixed here, with its own reason
                        if let Some(d) = self.value_dim(*v, *a) {
                            let why = format!("{} '{}' {reason}", node.op_type, node.name);
                            self.fix(d, Some(id), why);
                        }
                    }
                    let why = if bad_link {
                        format!(
                            "{} '{}' has a coupling that does not fit the shapes",
                            node.op_type, node.name
                        )
                    } else {
                        format!("{} '{}' does not map this axis", node.op_type, node.name)
                    };
                    self.fix_unmentioned(id, c, &mentioned, &why);
                }
                Err(reason) => {
                    let why = format!("{} '{}' is opaque: {reason}", node.op_type, node.name);
                    self.fix_unmentioned(id, &Coupling::default(), &[], &why);
                }
            }
        }

        // Phase 2: reshape factors, in topological order, each seeing what is fixed so far.
        for (id, f) in deferred {
            let mut links = {
                let uf = &mut self.uf;
                let dims = &self.dims;
                let dim_of = &self.dim_of;
                f.resolve(&mut |v, a| match dim_of.get(&DimKey::Axis(v, a)) {
                    Some(d) => {
                        let info = &dims[d.0 as usize];
                        let s = info.atom_start;
                        (s..s + info.size as u32).all(|x| !uf.is_fixed(x))
                    }
                    None => false,
                })
            };
            let node = g.node(id);
            let c = verdicts[id.0 as usize]
                .as_ref()
                .expect("deferred only from Ok");
            let chosen: Vec<(ValueId, usize)> = links
                .iter()
                .flat_map(|l| [l.a, l.b])
                .filter_map(|r| match r {
                    DimRef::Axis(v, a) => Some((v, a)),
                    DimRef::Virtual(_) => None,
                })
                .collect();
            for l in links.drain(..) {
                self.link(id, c, &l);
            }
            for s in &f.splits {
                for r in std::iter::once(s.single)
                    .chain(s.factors.iter().map(|&(a, _)| (s.factors_of, a)))
                {
                    if chosen.contains(&r) {
                        continue;
                    }
                    if let Some(d) = self.value_dim(r.0, r.1) {
                        self.fix(
                            d,
                            Some(id),
                            format!(
                                "{} '{}' splits or merges this axis; it keeps its size",
                                node.op_type, node.name
                            ),
                        );
                    }
                }
            }
        }

        let mut graph = DependencyGraph {
            dims: self.dims,
            dim_of: self.dim_of,
            couplings: self.couplings,
            verdicts,
            atom_dim: self.atom_dim,
            unit_of_atom: Vec::new(),
            unit_atom_start: Vec::new(),
            unit_atoms: Vec::new(),
            unit_group: Vec::new(),
            groups: Vec::new(),
        };
        crate::groups::form_units_and_groups(&mut graph, &mut self.uf, self.model);
        graph
    }

    /// Fixes every axis of the node's data inputs and outputs that `mentioned` lacks.
    fn fix_unmentioned(
        &mut self,
        id: NodeId,
        c: &Coupling,
        mentioned: &[(ValueId, usize)],
        why: &str,
    ) {
        let node = self.model.graph.node(id);
        let inputs = node
            .inputs
            .iter()
            .enumerate()
            .filter(|(slot, _)| !c.shape_only.contains(slot))
            .filter_map(|(_, v)| *v);
        let outputs = node.outputs.iter().filter_map(|v| *v).filter(|_| !c.source);
        let values: Vec<ValueId> = inputs.chain(outputs).collect();
        for v in values {
            let rank = self
                .model
                .graph
                .value(v)
                .shape
                .as_ref()
                .map_or(0, |s| s.len());
            for ax in 0..rank {
                if mentioned.contains(&(v, ax)) {
                    continue;
                }
                if let Some(d) = self.value_dim(v, ax) {
                    self.fix(d, Some(id), why.to_string());
                }
            }
        }
    }
}

/// Sets the unit and group tables; called once by the builder.
pub(crate) struct UnitTables {
    pub unit_of_atom: Vec<u32>,
    pub unit_atom_start: Vec<u32>,
    pub unit_atoms: Vec<u32>,
    pub unit_group: Vec<u32>,
    pub groups: Vec<Group>,
}

impl DependencyGraph {
    pub(crate) fn set_units(&mut self, t: UnitTables) {
        self.unit_of_atom = t.unit_of_atom;
        self.unit_atom_start = t.unit_atom_start;
        self.unit_atoms = t.unit_atoms;
        self.unit_group = t.unit_group;
        self.groups = t.groups;
    }
    pub(crate) fn atom_count(&self) -> usize {
        self.atom_dim.len()
    }
    pub(crate) fn atom_dims(&self) -> &[u32] {
        &self.atom_dim
    }
}
