//! Reads a policy pack from disk into [`warden_core::PackSources`].
//!
//! A pack is a directory with one schema (`*.cedarschema` or `*.cedarschema.json`) at its
//! root, an optional `pack.toml`, and any number of `*.cedar` files, also in subdirectories
//! (hidden entries are skipped). A single `.cedar` file is a pack too, without schema or
//! manifest. Paths in the result are relative to the pack root with `/` separators, sorted, so
//! the revision hash does not depend on the order the file system lists entries in.
//! This crate only reads; compiling is `warden_core::Pack::compile`.

use std::fs;
use std::path::{Path, PathBuf};

use warden_core::pack::{PackSources, SchemaFormat, SchemaSource, SourceFile};

/// The largest file a pack may contain (policy, schema or manifest).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// A pack that could not be read. Messages name the path.
#[derive(Debug, thiserror::Error)]
pub enum PackDirError {
    /// Nothing at the path.
    #[error("{}: no such file or directory", .0.display())]
    NotFound(PathBuf),
    /// A file that is not `.cedar`.
    #[error("{}: not a pack (expected a directory or a .cedar file)", .0.display())]
    NotAPack(PathBuf),
    /// More than one schema at the root.
    #[error("{}: more than one schema ({first} and {second}); a pack has one", .dir.display())]
    TwoSchemas {
        /// The pack directory.
        dir: PathBuf,
        /// One schema file.
        first: String,
        /// Another.
        second: String,
    },
    /// A file too large to be a policy file.
    #[error("{}: larger than {MAX_FILE_BYTES} bytes", .0.display())]
    TooLarge(PathBuf),
    /// A file that is not UTF-8.
    #[error("{}: not UTF-8 text", .0.display())]
    NotUtf8(PathBuf),
    /// Any other I/O error.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Reads the pack at `path` (a directory or a single `.cedar` file).
pub fn read_pack(path: &Path) -> Result<PackSources, PackDirError> {
    let metadata = fs::metadata(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => PackDirError::NotFound(path.to_owned()),
        _ => PackDirError::Io {
            path: path.to_owned(),
            source: error,
        },
    })?;
    if metadata.is_file() {
        if path.extension().and_then(|e| e.to_str()) != Some("cedar") {
            return Err(PackDirError::NotAPack(path.to_owned()));
        }
        let display = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        return Ok(PackSources {
            policy_files: vec![SourceFile::new(display, read_text(path)?)],
            schema: None,
            manifest: None,
        });
    }
    if !metadata.is_dir() {
        return Err(PackDirError::NotAPack(path.to_owned()));
    }
    let mut sources = PackSources::default();
    let manifest_path = path.join("pack.toml");
    if manifest_path.is_file() {
        sources.manifest = Some(SourceFile::new("pack.toml", read_text(&manifest_path)?));
    }
    for entry in read_dir_sorted(path)? {
        let name = file_name(&entry);
        if !entry.is_file() {
            continue;
        }
        let format = if name.ends_with(".cedarschema.json") {
            SchemaFormat::Json
        } else if name.ends_with(".cedarschema") {
            SchemaFormat::CedarSchema
        } else {
            continue;
        };
        if let Some(existing) = &sources.schema {
            return Err(PackDirError::TwoSchemas {
                dir: path.to_owned(),
                first: existing.file.path.clone(),
                second: name,
            });
        }
        sources.schema = Some(SchemaSource {
            file: SourceFile::new(name, read_text(&entry)?),
            format,
        });
    }
    collect_policy_files(path, "", &mut sources.policy_files)?;
    Ok(sources)
}

/// Reads a schema file given on its own (`--schema`); the syntax follows the extension.
pub fn read_schema(path: &Path) -> Result<SchemaSource, PackDirError> {
    let name = path.display().to_string();
    let format = if name.ends_with(".json") {
        SchemaFormat::Json
    } else {
        SchemaFormat::CedarSchema
    };
    if !path.exists() {
        return Err(PackDirError::NotFound(path.to_owned()));
    }
    Ok(SchemaSource {
        file: SourceFile::new(name, read_text(path)?),
        format,
    })
}

/// Reads a whole text file with the pack size limit; for entity files and the like too.
pub fn read_text(path: &Path) -> Result<String, PackDirError> {
    let io_error = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => PackDirError::NotFound(path.to_owned()),
        _ => PackDirError::Io {
            path: path.to_owned(),
            source,
        },
    };
    let metadata = fs::metadata(path).map_err(io_error)?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(PackDirError::TooLarge(path.to_owned()));
    }
    let bytes = fs::read(path).map_err(io_error)?;
    String::from_utf8(bytes).map_err(|_| PackDirError::NotUtf8(path.to_owned()))
}

fn collect_policy_files(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<SourceFile>,
) -> Result<(), PackDirError> {
    for entry in read_dir_sorted(dir)? {
        let name = file_name(&entry);
        let relative = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if entry.is_dir() {
            collect_policy_files(&entry, &relative, out)?;
        } else if entry.is_file() && name.ends_with(".cedar") {
            out.push(SourceFile::new(relative, read_text(&entry)?));
        }
    }
    Ok(())
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, PackDirError> {
    let io_error = |source| PackDirError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        entries.push(entry.path());
    }
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_directory_pack_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("pack.toml"), "name = \"t\"\n").unwrap();
        fs::write(dir.path().join("schema.cedarschema"), "entity User;").unwrap();
        fs::write(
            dir.path().join("b.cedar"),
            "permit(principal, action, resource);",
        )
        .unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(
            dir.path().join("sub/a.cedar"),
            "forbid(principal, action, resource);",
        )
        .unwrap();
        fs::write(dir.path().join(".hidden.cedar"), "junk").unwrap();
        fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let sources = read_pack(dir.path()).unwrap();
        let paths: Vec<&str> = sources
            .policy_files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(paths, ["b.cedar", "sub/a.cedar"]);
        assert_eq!(sources.schema.unwrap().format, SchemaFormat::CedarSchema);
        assert!(sources.manifest.is_some());
    }

    #[test]
    fn two_schemas_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.cedarschema"), "").unwrap();
        fs::write(dir.path().join("b.cedarschema.json"), "{}").unwrap();
        let error = read_pack(dir.path()).unwrap_err();
        assert!(matches!(error, PackDirError::TwoSchemas { .. }), "{error}");
    }

    #[test]
    fn missing_paths_and_other_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(
            read_pack(&missing)
                .unwrap_err()
                .to_string()
                .ends_with("nope: no such file or directory")
        );
        let text = dir.path().join("x.txt");
        fs::write(&text, "").unwrap();
        assert!(matches!(
            read_pack(&text).unwrap_err(),
            PackDirError::NotAPack(_)
        ));
    }
}
