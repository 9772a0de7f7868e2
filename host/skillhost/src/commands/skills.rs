//! `skillhost skills list|describe|check`: what the skills sources hold, what each skill
//! declares, and whether a component would load before it is dropped in.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value, json};
use skillhost_contract::error::Failure;
use skillhost_contract::manifest::{OutputKind, ParamKind, SkillManifest};
use skillhost_contract::text::{escape, escape_in_json};
use skillhost_contract::versions::{self, CONTRACT_PACKAGE};
use skillhost_runtime::host::SkillHost;
use skillhost_runtime::limits::{SandboxLimits, human_bytes};
use skillhost_runtime::registry::SkillSource;
use skillhost_upstream::outbound::Connector;

use crate::global::{GlobalArgs, one_at_a_time};

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
    /// Vets one component file as the host would before it is dropped in: size, contract version,
    /// imports, compile, describe() and its parameters, linking. Prints what the host would say;
    /// exits 0 only when the host would load it.
    ///
    /// The verdict is kept in the compile cache like any other, so a component is compiled once
    /// whether it is checked, listed or run.
    Check {
        /// The component file (any name; dropped in, it must end in `.wasm`).
        file: PathBuf,
    },
}

/// Runs a `skills` subcommand.
pub async fn run(global: &GlobalArgs, command: SkillsCommand) -> Result<(), Failure> {
    if let SkillsCommand::Check { file } = command {
        return check(global, &file).await;
    }
    let host = global
        .open_host(
            one_at_a_time(SandboxLimits::default()),
            Connector::new(None),
        )
        .await?;
    match command {
        SkillsCommand::List => {
            report_problems(&host);
            list(&host);
            Ok(())
        }
        SkillsCommand::Describe { id } => describe(&host, &id),
        SkillsCommand::Check { .. } => Ok(()),
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
    // The manifest's text is the skill's: its unsafe characters escaped, the same JSON.
    println!("{}", escape_in_json(&text));
    Ok(())
}

/// `skills check FILE`: the registry's own vetting of one file, then linking, as a run would.
async fn check(global: &GlobalArgs, file: &Path) -> Result<(), Failure> {
    let shown = escape(&file.display().to_string()).into_owned();
    let host = global
        .open_host_over(
            one_at_a_time(SandboxLimits::default()),
            Connector::new(None),
            vec![SkillSource::File(file.to_path_buf())],
        )
        .await?;
    let refused = |why: &str| {
        Failure::usage(format!("{shown} would be refused: {}", escape(why))).with_hint(
            "docs/WRITING_SKILLS.md lists what the host checks; `skillhost -v skills check` \
             shows each step",
        )
    };
    if let Some(problem) = host.registry().problems().into_iter().next() {
        return Err(refused(&problem.message));
    }
    let Some(skill) = host.registry().skills().next() else {
        return Err(refused("no skill was found in it"));
    };
    let runtime = host.runtime();
    let component = host
        .registry()
        .component(runtime, &skill.manifest.id)
        .map_err(|f| refused(&f.message))?;
    let version = versions::detect(runtime.engine(), &component).map_err(|m| refused(&m))?;
    // Linking, as a run would (with the component at hand, not compiled or loaded again).
    runtime
        .prepare(&component, version)
        .map_err(|e| refused(&format!("cannot be linked: {e:#}")))?;
    // The contract imports by name; WASI is linked deny-all, so only its count is of interest.
    let (wasi, contract): (Vec<String>, Vec<String>) = component
        .component_type()
        .imports(runtime.engine())
        .map(|(name, _)| name.to_string())
        .partition(|name| name.starts_with("wasi:"));
    let wasi = wasi.len();
    let (major, minor) = version.major_minor();
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let m = &skill.manifest;
    println!("{shown}: the host would load it");
    let rows = [
        ("id", m.id.clone()),
        ("name", m.name.clone()),
        ("version", m.version.clone()),
        ("contract", format!("{CONTRACT_PACKAGE}@{major}.{minor}.x")),
        ("output", output_text(m)),
        ("parameters", parameters_text(m)),
        ("services", list_or_none(&m.services)),
        (
            "imports",
            format!(
                "{}; {wasi} WASI interfaces (linked deny-all)",
                list_or_none(&contract)
            ),
        ),
        (
            "size",
            human_bytes(usize::try_from(size).unwrap_or(usize::MAX)),
        ),
        ("digest", skill.digest()),
    ];
    for (label, value) in rows {
        println!("  {label:<11} {}", escape(&value));
    }
    Ok(())
}

fn output_text(m: &SkillManifest) -> String {
    match m.output {
        OutputKind::Object => "object".to_string(),
        OutputKind::Dataset => format!("dataset with columns {}", m.columns.join(", ")),
    }
}

fn parameters_text(m: &SkillManifest) -> String {
    let described: Vec<String> = m
        .parameters
        .iter()
        .map(|p| {
            let kind = match p.kind {
                ParamKind::Text => "text",
                ParamKind::Integer => "integer",
                ParamKind::Boolean => "boolean",
                ParamKind::Timestamp => "timestamp",
            };
            let mut text = format!("{} ({kind}", p.name);
            if p.required {
                text.push_str(", required");
            }
            if let Some(default) = &p.default {
                text.push_str(&format!(", default {default}"));
            }
            text.push(')');
            text
        })
        .collect();
    if described.is_empty() {
        "none".to_string()
    } else {
        described.join(", ")
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}
