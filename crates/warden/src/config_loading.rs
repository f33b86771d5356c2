//! Loading `warden.toml` for a verb: the file, then `WARDEN_…__…` overrides from the process
//! environment.

use std::path::Path;

use warden_config::Config;

pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    Ok(warden_config::load(path, &env)?)
}
