//! What every back end must do alike.

use serde_json::json;
use warden_store::{
    AdminCredential, EntityRecord, PrincipalStatus, RoleAssignment, StatusRecord, StoreError,
};

use crate::support::{stores, tenant};

fn user(tenant: &str, id: &str) -> EntityRecord {
    EntityRecord {
        tenant: tenant.into(),
        entity_type: "User".into(),
        entity_id: format!("{tenant}/{id}"),
        attrs: json!({"tenant": {"__entity": {"type": "Tenant", "id": tenant}}}),
        parents: json!([]),
        canonical_for: None,
    }
}

fn grant(tenant: &str, id: &str, role: &str, expires_at: Option<i64>) -> RoleAssignment {
    RoleAssignment {
        tenant: tenant.into(),
        principal_type: "User".into(),
        principal_id: format!("{tenant}/{id}"),
        role_type: "Role".into(),
        role_id: role.into(),
        expires_at,
        reason: "on call".into(),
        granted_by: "admin:test".into(),
        granted_at: 100,
    }
}

#[tokio::test]
async fn the_same_id_in_two_tenants_is_two_entities() {
    for test in stores().await {
        let store = &test.store;
        store
            .upsert_entities(&tenant("acme"), &[user("acme", "alice")], "admin:test", 1)
            .await
            .unwrap();
        store
            .upsert_entities(
                &tenant("globex"),
                &[user("globex", "alice")],
                "admin:test",
                1,
            )
            .await
            .unwrap();
        assert_eq!(
            store.entities_of(&tenant("acme")).await.unwrap().len(),
            1,
            "{}",
            test.name
        );
        assert_eq!(
            store.entities_of(&tenant("globex")).await.unwrap()[0].entity_id,
            "globex/alice",
            "{}",
            test.name
        );
        assert_eq!(store.read_state(0).await.unwrap().entities.len(), 2);
        // Writing another tenant's entity under this tenant is refused, and changes nothing.
        let error = store
            .upsert_entities(&tenant("acme"), &[user("globex", "bob")], "admin:test", 2)
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::Refused(_)),
            "{}: {error}",
            test.name
        );
        assert_eq!(store.read_state(0).await.unwrap().entities.len(), 2);
        store
            .delete_entity(&tenant("acme"), "User", "acme/alice", "admin:test", 3)
            .await
            .unwrap();
        assert!(store.entities_of(&tenant("acme")).await.unwrap().is_empty());
        assert_eq!(store.entities_of(&tenant("globex")).await.unwrap().len(), 1);
        assert!(matches!(
            store
                .delete_entity(&tenant("acme"), "User", "acme/alice", "admin:test", 4)
                .await,
            Err(StoreError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn every_write_bumps_the_version_and_is_audited() {
    for test in stores().await {
        let store = &test.store;
        let start = store.version().await.unwrap();
        store
            .upsert_entities(&tenant("acme"), &[user("acme", "alice")], "admin:a", 1)
            .await
            .unwrap();
        store
            .grant_role(&grant("acme", "alice", "editor", None))
            .await
            .unwrap();
        store
            .set_status(
                &tenant("acme"),
                "User",
                "acme/alice",
                PrincipalStatus::Disabled,
                "admin:a",
                2,
            )
            .await
            .unwrap();
        store
            .revoke_role(
                &tenant("acme"),
                ("User", "acme/alice"),
                ("Role", "editor"),
                "left the team",
                "admin:a",
                3,
            )
            .await
            .unwrap();
        assert_eq!(store.version().await.unwrap(), start + 4, "{}", test.name);
        let trail = store.audit_trail().await.unwrap();
        let actions: Vec<&str> = trail.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "entity.upsert",
                "role.grant",
                "principal.status",
                "role.revoke"
            ],
            "{}",
            test.name
        );
        assert!(trail[3].detail.contains("left the team"));
        let state = store.read_state(0).await.unwrap();
        assert_eq!(state.version, start + 4, "{}", test.name);
        assert_eq!(
            state.statuses,
            [StatusRecord {
                tenant: "acme".into(),
                principal_type: "User".into(),
                principal_id: "acme/alice".into(),
                status: PrincipalStatus::Disabled,
            }],
            "{}",
            test.name
        );
    }
}

#[tokio::test]
async fn time_bound_grants_expire_by_themselves() {
    for test in stores().await {
        let store = &test.store;
        store
            .grant_role(&grant("acme", "alice", "admin", Some(1_000)))
            .await
            .unwrap();
        store
            .grant_role(&grant("acme", "alice", "viewer", None))
            .await
            .unwrap();
        let at = |now| async move {
            store
                .read_state(now)
                .await
                .unwrap()
                .assignments
                .into_iter()
                .map(|g| g.role_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(at(999).await, ["admin", "viewer"], "{}", test.name);
        assert_eq!(at(1_000).await, ["viewer"], "{}", test.name);
        assert_eq!(
            store.read_state(999).await.unwrap().next_expiry,
            Some(1_000)
        );
        assert_eq!(store.read_state(1_000).await.unwrap().next_expiry, None);
        // Revoking what is not granted is refused.
        let error = store
            .revoke_role(
                &tenant("acme"),
                ("User", "acme/alice"),
                ("Role", "editor"),
                "x",
                "admin:a",
                5,
            )
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::NotFound(_)), "{}", test.name);
    }
}

#[tokio::test]
async fn only_the_first_admin_credential_is_created_by_init() {
    for test in stores().await {
        let store = &test.store;
        let first = AdminCredential {
            id: "adm_1".into(),
            digest_hex: "ab".repeat(32),
            tenant_scope: None,
        };
        store.create_first_admin(&first, 1).await.unwrap();
        let second = AdminCredential {
            id: "adm_2".into(),
            digest_hex: "cd".repeat(32),
            tenant_scope: None,
        };
        assert!(
            matches!(
                store.create_first_admin(&second, 2).await,
                Err(StoreError::Refused(_))
            ),
            "{}",
            test.name
        );
        assert_eq!(store.admin_credentials().await.unwrap(), [first]);
    }
}

#[tokio::test]
async fn migrations_are_idempotent_across_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    let store = warden_store::Store::connect(&url).await.unwrap();
    store
        .upsert_entities(&tenant("acme"), &[user("acme", "alice")], "admin:a", 1)
        .await
        .unwrap();
    drop(store);
    let again = warden_store::Store::connect(&url).await.unwrap();
    assert_eq!(again.read_state(0).await.unwrap().entities.len(), 1);
    if let Some(url) = crate::support::fresh_postgres_url().await {
        let first = warden_store::Store::connect(&url).await.unwrap();
        first
            .upsert_entities(&tenant("acme"), &[user("acme", "alice")], "admin:a", 1)
            .await
            .unwrap();
        let second = warden_store::Store::connect(&url).await.unwrap();
        assert_eq!(second.read_state(0).await.unwrap().entities.len(), 1);
    }
}

