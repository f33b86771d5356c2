//! The `warden` binary: parses the command line, runs one verb, and picks the exit code in one
//! place: 0 ok, 1 a negative result (deny, invalid policy, failed test), 2 bad usage or input.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod config_loading;
mod decision_json;
mod entity_stream;
mod junit;
mod logging;
mod pack_loading;
mod suite_file;

use cli::{Cli, Command};

/// mimalloc instead of the system allocator: the service allocates on request threads and
/// frees on the decision-log writer thread, where glibc's allocator spent a large share of the
/// time (measured in docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use commands::Verdict;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(&args),
        Command::Validate(args) => commands::validate::run(&args),
        Command::Check(args) => commands::check::run(&args),
        Command::Test(args) => commands::test::run(&args),
        Command::Diff(args) => commands::diff::run(&args),
        Command::Token(cli::TokenCommand::Verify(args)) => commands::token::verify(&args),
        Command::Token(cli::TokenCommand::Mint(args)) => commands::token::mint(&args),
        Command::Token(cli::TokenCommand::Exchange(args)) => commands::token::exchange(&args),
        Command::Admin(cli::AdminCommand::Init(args)) => commands::admin::init(&args),
        Command::Admin(cli::AdminCommand::Create(args)) => commands::admin::create(&args),
        Command::Admin(cli::AdminCommand::List(args)) => commands::admin::list(&args),
        Command::Admin(cli::AdminCommand::Rotate(args)) => commands::admin::rotate(&args),
        Command::Admin(cli::AdminCommand::Revoke(args)) => {
            commands::admin::revoke_credential(&args)
        }
        Command::Entity(cli::EntityCommand::Import(args)) => commands::entity_import::import(&args),
        Command::Entity(cli::EntityCommand::Parents(args)) => {
            commands::entity_import::parents(&args)
        }
        Command::Role(cli::RoleCommand::Grant(args)) => commands::admin::grant(&args),
        Command::Role(cli::RoleCommand::Revoke(args)) => commands::admin::revoke(&args),
        Command::Principal(cli::PrincipalCommand::Disable(args)) => {
            commands::admin::status(&args, "disabled")
        }
        Command::Principal(cli::PrincipalCommand::Enable(args)) => {
            commands::admin::status(&args, "active")
        }
        Command::Policy(command) => commands::tenant_policies::run(&command),
        Command::Audit(cli::AuditCommand::Verify(args)) => commands::audit::verify(&args),
        Command::Audit(cli::AuditCommand::Query(args)) => commands::audit::query(&args),
        Command::Revoke(command) => commands::admin::revoke_access(&command),
        Command::Revocations(cli::RevocationsCommand::List(args)) => {
            commands::admin::list_revocations(&args)
        }
        Command::Sa(command) => commands::service_accounts::run(&command),
        Command::Keys(cli::KeysCommand::Rotate(args)) => {
            commands::service_accounts::rotate_key(&args)
        }
        Command::Keys(cli::KeysCommand::List(args)) => commands::service_accounts::list_keys(&args),
    };
    match result {
        Ok(Verdict::Success) => ExitCode::SUCCESS,
        Ok(Verdict::Negative) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
