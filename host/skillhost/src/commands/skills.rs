//! `skillhost skills list|describe`: what the skills sources hold, and what each skill declares.

use clap::Subcommand;
use serde_json::{Value, json};
use skillhost_contract::error::Failure;
use skillhost_contract::text::escape;
use skillhost_runtime::host::SkillHost;
use skillhost_runtime::sandbox::RuntimeOptions;
use skillhost_upstream::outbound::Connector;

use crate::global::GlobalArgs;

/// `skills` subcommands.
#[derive(Debug, Subcommand)]
pub enum SkillsCommand {
    /// ID, version and description of every loaded skill; refused files are reported on stderr.
    List,
    /// A skill's parameters and outputs, as JSON.
    Describe {
        /// The skill's ID.
        id: String,
    },
}

/// Runs a `skills` subcommand.
pub async fn run(global: &GlobalArgs, command: SkillsCommand) -> Result<(), Failure> {
    let host = global
        .open_host(RuntimeOptions::default(), Connector::new(None))
        .await?;
    match command {
        SkillsCommand::List => {
            report_problems(&host);
            list(&host);
            Ok(())
        }
        SkillsCommand::Describe { id } => describe(&host, &id),
    }
}

/// Writes one `skipped FILE: REASON` line per refused file to stderr.
pub fn report_problems(host: &SkillHost) {
    for problem in host.registry().problems() {
        say!(
            "skillhost: skipped {}: {}",
            escape(&problem.path.display().to_string()),
            escape(&problem.message)
        );
    }
}

fn list(host: &SkillHost) {
    let skills: Vec<[String; 3]> = host
        .registry()
        .skills()
        .map(|s| {
            let m = &s.manifest;
            [&m.id, &m.version, &m.description].map(|t| escape(t).into_owned())
        })
        .collect();
    let width = |i: usize, min: usize| {
        skills
            .iter()
            .map(|s| s[i].chars().count())
            .max()
            .unwrap_or(min)
            .max(min)
    };
    let (id_width, version_width) = (width(0, 2), width(1, 7));
    println!(
        "{:<id_width$}  {:<version_width$}  DESCRIPTION",
        "ID", "VERSION"
    );
    for [id, version, description] in skills {
        println!("{id:<id_width$}  {version:<version_width$}  {description}");
    }
}

fn describe(host: &SkillHost, id: &str) -> Result<(), Failure> {
    let skill = host.registry().get(id)?;
    let mut doc = serde_json::to_value(&skill.manifest)
        .map_err(|e| Failure::other(format!("cannot encode the manifest: {e}")))?;
    if let Value::Object(map) = &mut doc {
        map.insert("path".into(), json!(skill.path.display().to_string()));
    }
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| Failure::other(format!("cannot encode the manifest: {e}")))?;
    println!("{text}");
    Ok(())
}
