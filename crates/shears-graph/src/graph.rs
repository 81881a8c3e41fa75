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

use std::sync::OnceLock;

use petgraph::graph::{NodeIndex, UnGraph};
use shears_onnx::{Model, NodeId, ValueId, ValueKind};

use crate::channel_map::ChannelMap;
use crate::rules::{self, Coupling, DimRef, Link};
use crate::union_find::UnionFind;
use rustc_hash::{FxHashMap, FxHashSet};

/// The longest axis that may carry channels (no layer has more). A longer axis (the spatial,
/// sequence or batch axis of an absurd declared shape) gets no dim and no atoms, and every dim a
/// rule links to it keeps its size, so the graph's memory stays bounded by its channels.
pub const MAX_AXIS_ATOMS: usize = 1 << 24;

/// The most atoms one graph may allocate (over all dims); an axis past the budget is treated as
/// too long. Keeps every atom counter (`u32`) far from wrapping.
pub const MAX_ATOMS: usize = 1 << 27;

/// Which factor of an attention Reshape (`[.., h·d] <-> [.., h, d]`) carries the channels.
///
/// The two choices partition the same weight rows differently (position `p` of every head, or
/// every position of head `j`), so they cannot be units of one graph: a model has one graph
/// of each kind, and plans say which one they were made on.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// Head-dim positions: a unit is position `p` of every head (the largest free factor
    /// carries the channels, as for every other Reshape). Whole heads are fixed.
    #[default]
    HeadDims,
    /// Whole heads: a Reshape factor tied to a head axis ([`crate::rules::Coupling::head_axes`],
    /// or a factor merged into one, as grouped-query attention's `repeat_kv` merges key/value
    /// heads into query heads) carries the channels, so a unit is one head with its q, k, v
    /// rows and output-projection columns (with grouped-query attention, one key/value head
    /// and its query heads). Head-dim positions are fixed; every other Reshape is resolved as
    /// in [`Granularity::HeadDims`].
    Heads,
    /// Whole query heads, keeping every key/value head: like [`Granularity::Heads`], except
    /// that where grouped-query attention merges key/value heads and their repeats into query
    /// heads (`repeat_kv`), the repeat factor (an axis an Expand makes from a literal, copies
    /// of one key/value head) carries the channels. A unit is then query head `r` of every
    /// group, so removing units removes the same number of query heads from every group and
    /// no key/value head. Without grouped-query attention it is [`Granularity::Heads`].
    QueryHeads,
}

impl Granularity {
    /// Whether units are whole heads ([`Granularity::Heads`] or [`Granularity::QueryHeads`]).
    pub fn whole_heads(self) -> bool {
        matches!(self, Granularity::Heads | Granularity::QueryHeads)
    }
}

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
    /// Whether the dim is an axis of a stored quantization scale or zero point
    /// (`Coupling::quant_params`): sliced with its channels, not a parameter.
    pub is_quant_param: bool,
    /// Whether the dim indexes attention heads: identity-tied to a head axis a rule reports,
    /// or a Reshape factor merged into such an axis (key/value heads of `repeat_kv`).
    pub is_head: bool,
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
    dim_of: FxHashMap<DimKey, DimId>,
    /// Dims as petgraph nodes, couplings as edges.
    pub couplings: UnGraph<DimId, Edge>,
    /// Per node (by `NodeId`), its rule's verdict.
    pub verdicts: Vec<Result<Coupling, String>>,
    /// Per dim, its class: the dims identity links tie index by index share one set of atoms.
    dim_class: Vec<u32>,
    /// Per class, the first of its atoms (one more entry at the end).
    class_start: Vec<u32>,
    /// Per class atom, its unit.
    unit_of_class_atom: Vec<u32>,
    /// Per unit, its group or `u32::MAX`.
    unit_group: Vec<u32>,
    /// Total atoms over every dim (each dim numbers its own, from `atom_start`).
    atom_count: u32,
    /// Per unit, its atoms in every dim, built on first use (plans need it, `groups` does not).
    unit_atoms: OnceLock<UnitAtoms>,
    pub groups: Vec<Group>,
    /// Which factor of attention Reshapes carries the channels.
    pub granularity: Granularity,
}

