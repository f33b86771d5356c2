//! How many bytes one entity of the entity graph costs: builds graphs of the example pack's
//! shape (users, folders, documents of many tenants) and prints the resident memory growth
//! per entity. Run: `cargo run --release -p warden-service --example entity_memory [N]`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a measurement")]

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use warden_core::Pack;
use warden_service::entity_graph::EntityGraph;
use warden_store::EntityRecord;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let pack = Arc::new(
        Pack::compile(&warden_packdir::read_pack(&root.join("examples/saas")).unwrap())
            .unwrap()
            .pack,
    );
    let mut graph = EntityGraph::default();
    let before = rss_kib();
    let mut n = 0;
    let mut tenant = 0;
    while n < total {
        let t = format!("t{tenant}");
        let scope = json!({"__entity": {"type": "Tenant", "id": t}});
        let mut put = |entity_type: &str, id: String, attrs: serde_json::Value, parents| {
            let record = EntityRecord {
                tenant: t.clone(),
                entity_type: entity_type.to_owned(),
                entity_id: id,
                attrs,
                parents,
                canonical_for: None,
            };
            graph.put_stored(&pack, &record, 0).unwrap();
        };
        for u in 0..100 {
            put(
                "User",
                format!("{t}/u{u}"),
                json!({"tenant": scope, "email": format!("u{u}@{t}.example")}),
                json!([{"type": "Role", "id": "viewer"}]),
            );
        }
        for f in 0..10 {
            put(
                "Folder",
                format!("{t}/f{f}"),
                json!({"tenant": scope}),
                json!([]),
            );
        }
        for d in 0..790 {
            put(
                "Document",
                format!("{t}/d{d}"),
                json!({"tenant": scope, "owner": {"__entity": {"type": "User", "id": format!("{t}/u{}", d % 100)}}, "classification": "internal"}),
                json!([{"type": "Folder", "id": format!("{t}/f{}", d % 10)}]),
            );
        }
        n += 900;
        tenant += 1;
    }
    let after = rss_kib();
    println!(
        "{} entities: {} KiB more resident, {} bytes per entity",
        graph.len(),
        after - before,
        (after - before) * 1024 / graph.len() as u64
    );
}
