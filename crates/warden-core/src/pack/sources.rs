//! The raw text of a policy pack, as read by whoever owns the file system.
//!
//! `warden-core` does no I/O: the binary (through `warden-packdir`) or a test builds a
//! [`PackSources`] from files, and [`crate::pack::Pack::compile`] turns it into a ready pack.
//! Paths are kept only to name files in diagnostics and to key the revision hash.

/// One file of a pack: a display path (relative to the pack root) and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The path shown in diagnostics, e.g. `documents.cedar`.
    pub path: String,
    /// The whole file as UTF-8 text.
    pub text: String,
}

impl SourceFile {
    /// A source file from its display path and text.
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
        }
    }
}

/// The two schema syntaxes Cedar accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaFormat {
    /// `schema.cedarschema`, the human-readable syntax.
    CedarSchema,
    /// `schema.cedarschema.json`, the JSON syntax.
    Json,
}

/// A pack's schema file and its syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaSource {
    /// The schema file.
    pub file: SourceFile,
    /// Which syntax the file is written in.
    pub format: SchemaFormat,
}

/// Everything a pack is made of, before parsing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackSources {
    /// The `*.cedar` files, in a stable order (the loader sorts them by path).
    pub policy_files: Vec<SourceFile>,
    /// The schema, if the pack has one.
    pub schema: Option<SchemaSource>,
    /// `pack.toml`, if the pack has one.
    pub manifest: Option<SourceFile>,
}

impl PackSources {
    /// A pack made of policy text alone: no schema, no manifest.
    pub fn from_policy_text(path: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            policy_files: vec![SourceFile::new(path, text)],
            schema: None,
            manifest: None,
        }
    }
}
