//! Fixtures the fuzz targets share: the example pack (`examples/saas`) compiled once, its
//! entity file, and a single-threaded runtime for the async parts of the pipeline.
//!
//! Not a test helper for the workspace: only the targets in `fuzz_targets/` use it. Fixtures
//! are built once per process and `expect` on failure, since a broken fixture is a broken
//! harness, not a finding (the targets' inputs never reach these `expect`s).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use warden_core::Pack;
use warden_core::cedar_policy::{EntityTypeName, EntityUid};

/// The example pack every decision-side target decides with.
pub struct SaasPack {
    /// The compiled pack.
    pub pack: Arc<Pack>,
    /// `examples/saas/entities.json`, as the server reads it.
    pub entities_text: String,
}

/// The repository root (the fuzz crate lives in `fuzz/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .expect("fuzz/ has a parent")
}

/// `examples/saas`, read by the same loader as `warden serve` and compiled once.
pub fn saas() -> &'static SaasPack {
    static SAAS: OnceLock<SaasPack> = OnceLock::new();
    SAAS.get_or_init(|| {
        let dir = repo_root().join("examples/saas");
        let sources = warden_packdir::read_pack(&dir).expect("examples/saas reads");
        let compiled = Pack::compile(&sources).expect("examples/saas compiles");
        let entities_text =
            std::fs::read_to_string(dir.join("entities.json")).expect("entities.json reads");
        SaasPack {
            pack: Arc::new(compiled.pack),
            entities_text,
        }
    })
}

/// A current-thread runtime for `Service::evaluate` and the verifier.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

/// `Type::"id"` for a type name the pack knows (or any valid name), `None` otherwise.
pub fn uid(pack: &Pack, entity_type: &str, id: &str) -> Option<EntityUid> {
    let type_name: EntityTypeName = pack.type_name(entity_type)?;
    Some(EntityUid::from_type_name_and_id(
        type_name,
        warden_core::cedar_policy::EntityId::new(id),
    ))
}

/// Bytes as text the way a target wants it: invalid UTF-8 replaced, never refused, so that
/// the fuzzer's byte-level mutations still reach the parsers.
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}