/// Atoms by unit, as offsets into one list.
#[derive(Debug)]
struct UnitAtoms {
    start: Vec<u32>,
    atoms: Vec<u32>,
}

impl DependencyGraph {
    /// Builds the graph of `model`, whose values must carry static shapes where known.
    pub fn build(model: &Model) -> DependencyGraph {
        Self::build_with(model, Granularity::HeadDims)
    }

    /// Builds the graph of `model` with whole attention heads as units
    /// ([`Granularity::Heads`]).
    pub fn build_heads(model: &Model) -> DependencyGraph {
        Self::build_with(model, Granularity::Heads)
    }

    /// Builds the graph of `model` at the given attention granularity.
    pub fn build_with(model: &Model, granularity: Granularity) -> DependencyGraph {
        Builder::new(model, granularity).run()
    }

    /// Whether group `g` has a head axis among its dims (its units are whole heads in a
    /// [`Granularity::Heads`] graph).
    pub fn is_head_group(&self, g: GroupId) -> bool {
        self.group(g).dims.iter().any(|&d| self.dim(d).is_head)
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
        // Dims number their atoms in creation order: the last dim starting at or before it.
        let k = self.dims.partition_point(|d| d.atom_start <= atom);
        DimId(k.saturating_sub(1) as u32)
    }
    /// `(atom, dim)` for each of `atoms`, which must be ascending (as [`Self::unit_atoms`] gives
    /// them): the same answers as [`Self::atom_dim`], with one search per run of atoms of a dim
    /// rather than one per atom.
    pub fn atom_dims<'a>(&'a self, atoms: &'a [u32]) -> impl Iterator<Item = (u32, DimId)> + 'a {
        // The current dim and the atom range [start, end) whose atoms it owns.
        let mut current: Option<(DimId, u32, u32)> = None;
        atoms.iter().map(move |&a| match current {
            Some((d, start, end)) if start <= a && a < end => (a, d),
            _ => {
                let d = self.atom_dim(a);
                let start = self.dims[d.0 as usize].atom_start;
                let end = self
                    .dims
                    .get(d.0 as usize + 1)
                    .map_or(u32::MAX, |n| n.atom_start);
                current = Some((d, start, end));
                (a, d)
            }
        })
    }
    /// The unit of index `i` of dim `d`.
    pub fn unit_at(&self, d: DimId, i: usize) -> Option<UnitId> {
        let info = self.dim(d);
        (i < info.size).then(|| {
            let c = self.class_start[self.dim_class[d.0 as usize] as usize] as usize;
            UnitId(self.unit_of_class_atom[c + i])
        })
    }
    /// The unit id ([`UnitId`]'s number) of each index of dim `d`, in index order. Dims that
    /// identity links tie index by index share one class ([`Self::dim_class`]) and so the same
    /// slice: a caller asking the same question of every dim of a group can answer it once per
    /// class.
    pub fn dim_units(&self, d: DimId) -> &[u32] {
        let c = self.class_start[self.dim_class[d.0 as usize] as usize] as usize;
        &self.unit_of_class_atom[c..c + self.dim(d).size]
    }
    /// The class of dim `d`: dims of one class have the same size and the same unit at every
    /// index ([`Self::dim_units`]).
    pub fn dim_class(&self, d: DimId) -> u32 {
        self.dim_class[d.0 as usize]
    }
    /// The atoms of a unit, ascending.
    pub fn unit_atoms(&self, u: UnitId) -> &[u32] {
        let t = self.unit_atoms.get_or_init(|| self.atoms_by_unit());
        let s = t.start[u.0 as usize] as usize;
        let e = t.start[u.0 as usize + 1] as usize;
        &t.atoms[s..e]
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
    /// How many units there are.
    pub fn unit_count(&self) -> usize {
        self.unit_group.len()
    }

    /// Every dim's atoms, sorted by unit (a counting sort; atoms ascend within a unit).
    fn atoms_by_unit(&self) -> UnitAtoms {
        let units = self.unit_group.len();
        let mut start = vec![0u32; units + 1];
        let unit_of = |d: usize, i: usize| -> usize {
            let c = self.class_start[self.dim_class[d] as usize] as usize;
            self.unit_of_class_atom[c + i] as usize
        };
        for (d, info) in self.dims.iter().enumerate() {
            for i in 0..info.size {
                start[unit_of(d, i) + 1] += 1;
            }
        }
        for u in 0..units {
            start[u + 1] += start[u];
        }
        let mut fill = start.clone();
        let mut atoms = vec![0u32; self.atom_count as usize];
        for (d, info) in self.dims.iter().enumerate() {
            for i in 0..info.size {
                let u = unit_of(d, i);
                atoms[fill[u] as usize] = info.atom_start + i as u32;
                fill[u] += 1;
            }
        }
        UnitAtoms { start, atoms }
    }
}

struct Builder<'m> {
    model: &'m Model,
    granularity: Granularity,
    dims: Vec<DimInfo>,
    dim_of: FxHashMap<DimKey, DimId>,
    atom_count: u32,
    /// Union-find over dims: identity links (the vast majority) tie whole dims, index i to
    /// index i, so they are unions of dims rather than of every atom pair.
    dim_uf: UnionFind,
    /// Links with any other map, applied to atoms once the dim classes are known.
    pending: Vec<(DimId, DimId, ChannelMap)>,
    /// Set once the dim classes are fixed (after phase 1).
    classes: Option<Classes>,
    /// Union-find over class atoms (exists once `classes` does).
    uf: UnionFind,
    couplings: UnGraph<DimId, Edge>,
    petgraph_node: Vec<NodeIndex>,
    /// Axes refused a dim (over [`MAX_AXIS_ATOMS`] or past [`MAX_ATOMS`]), with why.
    too_long: FxHashMap<DimKey, String>,
    /// Stored integer tensors that a rule reads as a layer's quantized values
    /// (`Coupling::quantized`): parameters whatever their element type.
    quantized: FxHashSet<ValueId>,
    /// Quantization scales and zero points (`Coupling::quant_params`): sliced with their
    /// channels, never parameters.
    quant_params: FxHashSet<ValueId>,
}

