//! A decision's Cedar entity store, assembled from shared entities.
//!
//! SECURITY-SENSITIVE: `in` and every ancestor test a decision makes read the ancestors this
//! module gives each entity.
//!
//! cedar-policy's `Entities::from_entities` takes owned entities and computes their transitive
//! closure with general-purpose machinery (a strongly-connected-components search over SipHash
//! maps, cloning every uid into several of them); per request, for a slice of about a dozen
//! entities the graph already holds parsed, that was most of an uncached decision's cost. Here
//! the slice's entities stay shared (`Arc`, as Cedar's own store keeps them), the closure is
//! computed once over the slice by a memoised depth-first walk, an entity is copied only when
//! the slice gives it ancestors it does not already list, and Cedar checks the result instead of
//! computing it (`TCComputation::EnforceAlreadyComputed`: every edge closed, no cycle), so a
//! mistake here is a refused decision, never a different one.
//!
//! The closure is Cedar's: over the entities present, following every ancestor an entity lists
//! (parents and the indirect ancestors it already carries); an ancestor outside the slice stays
//! listed and adds nothing further, as in Cedar's store. A cycle is refused, as Cedar refuses
//! it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cedar_policy_core::ast::{Entity as CoreEntity, EntityUID};
use cedar_policy_core::entities::{Entities as CoreEntities, NoEntitiesSchema, TCComputation};
use cedar_policy_core::extensions::Extensions;
use foldhash::fast::RandomState;
use warden_core::cedar_policy::{Entities, Entity};

/// Why a slice's entities cannot be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssembleError {
    /// An entity is its own ancestor.
    #[error("the entities' hierarchy has a cycle through {0}")]
    Cycle(String),
    /// Cedar refused the store (two different entities with one uid, or a closure Cedar finds
    /// incomplete).
    #[error("{0}")]
    Refused(String),
}

/// Cedar's store of `entities` (each uid once), their ancestors closed over the slice. A
/// hierarchy too deep for the shared path (see [`WORK_PER_ENTITY`]) is handed to Cedar's own
/// closure computation instead, on copies, as every slice was before this module.
pub fn assemble(entities: Vec<Arc<CoreEntity>>) -> Result<Entities, AssembleError> {
    match missing_ancestors(&entities)? {
        Some(additions) => closed_store(entities, additions),
        None => Entities::from_entities(
            entities
                .iter()
                .map(|entity| Entity::from(CoreEntity::clone(entity))),
            None,
        )
        .map_err(|error| AssembleError::Refused(error.to_string().replace('\n', " "))),
    }
}

/// [`assemble`] on the shared path only: `None` when the hierarchy is too deep for it.
pub fn assemble_shallow(entities: Vec<Arc<CoreEntity>>) -> Result<Option<Entities>, AssembleError> {
    match missing_ancestors(&entities)? {
        Some(additions) => closed_store(entities, additions).map(Some),
        None => Ok(None),
    }
}

/// The store of `entities` with `additions` (one list per entity) given as indirect
/// ancestors, checked by Cedar.
fn closed_store(
    mut entities: Vec<Arc<CoreEntity>>,
    additions: Vec<Vec<EntityUID>>,
) -> Result<Entities, AssembleError> {
    for (entity, added) in entities.iter_mut().zip(additions) {
        if !added.is_empty() {
            let entity = Arc::make_mut(entity);
            for uid in added {
                entity.add_indirect_ancestor(uid);
            }
        }
    }
    CoreEntities::new()
        .add_entities(
            entities,
            None::<&NoEntitiesSchema>,
            TCComputation::EnforceAlreadyComputed,
            Extensions::all_available(),
        )
        .map(Entities::from)
        .map_err(|error| AssembleError::Refused(error.to_string().replace('\n', " ")))
}

/// How much closure work the shared path takes on per entity of the slice (plus
/// [`WORK_BASE`]): the sum over entities of their ancestors' ancestor counts, which bounds both
/// this module's work and Cedar's check of it. Typical slices (a user, a few roles and groups,
/// a resource and its folders) stay far below; a deep chain (work cubic in its depth, where
/// Cedar's own computation is quadratic) goes to Cedar.
const WORK_PER_ENTITY: usize = 64;
/// See [`WORK_PER_ENTITY`].
const WORK_BASE: usize = 65_536;

