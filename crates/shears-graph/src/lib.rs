//! The DependencyGraph: which channel slices of which tensors are coupled.
//!
//! [`rules`] holds one coupling rule per op kind; [`DependencyGraph::build`] walks the model,
//! asks the rules, and forms units (atoms removed together) and groups (interchangeable units).
//! The graph builder never inspects op types itself.

pub mod channel_map;
pub mod graph;
mod groups;
pub mod rules;
pub mod union_find;

pub use channel_map::ChannelMap;
pub use graph::{
    DependencyGraph, DimId, DimInfo, DimKey, Fix, Granularity, Group, GroupId, UnitId, MAX_ATOMS,
    MAX_AXIS_ATOMS,
};
