//! Helpers shared by the integration tests: loading packs and entities, one-call decisions.

use std::path::{Path, PathBuf};

use warden_core::cedar_policy::{Entities, Request};
use warden_core::pack::{PackSources, SchemaFormat, SchemaSource, SourceFile};
use warden_core::{Decision, Pack, parse_uid};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn load_dir(path: &Path) -> Pack {
    let sources = warden_packdir::read_pack(path).unwrap();
    match Pack::compile(&sources) {
        Ok(compiled) => compiled.pack,
        Err(error) => panic!("{} should load: {:#?}", path.display(), error.diagnostics),
    }
}

pub fn example_pack() -> Pack {
    load_dir(&repo_root().join("examples/saas"))
}

pub fn example_entities(pack: &Pack) -> Entities {
    let text = std::fs::read_to_string(repo_root().join("examples/saas/entities.json")).unwrap();
    pack.parse_entities(&text).unwrap()
}

/// A pack built in memory: a schema, a manifest and policy files.
pub fn pack_from(
    schema: Option<&str>,
    manifest: Option<&str>,
    files: &[(&str, &str)],
) -> Result<Pack, warden_core::PackError> {
    let sources = PackSources {
        policy_files: files
            .iter()
            .map(|(path, text)| SourceFile::new(*path, *text))
            .collect(),
        schema: schema.map(|text| SchemaSource {
            file: SourceFile::new("schema.cedarschema", text),
            format: SchemaFormat::CedarSchema,
        }),
        manifest: manifest.map(|text| SourceFile::new("pack.toml", text)),
    };
    Pack::compile(&sources).map(|compiled| compiled.pack)
}

pub fn request(
    pack: &Pack,
    principal: &str,
    action: &str,
    resource: &str,
    context: Option<serde_json::Value>,
) -> Request {
    pack.request(
        parse_uid(principal).unwrap(),
        parse_uid(action).unwrap(),
        parse_uid(resource).unwrap(),
        context,
    )
    .unwrap()
}

pub fn decide(
    pack: &Pack,
    entities: &Entities,
    principal: &str,
    action: &str,
    resource: &str,
    context: Option<serde_json::Value>,
) -> Decision {
    pack.decide(
        &request(pack, principal, action, resource, context),
        entities,
    )
}