/// Issue #18: a status is kept apart from entity data. Setting one writes no entity (so a
/// principal known only from tokens can be disabled without the store "knowing" it), and
/// importing the entity again does not re-enable it.
#[tokio::test]
async fn a_status_is_kept_apart_from_entity_data() {
    for test in stores().await {
        let store = &test.store;
        store
            .set_status(
                &tenant("acme"),
                "User",
                "acme/tokens-only",
                PrincipalStatus::Disabled,
                "admin:a",
                1,
            )
            .await
            .unwrap();
        let state = store.read_state(1).await.unwrap();
        assert!(state.entities.is_empty(), "{}", test.name);
        assert_eq!(state.statuses.len(), 1, "{}", test.name);

        store
            .upsert_entities(&tenant("acme"), &[user("acme", "alice")], "admin:a", 2)
            .await
            .unwrap();
        store
            .set_status(
                &tenant("acme"),
                "User",
                "acme/alice",
                PrincipalStatus::Deleted,
                "admin:a",
                3,
            )
            .await
            .unwrap();
        store
            .upsert_entities(&tenant("acme"), &[user("acme", "alice")], "admin:a", 4)
            .await
            .unwrap();
        let statuses = store.statuses_of(&tenant("acme")).await.unwrap();
        let alice = statuses
            .iter()
            .find(|record| record.principal_id == "acme/alice")
            .unwrap();
        assert_eq!(alice.status, PrincipalStatus::Deleted, "{}", test.name);

        // Active again: no longer listed among the statuses that deny.
        store
            .set_status(
                &tenant("acme"),
                "User",
                "acme/alice",
                PrincipalStatus::Active,
                "admin:a",
                5,
            )
            .await
            .unwrap();
        let state = store.read_state(5).await.unwrap();
        assert_eq!(
            state
                .statuses
                .iter()
                .map(|record| record.principal_id.as_str())
                .collect::<Vec<_>>(),
            ["acme/tokens-only"],
            "{}",
            test.name
        );
        assert_eq!(state.entities.len(), 1, "{}", test.name);
    }
}