/// Dims grouped by identity links: every dim of a class has the same size and shares the
/// class's atoms index by index.
///
/// Invariant: `class_start` has one entry per class plus the total; `dim_class` one per dim.
#[derive(Debug, Default)]
pub(crate) struct Classes {
    pub dim_class: Vec<u32>,
    pub class_start: Vec<u32>,
    /// Dims of each class, ascending: `class_dims[class_dim_start[c]..class_dim_start[c + 1]]`.
    pub class_dim_start: Vec<u32>,
    pub class_dims: Vec<u32>,
}

impl Classes {
    pub fn count(&self) -> usize {
        self.class_start.len() - 1
    }
    pub fn atoms(&self, c: u32) -> std::ops::Range<u32> {
        self.class_start[c as usize]..self.class_start[c as usize + 1]
    }
    pub fn dims(&self, c: u32) -> &[u32] {
        let (s, e) = (
            self.class_dim_start[c as usize] as usize,
            self.class_dim_start[c as usize + 1] as usize,
        );
        &self.class_dims[s..e]
    }
    fn of_dim(&self, d: DimId) -> u32 {
        self.dim_class[d.0 as usize]
    }
}

/// The element type of a constant value (initializer or Constant node), read without copying
/// the tensor.
fn constant_dtype(model: &Model, v: ValueId) -> Option<i32> {
    use shears_onnx::proto::tensor_proto::DataType as D;
    let g = &model.graph;
    match g.value(v).kind {
        ValueKind::Initializer(_) => model.initializer(v).map(|t| t.data_type),
        ValueKind::NodeOutput { node, .. } => {
            let n = g.node(node);
            if n.op_type != "Constant" {
                return None;
            }
            let a = n.attrs.first()?;
            match a.name.as_str() {
                "value" => a.t.as_ref().map(|t| t.data_type),
                "value_float" | "value_floats" => Some(D::Float as i32),
                "value_int" | "value_ints" => Some(D::Int64 as i32),
                _ => None,
            }
        }
        ValueKind::Input => None,
    }
}

