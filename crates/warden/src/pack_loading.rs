//! Loading a pack for a CLI verb: read from disk, apply `--schema`, compile.

use anyhow::Context as _;
use warden_core::{CompiledPack, Pack, PackError};

use crate::cli::PackArgs;

/// Reads and compiles the pack named by `--policies` (and `--schema`). The outer error is bad
/// input (exit 2); the inner one is an invalid pack (exit 1 for `validate`).
pub fn load(args: &PackArgs) -> anyhow::Result<Result<CompiledPack, PackError>> {
    load_from(&args.policies, args.schema.as_deref())
}

/// [`load`] from a pack path and an optional schema path.
pub fn load_from(
    policies: &std::path::Path,
    schema: Option<&std::path::Path>,
) -> anyhow::Result<Result<CompiledPack, PackError>> {
    let mut sources = warden_packdir::read_pack(policies)?;
    if let Some(schema_path) = schema {
        sources.schema = Some(
            warden_packdir::read_schema(schema_path)
                .with_context(|| format!("reading the schema {}", schema_path.display()))?,
        );
    }
    Ok(Pack::compile(&sources))
}
