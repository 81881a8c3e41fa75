//! Settings chosen by name: the importance criterion, the reduction, the normalizer and the
//! schedule, named once here for the command line, and checked against the names reports
//! write (serde).

use crate::{Criterion, Normalizer, Reduction, ScheduleKind};

/// A setting chosen by name.
///
/// Invariant: `ALL` lists every value once, and `name` is the name serde writes for it (a test
/// checks both), so the command line and reports agree.
pub trait Named: Copy + Sized + 'static {
    /// Every value, in the order they are listed to users.
    const ALL: &'static [Self];
    /// The value's name.
    fn name(self) -> &'static str;
    /// The value named `name`, if any.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name)
    }
}

impl Named for Criterion {
    const ALL: &'static [Self] = &[
        Criterion::L1,
        Criterion::L2,
        Criterion::BnScale,
        Criterion::Fpgm,
        Criterion::Lamp,
        Criterion::Random,
        Criterion::Apoz,
        Criterion::MeanAct,
    ];
    fn name(self) -> &'static str {
        match self {
            Criterion::L1 => "l1",
            Criterion::L2 => "l2",
            Criterion::BnScale => "bn-scale",
            Criterion::Fpgm => "fpgm",
            Criterion::Lamp => "lamp",
            Criterion::Random => "random",
            Criterion::Apoz => "apoz",
            Criterion::MeanAct => "mean-act",
        }
    }
}

impl Named for Reduction {
    const ALL: &'static [Self] = &[Reduction::Mean, Reduction::Sum, Reduction::Max];
    fn name(self) -> &'static str {
        match self {
            Reduction::Mean => "mean",
            Reduction::Sum => "sum",
            Reduction::Max => "max",
        }
    }
}

impl Named for Normalizer {
    const ALL: &'static [Self] = &[
        Normalizer::None,
        Normalizer::Mean,
        Normalizer::Max,
        Normalizer::Sum,
        Normalizer::MinMax,
    ];
    fn name(self) -> &'static str {
        match self {
            Normalizer::None => "none",
            Normalizer::Mean => "mean",
            Normalizer::Max => "max",
            Normalizer::Sum => "sum",
            Normalizer::MinMax => "min-max",
        }
    }
}

impl Named for ScheduleKind {
    const ALL: &'static [Self] = &[ScheduleKind::Linear, ScheduleKind::Agp];
    fn name(self) -> &'static str {
        match self {
            ScheduleKind::Linear => "linear",
            ScheduleKind::Agp => "agp",
        }
    }
}
