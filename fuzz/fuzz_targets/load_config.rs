//! Arbitrary bytes as `warden.toml` and its `WARDEN_…` environment: loading and checking must
//! never panic, whatever the file and the overrides.
//!
//! Input: `file \0 environment`, the environment one `NAME=VALUE` a line (without a NUL, the
//! whole input is the file and the environment is empty). Calls `warden_config::load`, what
//! every verb runs: TOML, the `WARDEN_<SECTION>__<KEY>` overrides, the raw config with
//! unknown keys refused, then every check. `load` reads its file from a path, and is the only
//! public entry point, so the file is written to one reused path per process (see
//! [`scratch`]; a few microseconds, and no change to the crate for the fuzzer).
//!
//! Inputs that name a file for `load` to read (`hs256_secret_file`, `key_encryption_key_file`,
//! in the file or an override) are skipped: reading whatever path the fuzzer spells
//! (`/dev/zero`, `/dev/stdin`) tests the machine, not the parser, and an operator who points a
//! secret at `/dev/zero` gets what they asked for. The secrets' checks are still reached through
//! `*_env` names, which read the input's environment. Other paths (`cert_file`, `jwks_file`,
//! `entities_file`, …) are only resolved by `load`, never read, and are fuzzed. A key `load`
//! starts reading belongs in [`READ_BY_LOAD`].
//! Seeds: `fuzz/corpus/load_config/`. Run: `scripts/fuzz.sh` or
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none load_config`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// The file `load` reads: one per process, in tmpfs when there is one (ext4 flushes a file
/// that is truncated and rewritten, `auto_da_alloc`, which cost milliseconds per input).
/// libFuzzer exits without running destructors, so files of processes that are gone are
/// removed when the next process starts.
fn scratch() -> &'static PathBuf {
    static SCRATCH: OnceLock<PathBuf> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let dir = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        let prefix = "warden-fuzz-load-config-";
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(".toml"))
                && !PathBuf::from(format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        dir.join(format!("{prefix}{}.toml", std::process::id()))
    })
}

/// The keys whose file `load` reads while checking.
const READ_BY_LOAD: [&str; 2] = ["hs256_secret_file", "key_encryption_key_file"];

/// Whether a parsed TOML value names a file `load` reads, anywhere in it.
fn names_a_file(value: &toml::Value) -> bool {
    match value {
        toml::Value::Table(table) => table_names_a_file(table),
        toml::Value::Array(items) => items.iter().any(names_a_file),
        _ => false,
    }
}

fn table_names_a_file(table: &toml::Table) -> bool {
    table
        .iter()
        .any(|(key, value)| READ_BY_LOAD.contains(&key.as_str()) || names_a_file(value))
}

/// Whether an override could name a file `load` reads: its name or value spells one of those
/// keys (in any case, since names are lowercased) or holds a TOML escape that could spell one
/// in a quoted key.
/// Overrides are read as TOML more than once (array elements are re-read), so this is
/// judged on the raw text rather than on one parse.
fn override_names_a_file(name: &str, value: &str) -> bool {
    let text = format!("{name}={value}").to_ascii_lowercase();
    READ_BY_LOAD.iter().any(|key| text.contains(key)) || text.contains("\\u")
}

fn environment(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let (file, env) = match data.iter().position(|byte| *byte == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let env = environment(&warden_fuzz::text(env));
    if env
        .iter()
        .any(|(name, value)| override_names_a_file(name, value))
    {
        return;
    }
    if let Ok(table) = toml::from_str::<toml::Table>(&String::from_utf8_lossy(file))
        && table_names_a_file(&table)
    {
        return;
    }
    let scratch = scratch();
    std::fs::write(scratch, file).expect("the scratch file is writable");
    match warden_config::load(Some(scratch), &env) {
        Ok(config) => drop(format!("{config:?}")),
        Err(error) => drop(error.to_string()),
    }
});
