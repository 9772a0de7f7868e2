//! `skillhost state list|show|reset`: what skills keep between runs (contract 0.2), for an
//! operator: which scopes hold state, what a scope holds (keys, values, versions, the locks in
//! force), and starting a scope, or one key of it, over.
//!
//! Values are the skills' own bytes: printed as text (invalid UTF-8 replaced) with every
//! character a terminal would act on escaped, inside JSON.

use clap::Subcommand;
use serde_json::json;
use skillhost_contract::error::{Failure, Reason};
use skillhost_contract::text::escape;
use skillhost_state::{Reset, Scope, Store, StoreError};
use skillhost_upstream::connections::Config;

use crate::global::GlobalArgs;

/// `state` subcommands.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Every scope (tenant, connection, skill) that holds state, with its number of keys.
    List,
    /// The keys of one skill's state for one connection, with their values and versions, and
    /// the locks in force (an incremental cursor in use).
    Show(ScopeArgs),
    /// Removes one key, or all the keys, of one skill's state for one connection: the next run
    /// starts over (an incremental run starts again from its window).
    Reset {
        /// Whose state.
        #[command(flatten)]
        scope: ScopeArgs,
        /// Only this key (default: every key of the scope).
        #[arg(long)]
        key: Option<String>,
    },
}

/// Which scope: the connection (its tenant comes from the config) and the skill.
#[derive(Debug, clap::Args)]
pub struct ScopeArgs {
    /// The connection's name in the config.
    #[arg(short, long)]
    pub connection: String,
    /// The skill's id.
    #[arg(short, long)]
    pub skill: String,
}

/// Runs a `state` subcommand.
pub async fn run(global: &GlobalArgs, command: StateCommand) -> Result<(), Failure> {
    // The config names the store (unless --state does) and the connections' tenants; a config
    // that exists but cannot be read is an error, not a reason to look at another store.
    let config = match Config::locate_and_load(global.config.as_deref()) {
        Ok(config) => Some(config),
        Err(_)
            if global.config.is_none()
                && !std::path::Path::new("skillhost.toml").exists()
                && std::env::var_os("SKILLHOST_CONFIG").is_none() =>
        {
            None
        }
        Err(failure) => return Err(failure),
    };
    let url = global.state_store(config.as_ref())?.url().clone();
    let store = Store::open(&url).await.map_err(store_failure)?;
    match command {
        StateCommand::List => {
            let scopes = store.list_scopes().await.map_err(store_failure)?;
            let list: Vec<_> = scopes
                .iter()
                .map(|s| {
                    json!({
                        "tenant": escape(s.scope.tenant()),
                        "connection": escape(s.scope.connection()),
                        "skill": escape(s.scope.skill()),
                        "keys": s.keys,
                    })
                })
                .collect();
            print_json(&json!({ "store": url.to_string(), "scopes": list }))
        }
        StateCommand::Show(args) => {
            let scope = scope_of(config.as_ref(), &args)?;
            let keys = store.list(&scope).await.map_err(store_failure)?;
            let locks = store.list_leases(&scope).await.map_err(store_failure)?;
            let keys: Vec<_> = keys
                .iter()
                .map(|e| {
                    json!({
                        "key": escape(&e.key),
                        "version": e.value.version,
                        "value": escape(&String::from_utf8_lossy(&e.value.value)),
                    })
                })
                .collect();
            let locks: Vec<_> = locks
                .iter()
                .map(|l| {
                    json!({
                        "name": escape(&l.name),
                        "holder": escape(&l.holder),
                        "expires_in_s": l.expires_in.as_secs_f64(),
                    })
                })
                .collect();
            print_json(&json!({
                "tenant": escape(scope.tenant()),
                "connection": escape(scope.connection()),
                "skill": escape(scope.skill()),
                "keys": keys,
                "locks": locks,
            }))
        }
        StateCommand::Reset { scope, key } => {
            let scope = scope_of(config.as_ref(), &scope)?;
            let what = match key {
                Some(key) => Reset::Key(key),
                None => Reset::All,
            };
            let removed = store.reset(&scope, &what).await.map_err(store_failure)?;
            print_json(&json!({ "removed": removed }))
        }
    }
}

/// The scope of `args`: the tenant is the connection's in the config.
fn scope_of(config: Option<&Config>, args: &ScopeArgs) -> Result<Scope, Failure> {
    let config = config.ok_or_else(|| {
        Failure::usage("no config file: the connection's tenant comes from it")
            .with_hint("pass --config PATH or set SKILLHOST_CONFIG")
    })?;
    let connection = config.connection(&args.connection)?;
    Scope::new(&connection.tenant, &connection.name, &args.skill)
        .map_err(|e| Failure::usage(e.to_string()))
}

fn store_failure(error: StoreError) -> Failure {
    let reason = match error {
        StoreError::Unavailable(_) => Reason::Unavailable,
        StoreError::Invalid(_) | StoreError::Limit(_) => Reason::InvalidInput,
        _ => Reason::Internal,
    };
    let failure = match reason {
        Reason::InvalidInput => Failure::usage(error.to_string()),
        _ => Failure::other(error.to_string()),
    };
    failure.with_reason(reason)
}

fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::other(format!("cannot print: {e}")))?;
    println!("{text}");
    Ok(())
}
