//! `skillhost new ID --lang rust|python|js`: a skill project that builds and runs as it is.
//!
//! The templates, the Rust SDK (`skills/guest`), the Python helper module (`sdk/python`) and the
//! contract's WIT are compiled into the binary, so an installed `skillhost` creates projects
//! that build without the skillhost sources: the Rust SDK is vendored into the project
//! (`vendor/skillhost-guest`), and every project carries the WIT it binds. Every project has a
//! README whose first code block is the build command, a `skillhost.toml` pointing at
//! `skillhost simulate`, and a `test.sh` that builds, vets and runs the skill against it.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use skillhost_contract::error::Failure;
use skillhost_contract::text::escape;

/// The contract version new projects bind.
const CONTRACT_WIT: &str = "wit/skill@0.1.0/skill.wit";

/// `new` flags.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The skill's ID: lower-case letters, digits and `_`, starting with a letter (at most 64).
    pub id: String,
    /// The language of the project.
    #[arg(long, value_enum, default_value_t = Language::Rust)]
    pub lang: Language,
    /// The folder to create [default: ./ID]; it must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The languages a project can be made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Language {
    /// Rust, built with cargo for wasm32-wasip2, with the vendored SDK.
    Rust,
    /// Python, built with componentize-py 0.25.1.
    Python,
    /// JavaScript, built with componentize-js (npm), without wasi:http.
    Js,
}

/// One file of a project: where it goes and its text (`{{...}}` placeholders filled in).
struct File {
    path: &'static str,
    text: &'static str,
    executable: bool,
}

const fn file(path: &'static str, text: &'static str) -> File {
    File {
        path,
        text,
        executable: false,
    }
}

/// What every project holds.
const COMMON: &[File] = &[
    file(
        "skillhost.toml",
        include_str!("../../templates/common/skillhost.toml"),
    ),
    file(
        "README.md",
        include_str!("../../templates/common/README.md"),
    ),
    file(
        ".gitignore",
        include_str!("../../templates/common/gitignore"),
    ),
    File {
        path: "test.sh",
        text: include_str!("../../templates/common/test.sh"),
        executable: true,
    },
];

/// The contract every project binds, at the path each toolchain is pointed at.
const WIT: &str = include_str!("../../../../wit/skill@0.1.0/skill.wit");

/// A Rust project, with the SDK vendored.
const RUST: &[File] = &[
    file(
        "Cargo.toml",
        include_str!("../../templates/rust/Cargo.toml"),
    ),
    file(
        "src/lib.rs",
        include_str!("../../templates/rust/src/lib.rs"),
    ),
];

/// The Rust SDK, file by file, as it is in `skills/guest` (a test holds the two equal).
pub const RUST_SDK: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../../skills/guest/Cargo.toml"),
    ),
    (
        "README.md",
        include_str!("../../../../skills/guest/README.md"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../../skills/guest/src/lib.rs"),
    ),
    (
        "src/describe.rs",
        include_str!("../../../../skills/guest/src/describe.rs"),
    ),
    (
        "src/errors.rs",
        include_str!("../../../../skills/guest/src/errors.rs"),
    ),
    (
        "src/input.rs",
        include_str!("../../../../skills/guest/src/input.rs"),
    ),
    (
        "src/odata.rs",
        include_str!("../../../../skills/guest/src/odata.rs"),
    ),
    (
        "src/state.rs",
        include_str!("../../../../skills/guest/src/state.rs"),
    ),
    (
        "wit/skill@0.1.0/skill.wit",
        include_str!("../../../../skills/guest/wit/skill@0.1.0/skill.wit"),
    ),
    (
        "wit/skill@0.2.0/skill.wit",
        include_str!("../../../../skills/guest/wit/skill@0.2.0/skill.wit"),
    ),
];

/// A Python project.
const PYTHON: &[File] = &[
    file("app.py", include_str!("../../templates/python/app.py")),
    file(
        "skillhost_skill.py",
        include_str!("../../../../sdk/python/skillhost_skill.py"),
    ),
];

/// A JavaScript project.
const JS: &[File] = &[
    file("app.js", include_str!("../../templates/js/app.js")),
    file(
        "skillhost_skill.js",
        include_str!("../../../../sdk/js/skillhost_skill.js"),
    ),
    file(
        "package.json",
        include_str!("../../templates/js/package.json"),
    ),
];

