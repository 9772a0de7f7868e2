//! The answer of `describe()`: who the skill is, what it takes, what it calls and what it gives.
//!
//! The version a skill reports is its own crate's, not this SDK's: [`describe!`](crate::describe!)
//! reads `CARGO_PKG_VERSION` where it is expanded, in the skill crate.

use crate::{OutputKind, ParamSpec, SkillInfo};

impl SkillInfo {
    /// An object-returning skill with no parameters and no services, named after its ID.
    ///
    /// `version` is the skill's own version: pass `env!("CARGO_PKG_VERSION")` from the skill
    /// crate (or use [`describe!`](crate::describe!), which does).
    pub fn new(id: &str, version: &str, description: &str) -> Self {
        SkillInfo {
            id: id.to_string(),
            name: id.to_string(),
            version: version.to_string(),
            description: description.to_string(),
            parameters: Vec::new(),
            services: Vec::new(),
            output: OutputKind::Object,
            columns: Vec::new(),
            output_description: String::new(),
        }
    }
}

/// Builds a [`SkillInfo`] step by step.
///
/// ```ignore
/// skillhost_guest::describe!("count_incidents")
///     .description("Counts the incidents of the last day.")
///     .services(&["defender", "graph"])
///     .build()
/// ```
#[derive(Debug, Clone)]
pub struct Describe {
    info: SkillInfo,
}

impl Describe {
    /// Starts the description of skill `id` at `version` (the skill's own version).
    pub fn new(id: &str, version: &str) -> Self {
        Describe {
            info: SkillInfo::new(id, version, ""),
        }
    }

    /// The human-readable name (default: the ID).
    pub fn name(mut self, name: &str) -> Self {
        self.info.name = name.to_string();
        self
    }

    /// One or two sentences on what the skill does.
    pub fn description(mut self, description: &str) -> Self {
        self.info.description = description.to_string();
        self
    }

    /// Adds a parameter.
    pub fn parameter(mut self, parameter: ParamSpec) -> Self {
        self.info.parameters.push(parameter);
        self
    }

    /// The services of the bound connection the skill calls (`defender`, `graph`).
    pub fn services(mut self, services: &[&str]) -> Self {
        self.info.services = services.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Makes the skill a dataset: rows leave through `emit` with these columns, in order, and
    /// `invoke` returns a summary.
    pub fn dataset(mut self, columns: &[&str]) -> Self {
        self.info.output = OutputKind::Dataset;
        self.info.columns = columns.iter().map(|c| c.to_string()).collect();
        self
    }

    /// What the output holds.
    pub fn output_description(mut self, text: &str) -> Self {
        self.info.output_description = text.to_string();
        self
    }

    /// The finished description.
    pub fn build(self) -> SkillInfo {
        self.info
    }
}

/// Starts a [`Describe`] of skill `id` with the version of the crate this macro is used in.
#[macro_export]
macro_rules! describe {
    ($id:expr) => {
        $crate::Describe::new($id, env!("CARGO_PKG_VERSION"))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParamKind;

    #[test]
    fn the_builder_keeps_the_version_it_is_given() {
        let info = Describe::new("count", "3.2.1")
            .description("Counts.")
            .parameter(ParamSpec::new(
                "top",
                ParamKind::Integer,
                false,
                "How many.",
            ))
            .services(&["defender"])
            .dataset(&["id", "title"])
            .build();
        assert_eq!(
            (
                info.id.as_str(),
                info.name.as_str(),
                info.version.as_str(),
                info.description.as_str(),
                info.parameters.len(),
                info.services.clone(),
                info.output,
                info.columns.clone(),
            ),
            (
                "count",
                "count",
                "3.2.1",
                "Counts.",
                1,
                vec!["defender".to_string()],
                OutputKind::Dataset,
                vec!["id".to_string(), "title".to_string()],
            )
        );
    }

    #[test]
    fn the_macro_reports_the_calling_crates_version() {
        // Expanded in this crate, so it is this crate's version; in a skill, the skill's.
        assert_eq!(
            crate::describe!("x").build().version,
            env!("CARGO_PKG_VERSION")
        );
    }
}
