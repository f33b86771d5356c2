//! `warden serve`: load the configuration, set up logging, and run the service until SIGTERM
//! or SIGINT, then drain in-flight requests.

use std::io::IsTerminal as _;

use anyhow::{Context as _, bail};

use super::Verdict;
use crate::cli::ServeArgs;
use crate::config_loading;

pub fn run(args: &ServeArgs) -> anyhow::Result<Verdict> {
    let config = config_loading::load(args.config.as_deref())?;
    let json_logs = match args.log_format.as_deref() {
        None => !std::io::stdout().is_terminal(),
        Some("json") => true,
        Some("text") => false,
        Some(other) => bail!("--log-format {other}: expected json or text"),
    };
    crate::logging::init(json_logs)?;
    tracing::info!(config = %config.origin, "configuration loaded");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(warden_server::run(
        config,
        warden_server::termination_signal(),
    ))?;
    Ok(Verdict::Success)
}
