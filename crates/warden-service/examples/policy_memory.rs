//! What a pack of many tenant policies costs to load: compiles the example pack plus N
//! one-line tenant policies (parse, name, validate against the schema, index) and prints the
//! compile time and the resident memory growth. One N per run, so each starts from a fresh
//! process. Run: `cargo run --release -p warden-service --example policy_memory [N]`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a measurement")]

use std::path::Path;
use std::time::Instant;

use warden_core::Pack;
use warden_core::pack::SourceFile;

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
        .unwrap_or(100_000);
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut sources = warden_packdir::read_pack(&root.join("examples/saas")).unwrap();
    let mut text = String::with_capacity(total * 160);
    for tenant in 0..total {
        text.push_str(&format!(
            "@id(\"t{tenant}-legal-contracts\")\npermit (principal in Group::\"t{tenant}/legal\", action in [Action::\"read\", Action::\"edit\"], resource in Folder::\"t{tenant}/contracts\");\n"
        ));
    }
    sources
        .policy_files
        .push(SourceFile::new("tenants/generated.cedar", text));
    let before = rss_kib();
    let started = Instant::now();
    let pack = Pack::compile(&sources).unwrap().pack;
    let elapsed = started.elapsed();
    let after = rss_kib();
    println!(
        "{total} tenant policies: compile {:.2} s ({:.1} µs per policy), RSS +{:.1} MiB ({} B per policy), {} policies in the pack",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / total.max(1) as f64,
        after.saturating_sub(before) as f64 / 1024.0,
        after.saturating_sub(before) * 1024 / total.max(1) as u64,
        pack.policies().len()
    );
}