impl<'m> Builder<'m> {
    fn new(model: &'m Model, granularity: Granularity) -> Self {
        Builder {
            model,
            granularity,
            dims: Vec::new(),
            dim_of: FxHashMap::default(),
            atom_count: 0,
            dim_uf: UnionFind::new(0),
            pending: Vec::new(),
            classes: None,
            uf: UnionFind::new(0),
            couplings: UnGraph::default(),
            petgraph_node: Vec::new(),
            too_long: FxHashMap::default(),
            quantized: FxHashSet::default(),
            quant_params: FxHashSet::default(),
        }
    }

    /// Parameters are floating-point constants, and the integer constants a quantized layer
    /// reads as its weights; other integer constants are shape arithmetic, and quantization
    /// scales and zero points describe a parameter rather than being one.
    fn is_param(&self, v: ValueId) -> bool {
        use shears_onnx::proto::tensor_proto::DataType as D;
        if self.quant_params.contains(&v) {
            return false;
        }
        constant_dtype(self.model, v).is_some_and(|dt| {
            self.quantized.contains(&v)
                || [D::Float, D::Float16, D::Bfloat16, D::Double]
                    .iter()
                    .any(|&d| dt == d as i32)
        })
    }

    /// The dim for `key` with `size` atoms, created on first mention; `None` for an axis too
    /// long to carry channels or past the graph's atom budget (recorded in `too_long`).
    fn dim(&mut self, key: DimKey, size: usize) -> Option<DimId> {
        if let Some(&d) = self.dim_of.get(&key) {
            return Some(d);
        }
        if self.too_long.contains_key(&key) {
            return None;
        }
        // Named only when refused: most dims never need it.
        let what = || match key {
            DimKey::Axis(v, a) => format!("'{}' axis {a}", self.model.graph.value(v).name),
            DimKey::Virtual(n, k) => format!("'{}' position {k}", self.model.graph.node(n).name),
        };
        if size > MAX_AXIS_ATOMS {
            let why = format!(
                "{} has {size} elements, more than the {MAX_AXIS_ATOMS} a channel axis may have",
                what()
            );
            self.too_long.insert(key, why);
            return None;
        }
        if self.atom_count as usize + size > MAX_ATOMS {
            let why = format!(
                "{} ({size} elements) would take the graph past its limit of {MAX_ATOMS} atoms",
                what()
            );
            self.too_long.insert(key, why);
            return None;
        }
        let id = DimId(self.dims.len() as u32);
        let atom_start = self.atom_count;
        self.atom_count += size as u32;
        self.dim_uf.grow(1);
        let is_param = matches!(key, DimKey::Axis(v, _) if self.is_param(v));
        let is_quant_param = matches!(key, DimKey::Axis(v, _)
            if self.quant_params.contains(&v) && rules::is_stored(self.model, v));
        self.dims.push(DimInfo {
            key,
            size,
            atom_start,
            fixes: Vec::new(),
            linked_by: Vec::new(),
            mixed_by: Vec::new(),
            is_param,
            is_quant_param,
            is_head: false,
        });
        self.dim_of.insert(key, id);
        self.petgraph_node.push(self.couplings.add_node(id));
        // A dim first seen after the classes are set gets a class of its own.
        if let Some(cl) = &mut self.classes {
            let c = cl.count() as u32;
            let end = *cl.class_start.last().expect("class_start has a total");
            cl.dim_class.push(c);
            cl.class_start.push(end + size as u32);
            cl.class_dims.push(id.0);
            cl.class_dim_start.push(cl.class_dims.len() as u32);
            self.uf.grow(size);
        }
        Some(id)
    }

