//! Coverage of a pack by hand-written cases: which policies some case made determining, and
//! which actions of the schema some case exercises.
//!
//! Only hand-written cases count. Generated cases would cover every forbid of disabled
//! principals by construction, and coverage is meant to show what the author asserted.
//! A policy counts as covered when it was determining in some decision, also one the tenant
//! guard then overturned and also one that failed its expectation.

use std::collections::HashSet;

use cedar_policy::{EntityUid, PolicyId};

use crate::pack::{Pack, PolicyInfo};

/// Policies and actions, each with whether a case reached it.
#[derive(Clone, Debug)]
pub struct Coverage {
    /// Every policy of the pack (file, then line order) and whether it was ever determining.
    pub policies: Vec<(PolicyInfo, bool)>,
    /// Every action of the schema (sorted) and whether a case used it; empty without a schema.
    pub actions: Vec<(EntityUid, bool)>,
}

impl Coverage {
    /// Percentage of policies that were determining at least once (100 for a pack without
    /// policies).
    pub fn policy_percent(&self) -> f64 {
        percent(self.policies.iter().map(|(_, covered)| *covered))
    }

    /// Percentage of schema actions some case exercised (100 without a schema).
    pub fn action_percent(&self) -> f64 {
        percent(self.actions.iter().map(|(_, covered)| *covered))
    }

    /// The policies no case made determining.
    pub fn uncovered_policies(&self) -> impl Iterator<Item = &PolicyInfo> {
        self.policies
            .iter()
            .filter(|(_, covered)| !covered)
            .map(|(info, _)| info)
    }

    /// The schema actions no case exercises.
    pub fn uncovered_actions(&self) -> impl Iterator<Item = &EntityUid> {
        self.actions
            .iter()
            .filter(|(_, covered)| !covered)
            .map(|(action, _)| action)
    }
}

fn percent(items: impl Iterator<Item = bool>) -> f64 {
    let (mut total, mut covered) = (0u32, 0u32);
    for item in items {
        total += 1;
        covered += u32::from(item);
    }
    if total == 0 {
        100.0
    } else {
        f64::from(covered) * 100.0 / f64::from(total)
    }
}

pub(crate) fn measure(
    pack: &Pack,
    determining: &HashSet<PolicyId>,
    actions: &HashSet<EntityUid>,
) -> Coverage {
    let policies = pack
        .policies()
        .into_iter()
        .map(|info| (info.clone(), determining.contains(&info.id)))
        .collect();
    let mut schema_actions: Vec<EntityUid> = pack
        .schema()
        .map(|schema| schema.actions().cloned().collect())
        .unwrap_or_default();
    schema_actions.sort_by_key(ToString::to_string);
    let actions = schema_actions
        .into_iter()
        .map(|action| {
            let covered = actions.contains(&action);
            (action, covered)
        })
        .collect();
    Coverage { policies, actions }
}