/// For each entity, the ancestors the slice gives it that it does not list yet; `None` when
/// the closure is over the work budget.
fn missing_ancestors(
    entities: &[Arc<CoreEntity>],
) -> Result<Option<Vec<Vec<EntityUID>>>, AssembleError> {
    let index: HashMap<&EntityUID, usize, RandomState> = entities
        .iter()
        .enumerate()
        .map(|(at, entity)| (entity.uid(), at))
        .collect();
    // The listed ancestors present in the slice, by position.
    let listed_here: Vec<Vec<usize>> = entities
        .iter()
        .map(|entity| {
            entity
                .ancestors()
                .filter_map(|uid| index.get(uid).copied())
                .collect()
        })
        .collect();
    let budget = WORK_PER_ENTITY
        .saturating_mul(entities.len())
        .saturating_add(WORK_BASE);
    let Some(reached) = reachable(entities, &listed_here, budget)? else {
        return Ok(None);
    };
    // The work of the additions and of Cedar's check: for each entity, each reached
    // ancestor's own ancestors (those it lists and those the slice gives it).
    let mut work = 0usize;
    for reached_here in &reached {
        for &ancestor in reached_here {
            let listed = entities
                .get(ancestor)
                .map_or(0, |entity| entity.ancestors().count());
            let given = reached.get(ancestor).map_or(0, Vec::len);
            work = work.saturating_add(listed.saturating_add(given).saturating_add(1));
        }
    }
    if work > budget {
        return Ok(None);
    }
    Ok(Some(
        entities
            .iter()
            .zip(&reached)
            .map(|(entity, reached)| {
                let mut missing: Vec<EntityUID> = Vec::new();
                let mut added: HashSet<&EntityUID, RandomState> = HashSet::default();
                for &ancestor in reached {
                    let Some(ancestor) = entities.get(ancestor) else {
                        continue;
                    };
                    for uid in ancestor.ancestors() {
                        if !entity.is_descendant_of(uid) && added.insert(uid) {
                            missing.push(uid.clone());
                        }
                    }
                }
                missing
            })
            .collect(),
    ))
}

/// Visit state of the walk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    Open,
    Done,
}