impl Language {
    fn name(self) -> &'static str {
        match self {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::Js => "JavaScript",
        }
    }

    /// The one command that builds the component.
    fn build(self, id: &str) -> String {
        match self {
            Language::Rust => "cargo build --release --target wasm32-wasip2".to_string(),
            Language::Python => {
                format!("componentize-py -d wit/skill@0.1.0 -w skill componentize app -o {id}.wasm")
            }
            Language::Js => "npm install && npm run build".to_string(),
        }
    }

    /// Where the build writes the component, relative to the project.
    fn artifact(self, id: &str) -> String {
        match self {
            Language::Rust => format!("target/wasm32-wasip2/release/{id}.wasm"),
            Language::Python | Language::Js => format!("{id}.wasm"),
        }
    }

    fn prerequisites(self) -> &'static str {
        match self {
            Language::Rust => {
                "It needs Rust 1.95 or later and the target: `rustup target add wasm32-wasip2` \
                 (once). The SDK is vendored in `vendor/skillhost-guest`, so only crates.io is \
                 needed."
            }
            Language::Python => {
                "It needs componentize-py 0.25.1: `pip install componentize-py==0.25.1`. The \
                 build takes about 10 s and makes an 18 MB component; its first run compiles it \
                 (a few seconds), later runs load it from the compile cache."
            }
            Language::Js => {
                "It needs node and npm; `npm install` fetches componentize-js (pinned in \
                 `package.json`). The build leaves out `wasi:http` and the fetch handler \
                 (`-d http -d fetch-event`): the host refuses a skill that imports `wasi:http`."
            }
        }
    }

    fn files_table(self) -> &'static str {
        match self {
            Language::Rust => {
                "| `src/lib.rs` | the skill: `describe` and `invoke` |\n\
                 | `Cargo.toml` | the crate; its version is what `describe` reports |\n\
                 | `vendor/skillhost-guest` | the skillhost SDK, with the WIT it binds |\n\
                 | `skillhost.toml` | a connection to `skillhost simulate` |\n\
                 | `test.sh` | builds, checks and runs the skill against the simulator |"
            }
            Language::Python => {
                "| `app.py` | the skill: `describe` and `invoke` |\n\
                 | `skillhost_skill.py` | helpers: describe, input, HTTP errors, OData paging, log, emit |\n\
                 | `wit/skill@0.1.0` | the contract the skill binds |\n\
                 | `skillhost.toml` | a connection to `skillhost simulate` |\n\
                 | `test.sh` | builds, checks and runs the skill against the simulator |"
            }
            Language::Js => {
                "| `app.js` | the skill: `describe` and `invoke` |\n\
                 | `skillhost_skill.js` | helpers: describe, input, HTTP errors, OData paging, log |\n\
                 | `package.json` | componentize-js, pinned, and the build script |\n\
                 | `wit/skill@0.1.0` | the contract the skill binds |\n\
                 | `skillhost.toml` | a connection to `skillhost simulate` |\n\
                 | `test.sh` | builds, checks and runs the skill against the simulator |"
            }
        }
    }
}

/// Runs `skillhost new`.
pub fn run(args: NewArgs) -> Result<(), Failure> {
    check_id(&args.id)?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.id));
    let shown = escape(&dir.display().to_string()).into_owned();
    if let Ok(mut entries) = std::fs::read_dir(&dir)
        && entries.next().is_some()
    {
        return Err(
            Failure::usage(format!("{shown} exists and is not empty")).with_hint(
                "pick another folder with --dir, or remove this one; `skillhost new` never \
                 overwrites files",
            ),
        );
    }
    let lang = args.lang;
    let id = args.id.as_str();
    let build = lang.build(id);
    let artifact = lang.artifact(id);
    let render = |text: &str| {
        text.replace("{{id}}", id)
            .replace("{{build}}", &build)
            .replace("{{artifact}}", &artifact)
            .replace("{{language}}", lang.name())
            .replace("{{prerequisites}}", lang.prerequisites())
            .replace("{{files}}", lang.files_table())
    };
    let own = match lang {
        Language::Rust => RUST,
        Language::Python => PYTHON,
        Language::Js => JS,
    };
    for f in COMMON.iter().chain(own) {
        write(&dir, f.path, &render(f.text), f.executable)?;
    }
    match lang {
        Language::Rust => {
            for (path, text) in RUST_SDK {
                write(&dir, &format!("vendor/skillhost-guest/{path}"), text, false)?;
            }
        }
        Language::Python | Language::Js => write(&dir, CONTRACT_WIT, WIT, false)?,
    }
    println!("created {shown}: a {} skill `{id}`", lang.name());
    println!("next:");
    println!("  cd {shown}");
    println!("  {build}");
    println!("  skillhost skills check {artifact}");
    println!("  ./test.sh    # builds, checks and runs it against `skillhost simulate`");
    println!("{shown}/README.md and docs/WRITING_SKILLS.md of skillhost say more");
    Ok(())
}

/// Refuses an ID the host or a toolchain would trip on.
fn check_id(id: &str) -> Result<(), Failure> {
    let mut chars = id.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if starts_with_letter && rest_ok && id.len() <= 64 {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "`{}` is not a skill ID this command makes",
        escape(id)
    ))
    .with_hint(
        "use lower-case letters, digits and `_`, starting with a letter, at most 64 characters \
         (such as `list_risky_users`): the ID is also the crate and file name",
    ))
}

/// Writes `text` to `dir/path`, creating folders.
fn write(dir: &Path, path: &str, text: &str, executable: bool) -> Result<(), Failure> {
    let target = dir.join(path);
    let cannot = |e: std::io::Error| {
        Failure::other(format!(
            "cannot write {}: {e}",
            escape(&target.display().to_string())
        ))
    };
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(cannot)?;
    }
    std::fs::write(&target, text).map_err(cannot)?;
    #[cfg(not(unix))]
    let _ = executable;
    #[cfg(unix)]
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
            .map_err(cannot)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lower_case_words() {
        assert!(check_id("list_risky_users").is_ok());
        assert!(check_id("a1").is_ok());
        for bad in ["", "1abc", "Abc", "a-b", "a b", "a/b", &"a".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}