    fn value_dim(&mut self, v: ValueId, axis: usize) -> Option<DimId> {
        let size = *self.model.graph.value(v).shape.as_ref()?.get(axis)?;
        self.dim(DimKey::Axis(v, axis), size)
    }

    fn resolve(&mut self, node: NodeId, c: &Coupling, r: DimRef) -> Option<DimId> {
        match r {
            DimRef::Axis(v, a) => self.value_dim(v, a),
            DimRef::Virtual(k) => self.dim(DimKey::Virtual(node, k), *c.virtuals.get(k)?),
        }
    }

    /// Why `r` has no dim, if it was refused one for its length.
    fn too_long_reason(&self, node: NodeId, r: DimRef) -> Option<&String> {
        let key = match r {
            DimRef::Axis(v, a) => DimKey::Axis(v, a),
            DimRef::Virtual(k) => DimKey::Virtual(node, k),
        };
        self.too_long.get(&key)
    }

    fn fix(&mut self, d: DimId, node: Option<NodeId>, reason: String) {
        self.dims[d.0 as usize].fixes.push(Fix { node, reason });
        // Before the classes exist, fixes are applied to atoms when they are formed.
        if let Some(cl) = &self.classes {
            for a in cl.atoms(cl.of_dim(d)) {
                self.uf.set_fixed(a);
            }
        }
    }