/// For each entity, every entity of the slice it reaches through listed ancestors (not itself:
/// reaching itself is a cycle, refused). Iterative, so a deep hierarchy cannot overflow the stack;
/// each entity's set is computed once from its ancestors' sets.
fn reachable(
    entities: &[Arc<CoreEntity>],
    listed_here: &[Vec<usize>],
    budget: usize,
) -> Result<Option<Vec<Vec<usize>>>, AssembleError> {
    let mut spent = 0usize;
    let count = entities.len();
    let mut visit = vec![Visit::New; count];
    let mut reached: Vec<Vec<usize>> = vec![Vec::new(); count];
    let cycle = |at: usize| {
        AssembleError::Cycle(
            entities
                .get(at)
                .map_or_else(String::new, |entity| entity.uid().to_string()),
        )
    };
    for root in 0..count {
        if visit.get(root) != Some(&Visit::New) {
            continue;
        }
        // (entity, how many of its listed ancestors were walked)
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        if let Some(state) = visit.get_mut(root) {
            *state = Visit::Open;
        }
        while let Some((at, next)) = stack.last_mut() {
            let at = *at;
            let parents = listed_here.get(at).map_or(&[][..], Vec::as_slice);
            if let Some(&parent) = parents.get(*next) {
                *next += 1;
                match visit.get(parent) {
                    Some(Visit::New) => {
                        if let Some(state) = visit.get_mut(parent) {
                            *state = Visit::Open;
                        }
                        stack.push((parent, 0));
                    }
                    Some(Visit::Open) => return Err(cycle(parent)),
                    Some(Visit::Done) | None => {}
                }
                continue;
            }
            let mut all: HashSet<usize, RandomState> = HashSet::default();
            for &parent in parents {
                all.insert(parent);
                if let Some(further) = reached.get(parent) {
                    all.extend(further.iter().copied());
                }
            }
            if all.contains(&at) {
                return Err(cycle(at));
            }
            spent = spent.saturating_add(all.len());
            if spent > budget {
                return Ok(None);
            }
            if let Some(slot) = reached.get_mut(at) {
                *slot = all.into_iter().collect();
            }
            if let Some(state) = visit.get_mut(at) {
                *state = Visit::Done;
            }
            stack.pop();
        }
    }
    Ok(Some(reached))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;
    use warden_core::cedar_policy::{Entity, EntityUid};

    fn uid(text: &str) -> EntityUid {
        text.parse().unwrap()
    }

    fn entity(id: &str, parents: &[&str]) -> Arc<CoreEntity> {
        let entity = Entity::new_no_attrs(uid(id), parents.iter().map(|p| uid(p)).collect());
        Arc::new(AsRef::<CoreEntity>::as_ref(&entity).clone())
    }

    /// Cedar's own store of the same entities, closure computed by Cedar.
    fn cedar(entities: &[Arc<CoreEntity>]) -> Result<Entities, String> {
        Entities::from_entities(
            entities
                .iter()
                .map(|entity| Entity::from(CoreEntity::clone(entity))),
            None,
        )
        .map_err(|error| error.to_string())
    }

    fn ancestors(store: &Entities, of: &str) -> Vec<String> {
        let mut found: Vec<String> = store
            .ancestors(&uid(of))
            .map(|ancestors| ancestors.map(ToString::to_string).collect())
            .unwrap_or_default();
        found.sort();
        found
    }

    #[test]
    fn closes_ancestors_as_cedar_does() {
        let slice = vec![
            entity(
                r#"User::"carol""#,
                &[r#"Group::"a""#, r#"Group::"outside""#],
            ),
            entity(r#"Group::"a""#, &[r#"Group::"b""#]),
            entity(r#"Group::"b""#, &[r#"Group::"c""#, r#"Group::"gone""#]),
            entity(r#"Group::"c""#, &[]),
            entity(r#"Doc::"d""#, &[r#"Group::"c""#]),
        ];
        let ours = assemble(slice.clone()).unwrap();
        let theirs = cedar(&slice).unwrap();
        for id in [
            r#"User::"carol""#,
            r#"Group::"a""#,
            r#"Group::"b""#,
            r#"Group::"c""#,
            r#"Doc::"d""#,
        ] {
            assert_eq!(ancestors(&ours, id), ancestors(&theirs, id), "{id}");
        }
        assert_eq!(ancestors(&ours, r#"User::"carol""#).len(), 5);
    }

    #[test]
    fn shares_entities_that_need_nothing_added() {
        let top = entity(r#"Group::"c""#, &[]);
        let child = entity(r#"User::"u""#, &[r#"Group::"c""#]);
        let store = assemble(vec![Arc::clone(&top), Arc::clone(&child)]).unwrap();
        assert_eq!(ancestors(&store, r#"User::"u""#), vec![r#"Group::"c""#]);
        // Both are shared by the store (and by this test), not copied.
        assert_eq!(Arc::strong_count(&top), 2);
        assert_eq!(Arc::strong_count(&child), 2);
    }

    #[test]
    fn refuses_cycles_as_cedar_does() {
        for slice in [
            vec![entity(r#"G::"a""#, &[r#"G::"a""#])],
            vec![
                entity(r#"G::"a""#, &[r#"G::"b""#]),
                entity(r#"G::"b""#, &[r#"G::"a""#]),
            ],
            vec![
                entity(r#"U::"u""#, &[r#"G::"a""#]),
                entity(r#"G::"a""#, &[r#"G::"b""#]),
                entity(r#"G::"b""#, &[r#"G::"c""#]),
                entity(r#"G::"c""#, &[r#"G::"a""#]),
            ],
        ] {
            assert!(cedar(&slice).is_err());
            assert!(
                matches!(assemble(slice), Err(AssembleError::Cycle(_))),
                "a cycle was accepted"
            );
        }
    }

    #[test]
    fn a_deep_chain_goes_to_cedar_and_closes_the_same() {
        // 300 deep: the shared path's work would be cubic in the depth (about 4.5 million
        // steps), over the budget (64 per entity plus 65,536).
        let depth = 300;
        let chain: Vec<Arc<CoreEntity>> = (0..depth)
            .map(|at| {
                let parent = format!(r#"G::"{}""#, at + 1);
                let parents: Vec<&str> = if at + 1 < depth {
                    vec![parent.as_str()]
                } else {
                    vec![]
                };
                entity(&format!(r#"G::"{at}""#), &parents)
            })
            .collect();
        assert!(assemble_shallow(chain.clone()).unwrap().is_none());
        let ours = assemble(chain.clone()).unwrap();
        let theirs = cedar(&chain).unwrap();
        for at in [0, 1, depth / 2, depth - 1] {
            let id = format!(r#"G::"{at}""#);
            assert_eq!(ancestors(&ours, &id), ancestors(&theirs, &id), "{id}");
        }
        assert_eq!(ancestors(&ours, r#"G::"0""#).len(), depth - 1);
        // A short chain stays on the shared path.
        assert!(
            assemble_shallow(chain[depth - 10..].to_vec())
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn refuses_two_different_entities_with_one_uid() {
        let slice = vec![
            entity(r#"U::"u""#, &[r#"G::"a""#]),
            entity(r#"U::"u""#, &[r#"G::"b""#]),
        ];
        assert!(matches!(assemble(slice), Err(AssembleError::Refused(_))));
    }
}