/// Issue #18 review: a store a newer Warden migrated is refused, not misread (an older binary
/// would see every principal of migration 4's status table as active).
#[tokio::test]
async fn a_store_migrated_by_a_newer_warden_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    let store = warden_store::Store::connect(&url).await.unwrap();
    if let warden_store::Store::Sqlite(pool) = &store {
        sqlx::query("INSERT INTO warden_migrations (version, applied_at) VALUES (99, 1)")
            .execute(pool)
            .await
            .unwrap();
    }
    drop(store);
    let error = warden_store::Store::connect(&url).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("migrated by a newer Warden (migration 99)"),
        "{error}"
    );
}

/// Issue #20: the change feed names exactly the keys each write changed, at the write's
/// version; a reader far behind reads it in windows of whole versions, each holding the
/// current rows (deleted ones as `None`), and ends at the store's version.
#[tokio::test]
async fn the_change_feed_is_read_in_windows_of_whole_versions() {
    use warden_store::ChangeRead;
    for test in stores().await {
        let store = &test.store;
        let start = store.version().await.unwrap();
        // Version start+1: three users at once; then one grant, one status, one delete.
        let three: Vec<EntityRecord> = ["a", "b", "c"].iter().map(|id| user("acme", id)).collect();
        store
            .upsert_entities(&tenant("acme"), &three, "admin:test", 1)
            .await
            .unwrap();
        store
            .grant_role(&grant("acme", "a", "editor", None))
            .await
            .unwrap();
        store
            .set_status(
                &tenant("acme"),
                "User",
                "acme/b",
                PrincipalStatus::Disabled,
                "admin:test",
                2,
            )
            .await
            .unwrap();
        store
            .delete_entity(&tenant("acme"), "User", "acme/c", "admin:test", 3)
            .await
            .unwrap();
        let latest = store.version().await.unwrap();
        assert_eq!(latest, start + 4, "{}", test.name);
        // Windows of at most 2 change rows: the first version has 3, so it comes whole.
        let mut position = start;
        let mut windows = Vec::new();
        let mut entities = std::collections::BTreeMap::new();
        let mut grants = Vec::new();
        let mut statuses = Vec::new();
        for _ in 0..10 {
            let ChangeRead::Changes(changes) = store.read_changes(position, 10, 2).await.unwrap()
            else {
                panic!("{}: too far", test.name);
            };
            assert_eq!(changes.latest, latest, "{}", test.name);
            assert!(changes.version > position, "{}", test.name);
            windows.push(changes.version - start);
            for (key, record) in changes.entities {
                entities.insert(key.entity_id, record.is_some());
            }
            grants.extend(
                changes
                    .grants
                    .into_iter()
                    .map(|(key, held)| (key.entity_id, held.len())),
            );
            statuses.extend(
                changes
                    .statuses
                    .into_iter()
                    .map(|(key, status)| (key.entity_id, status)),
            );
            position = changes.version;
            if position == latest {
                break;
            }
        }
        assert_eq!(windows, vec![1, 3, 4], "{}", test.name);
        // acme/c was deleted after it was written: its current state is "no row".
        assert_eq!(
            entities.into_iter().collect::<Vec<_>>(),
            vec![
                ("acme/a".to_owned(), true),
                ("acme/b".to_owned(), true),
                ("acme/c".to_owned(), false)
            ],
            "{}",
            test.name
        );
        assert!(
            grants.contains(&("acme/a".to_owned(), 1)),
            "{}: {grants:?}",
            test.name
        );
        assert!(
            grants.contains(&("acme/c".to_owned(), 0)),
            "{}: {grants:?}",
            test.name
        );
        assert_eq!(
            statuses,
            vec![("acme/b".to_owned(), PrincipalStatus::Disabled)],
            "{}",
            test.name
        );
        // Pruning raises the floor: a reader behind it must read everything.
        store.prune_changes(i64::MAX).await.unwrap();
        assert!(
            matches!(
                store.read_changes(start, 10, 100).await.unwrap(),
                ChangeRead::TooFar
            ),
            "{}",
            test.name
        );
        assert!(
            matches!(
                store.read_changes(latest, 10, 100).await.unwrap(),
                ChangeRead::Changes(_)
            ),
            "{}",
            test.name
        );
    }
}

