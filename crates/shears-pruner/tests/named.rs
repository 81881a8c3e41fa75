//! Settings are named once (`Named`), and those names are the ones reports write.

use shears_pruner::named::Named;
use shears_pruner::{Criterion, Normalizer, Reduction, ScheduleKind};

fn check<T: Named + serde::Serialize + PartialEq + std::fmt::Debug>(variants: usize) {
    assert_eq!(T::ALL.len(), variants);
    for (i, v) in T::ALL.iter().enumerate() {
        let serde_name = serde_json::to_value(v).unwrap();
        assert_eq!(serde_name.as_str(), Some(v.name()), "{v:?}");
        assert_eq!(T::from_name(v.name()), Some(*v));
        assert!(!T::ALL[..i].contains(v), "{v:?} listed twice");
    }
    assert_eq!(T::from_name("no-such-setting"), None);
}

#[test]
fn every_setting_is_listed_once_under_the_name_reports_write() {
    // Every variant of each enum (the names cover them: `name` matches exhaustively).
    check::<Criterion>(8);
    check::<Reduction>(3);
    check::<Normalizer>(5);
    check::<ScheduleKind>(2);
}