    /// Applies a link; returns false (and links nothing) when the map does not fit the sizes.
    fn link(&mut self, node: NodeId, c: &Coupling, l: &Link) -> bool {
        let (ra, rb) = (self.resolve(node, c, l.a), self.resolve(node, c, l.b));
        let (Some(a), Some(b)) = (ra, rb) else {
            // A side too long to carry channels cannot follow a cut: the other keeps its size.
            for (d, other) in [(ra, l.b), (rb, l.a)] {
                if let (Some(d), Some(why)) = (d, self.too_long_reason(node, other)) {
                    let n = self.model.graph.node(node);
                    let why = format!("{} '{}' links it to {why}", n.op_type, n.name);
                    self.fix(d, Some(node), why);
                }
            }
            return false;
        };
        let (ia, ib) = (&self.dims[a.0 as usize], &self.dims[b.0 as usize]);
        if !l.map.check(ia.size, ib.size) {
            return false;
        }
        match &self.classes {
            None if l.map == ChannelMap::Identity => self.dim_uf.union(a.0, b.0),
            None => self.pending.push((a, b, l.map.clone())),
            Some(_) => self.link_atoms(a, b, &l.map),
        }
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

    /// Ties the atoms of `a` and `b` pair by pair through `map` (classes must exist).
    fn link_atoms(&mut self, a: DimId, b: DimId, map: &ChannelMap) {
        let cl = self.classes.as_ref().expect("classes are set");
        let (sa, sb) = (
            cl.class_start[cl.of_dim(a) as usize],
            cl.class_start[cl.of_dim(b) as usize],
        );
        let na = self.dims[a.0 as usize].size;
        let uf = &mut self.uf;
        map.for_each_pair(na, |i, j| uf.union(sa + i as u32, sb + j as u32));
    }

    /// Ends phase 1: the dim classes of the identity links get their atoms, fixed where a
    /// member dim is fixed, and the pending links tie them.
    fn form_classes(&mut self) {
        let n = self.dims.len();
        let mut class_of_root = vec![u32::MAX; n];
        let mut cl = Classes::default();
        cl.class_start.push(0);
        let mut members = vec![0u32; 1];
        for d in 0..n {
            let r = self.dim_uf.find(d as u32) as usize;
            if class_of_root[r] == u32::MAX {
                class_of_root[r] = cl.count() as u32;
                let end = *cl.class_start.last().expect("total");
                cl.class_start.push(end + self.dims[d].size as u32);
                members.push(0);
            }
            let c = class_of_root[r];
            cl.dim_class.push(c);
            members[c as usize + 1] += 1;
        }
        for c in 0..cl.count() {
            members[c + 1] += members[c];
        }
        let mut fill = members.clone();
        cl.class_dims = vec![0; n];
        for d in 0..n {
            let c = cl.dim_class[d] as usize;
            cl.class_dims[fill[c] as usize] = d as u32;
            fill[c] += 1;
        }
        cl.class_dim_start = members;
        self.uf = UnionFind::new(*cl.class_start.last().expect("total") as usize);
        for (d, info) in self.dims.iter().enumerate() {
            if !info.fixes.is_empty() {
                for a in cl.atoms(cl.dim_class[d]) {
                    self.uf.set_fixed(a);
                }
            }
        }
        self.classes = Some(cl);
        for (a, b, map) in std::mem::take(&mut self.pending) {
            self.link_atoms(a, b, &map);
        }
    }

    fn run(mut self) -> DependencyGraph {
        let g = &self.model.graph;
        let verdicts: Vec<Result<Coupling, String>> = g
            .node_ids()
            .map(|id| rules::couple_at(self.model, id, self.granularity))
            .collect();
        for (id, verdict) in g.node_ids().zip(&verdicts) {
            let Ok(c) = verdict else { continue };
            let node = g.node(id);
            self.quantized
                .extend(c.quantized.iter().filter_map(|&s| node.input(s)));
            self.quant_params
                .extend(c.quant_params.iter().filter_map(|&s| node.input(s)));
        }

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
                    mentioned.extend(c.made.iter().copied());
                    // A made axis gets its dim when something links or fixes it; with query
                    // heads as units, a repeat axis must exist as a class before the Reshape
                    // merging it into query heads is resolved, to be chosen there.
                    if self.granularity == Granularity::QueryHeads {
                        for &(v, a) in &c.made {
                            self.value_dim(v, a);
                        }
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

        self.fix_symbolic();
        self.form_classes();

        let head_class = self.head_classes(&verdicts, &deferred);
        // Classes an Expand makes from a literal (the repeats of grouped-query attention's
        // `repeat_kv`, copies of one key/value head).
        let made_class = {
            let cl = self.classes.as_ref().expect("classes are set");
            let mut made = vec![false; cl.count()];
            for c in verdicts.iter().flatten() {
                for &(v, a) in &c.made {
                    if let Some(&d) = self.dim_of.get(&DimKey::Axis(v, a)) {
                        made[cl.of_dim(d) as usize] = true;
                    }
                }
            }
            made
        };

        // Phase 2: reshape factors, in topological order, each seeing what is fixed so far.
        // With whole heads, a head factor wins; among head factors, a key/value head (not made
        // by an Expand) for `Heads`, a repeat (made) for `QueryHeads`.
        let granularity = self.granularity;
        for (id, f) in deferred {
            let mut links = {
                let uf = &mut self.uf;
                let cl = self.classes.as_ref().expect("classes are set");
                let dim_of = &self.dim_of;
                let class_of = |v, a| dim_of.get(&DimKey::Axis(v, a)).map(|&d| cl.of_dim(d));
                f.resolve_preferring(
                    &mut |v, a| match class_of(v, a) {
                        Some(c) => cl.atoms(c).all(|x| !uf.is_fixed(x)),
                        None => false,
                    },
                    &mut |v, a| {
                        let Some(c) = class_of(v, a).map(|c| c as usize) else {
                            return 0;
                        };
                        match granularity {
                            _ if !head_class[c] => 0,
                            Granularity::Heads if !made_class[c] => 2,
                            Granularity::QueryHeads if made_class[c] => 2,
                            Granularity::Heads | Granularity::QueryHeads => 1,
                            Granularity::HeadDims => 0,
                        }
                    },
                )
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
                    // With query heads as units, a key/value head axis is kept by choice,
                    // not because the Reshape cannot follow it: say so.
                    let kept_kv_head = granularity == Granularity::QueryHeads
                        && self
                            .dim_of
                            .get(&DimKey::Axis(r.0, r.1))
                            .zip(self.classes.as_ref())
                            .map(|(&d, cl)| {
                                let c = cl.of_dim(d) as usize;
                                head_class[c] && !made_class[c]
                            })
                            .unwrap_or(false);
                    if let Some(d) = self.value_dim(r.0, r.1) {
                        let why = if kept_kv_head {
                            format!(
                                "every key/value head is kept when query heads are the units (--gqa query); {} '{}' merges this axis with its query heads",
                                node.op_type, node.name
                            )
                        } else {
                            format!(
                                "{} '{}' splits or merges this axis; it keeps its size",
                                node.op_type, node.name
                            )
                        };
                        self.fix(d, Some(id), why);
                    }
                }
            }
        }

        let classes = self.classes.take().expect("classes are set");
        let tables = crate::groups::form_units_and_groups(
            &self.dims,
            &self.dim_of,
            &verdicts,
            &classes,
            &mut self.uf,
        );
        DependencyGraph {
            dims: self.dims,
            dim_of: self.dim_of,
            couplings: self.couplings,
            verdicts,
            dim_class: classes.dim_class,
            class_start: classes.class_start,
            unit_of_class_atom: tables.unit_of_class_atom,
            unit_group: tables.unit_group,
            atom_count: self.atom_count,
            unit_atoms: OnceLock::new(),
            groups: tables.groups,
            granularity: self.granularity,
        }
    }

    /// Per class, whether it indexes attention heads: classes of the rules' head axes, then,
    /// until nothing changes, the factors of every Reshape whose single axis is one (a merge of
    /// key/value heads into query heads). Marks the dims of those classes `is_head`.
    fn head_classes(
        &mut self,
        verdicts: &[Result<Coupling, String>],
        deferred: &[(NodeId, rules::Factorization)],
    ) -> Vec<bool> {
        let cl = self.classes.as_ref().expect("classes are set");
        let mut head = vec![false; cl.count()];
        let class_of =
            |v: ValueId, a: usize| self.dim_of.get(&DimKey::Axis(v, a)).map(|&d| cl.of_dim(d));
        for c in verdicts.iter().flatten() {
            for &(v, a) in &c.head_axes {
                if let Some(k) = class_of(v, a) {
                    head[k as usize] = true;
                }
            }
        }
        // Each round marks at least one more class or stops: at most one round per split.
        loop {
            let mut changed = false;
            for (_, f) in deferred {
                for s in &f.splits {
                    if !class_of(s.single.0, s.single.1).is_some_and(|k| head[k as usize]) {
                        continue;
                    }
                    for &(a, _) in &s.factors {
                        if let Some(k) = class_of(s.factors_of, a) {
                            changed |= !std::mem::replace(&mut head[k as usize], true);
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        for d in 0..self.dims.len() {
            self.dims[d].is_head = head[cl.dim_class[d] as usize];
        }
        head
    }

    /// Fixes every node output axis whose size depends on a symbolic input dimension: shapes
    /// were inferred with a placeholder there, so nothing coupled to it may change size (graph
    /// inputs are fixed already). Done after phase 1 so that dim ids, and with them group
    /// order, are those of the same model with the dimension bound.
    fn fix_symbolic(&mut self) {
        let model = self.model;
        let g = &model.graph;
        for (&v, axes) in &model.symbolic.axes {
            let Some(node) = g.producer(v) else { continue };
            let n = g.node(node);
            for &(axis, s) in axes {
                let Some(symbol) = model.symbolic.symbols.get(s) else {
                    continue;
                };
                if let Some(d) = self.value_dim(v, axis) {
                    let why = format!(
                        "{} '{}' gives this axis a size that depends on the symbolic dimension {symbol}; pass --input-shape to give it a size",
                        n.op_type, n.name
                    );
                    self.fix(d, Some(node), why);
                }
            }
        }
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

/// What unit formation hands back to the builder.
pub(crate) struct UnitTables {
    pub unit_of_class_atom: Vec<u32>,
    pub unit_group: Vec<u32>,
    pub groups: Vec<Group>,
}