/// Revoking a role that is a stored parent and editing the same entity's parents at the same
/// moment: neither may write over the other (both read, change and write back the parents).
#[tokio::test]
async fn concurrent_parent_edits_do_not_undo_a_revocation() {
    for test in stores().await {
        let store = &test.store;
        for round in 0..15 {
            let id = format!("r{round}");
            let mut record = user("acme", &id);
            record.parents =
                json!([{"type": "Role", "id": "admin"}, {"type": "Role", "id": "viewer"}]);
            store
                .upsert_entities(&tenant("acme"), &[record], "admin:test", 1)
                .await
                .unwrap();
            let principal = format!("acme/{id}");
            let acme = tenant("acme");
            let (revoked, edited) = tokio::join!(
                store.revoke_role(
                    &acme,
                    ("User", &principal),
                    ("Role", "admin"),
                    "left",
                    "admin:test",
                    2,
                ),
                store.edit_parents(
                    &acme,
                    ("User", &principal),
                    &[("Group", "acme/legal")],
                    &[],
                    "joined legal",
                    "admin:test",
                    2,
                ),
            );
            // SQLite may refuse the second writer outright (busy); PostgreSQL serialises them.
            if revoked.is_err() || edited.is_err() {
                continue;
            }
            let stored = store.entities_of(&tenant("acme")).await.unwrap();
            let parents = &stored
                .iter()
                .find(|entity| entity.entity_id == principal)
                .unwrap()
                .parents;
            assert!(
                !parents.to_string().contains("\"admin\""),
                "{}: round {round}: the revoked role came back: {parents}",
                test.name
            );
            assert!(
                parents.to_string().contains("acme/legal"),
                "{}: round {round}: the edit was lost: {parents}",
                test.name
            );
        }
    }
}

#[tokio::test]
async fn tenant_policies_are_capped_audited_and_carried_by_the_change_feed() {
    use warden_store::ChangeRead;
    for test in stores().await {
        let store = &test.store;
        let name = test.name;
        let acme = tenant("acme");
        let before = store.version().await.unwrap();
        let permit = "permit (principal, action, resource);";
        assert!(
            !store
                .put_tenant_policy(&acme, "a", permit, "admin:test", 1, 2)
                .await
                .unwrap()
        );
        assert!(
            store
                .put_tenant_policy(&acme, "a", permit, "admin:test", 2, 2)
                .await
                .unwrap()
        );
        store
            .put_tenant_policy(&acme, "b", permit, "admin:test", 3, 2)
            .await
            .unwrap();
        // A third is over the cap; replacing one is not.
        let refused = store
            .put_tenant_policy(&acme, "c", permit, "admin:test", 4, 2)
            .await;
        assert!(
            matches!(refused, Err(StoreError::Refused(_))),
            "{name}: {refused:?}"
        );
        store
            .put_tenant_policy(
                &acme,
                "b",
                "forbid (principal, action, resource);",
                "admin:test",
                5,
                2,
            )
            .await
            .unwrap();
        // Another tenant has its own count.
        store
            .put_tenant_policy(&tenant("globex"), "c", permit, "admin:test", 6, 2)
            .await
            .unwrap();
        store
            .delete_tenant_policy(&acme, "a", "admin:test", 7)
            .await
            .unwrap();
        assert!(matches!(
            store
                .delete_tenant_policy(&acme, "a", "admin:test", 8)
                .await,
            Err(StoreError::NotFound(_))
        ));

        let ChangeRead::Changes(changes) = store.read_changes(before, 10, 1000).await.unwrap()
        else {
            panic!("{name}: the feed is readable");
        };
        let changed: Vec<(&str, &str, bool)> = changes
            .policies
            .iter()
            .map(|((tenant, name), record)| (tenant.as_str(), name.as_str(), record.is_some()))
            .collect();
        assert_eq!(
            changed,
            [
                ("acme", "a", false),
                ("acme", "b", true),
                ("globex", "c", true)
            ],
            "{name}"
        );
        let b = changes.policies[1].1.as_ref().unwrap();
        assert!(b.text.starts_with("forbid"), "{name}");
        let state = store.read_state(10).await.unwrap();
        assert_eq!(state.policies.len(), 2, "{name}");
        let trail = store.audit_trail().await.unwrap();
        assert!(
            trail.iter().any(|record| record.action == "policy.put"),
            "{name}"
        );
        assert!(
            trail.iter().any(|record| record.action == "policy.delete"),
            "{name}"
        );
    }
}
