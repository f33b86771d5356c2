//! Tidy checks on the source tree itself (issue #26), as rust-analyzer keeps them inside
//! `cargo test`: every source file opens with a `//!` comment and is named in ARCHITECTURE.md
//! under its crate, and the security-sensitive list there matches the files that carry the
//! `SECURITY-SENSITIVE` marker, both ways.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::repo_root;

/// The marker a security-sensitive file's module comment carries.
const MARKER: &str = "SECURITY-SENSITIVE";

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// Every crate's library, binary and benchmark sources, as `(crate dir name, path in crate)`.
fn sources() -> Vec<(String, String)> {
    let crates = repo_root().join("crates");
    let mut all = Vec::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        let crate_dir = entry.unwrap().path();
        let name = crate_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut files = Vec::new();
        rust_files(&crate_dir.join("src"), &mut files);
        rust_files(&crate_dir.join("benches"), &mut files);
        for file in files {
            let relative = file
                .strip_prefix(&crate_dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            all.push((name.clone(), relative));
        }
    }
    all.sort();
    all
}

fn architecture() -> String {
    std::fs::read_to_string(repo_root().join("ARCHITECTURE.md")).unwrap()
}

/// The text of the section `### \`crates/<name>\``, up to the next heading.
fn crate_section<'a>(architecture: &'a str, name: &str) -> Option<&'a str> {
    let heading = format!("### `crates/{name}`");
    let start = architecture.find(&heading)? + heading.len();
    let rest = &architecture[start..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    Some(&rest[..end])
}

fn module_comment(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .take_while(|line| line.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_source_file_opens_with_a_module_comment_and_is_in_the_codemap() {
    let architecture = architecture();
    let mut problems = Vec::new();
    let sources = sources();
    assert!(sources.len() > 100, "found only {} files", sources.len());
    for (name, relative) in sources {
        let path = repo_root().join("crates").join(&name).join(&relative);
        if module_comment(&path).is_empty() {
            problems.push(format!(
                "crates/{name}/{relative} does not open with a //! comment"
            ));
        }
        match crate_section(&architecture, &name) {
            None => problems.push(format!("ARCHITECTURE.md has no section for crates/{name}")),
            Some(section) if !section.contains(&format!("`{relative}`")) => problems.push(format!(
                "ARCHITECTURE.md does not name `{relative}` under crates/{name}"
            )),
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_security_sensitive_list_matches_the_markers() {
    let architecture = architecture();
    let start = architecture
        .find("## Security-sensitive files")
        .expect("ARCHITECTURE.md lists the security-sensitive files");
    let rest = &architecture[start..];
    let end = rest[1..].find("\n## ").map_or(rest.len(), |end| end + 1);
    let listed: BTreeSet<String> = rest[..end]
        .lines()
        .filter_map(|line| line.strip_prefix("- `"))
        .filter_map(|line| line.strip_suffix('`'))
        .map(str::to_owned)
        .collect();
    assert!(listed.len() >= 10, "{listed:?}");
    let marked: BTreeSet<String> = sources()
        .into_iter()
        .map(|(name, relative)| format!("crates/{name}/{relative}"))
        .filter(|path| module_comment(&repo_root().join(path)).contains(MARKER))
        .collect();
    assert_eq!(
        listed, marked,
        "the files listed as security-sensitive and the files whose module comment says {MARKER} differ"
    );
}
