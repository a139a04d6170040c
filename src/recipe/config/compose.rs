//! Docker Compose: in a repository with a compose file, each sandbox's
//! containers, networks and volumes get a project of their own, through
//! `COMPOSE_PROJECT_NAME` among the default overrides.

use std::collections::BTreeMap;
use std::path::Path;

/// The files `docker compose` looks for in a project folder, in its order.
const FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// The variable compose takes its project name from.
pub const VAR: &str = "COMPOSE_PROJECT_NAME";

/// The database name: slugged to `[a-z0-9_]`, and unique among the
/// repository's sandboxes (provision refuses a second sandbox with the same
/// one), as a compose project name must be.
const VALUE: &str = "{db}";

/// Whether the main checkout has a compose file.
pub(super) fn present(main: &Path) -> bool {
    FILES.iter().any(|file| main.join(file).is_file())
}

/// Adds the project name to the default overrides.
pub(super) fn add_default(vars: &mut BTreeMap<String, String>) {
    vars.entry(VAR.to_string())
        .or_insert_with(|| VALUE.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::config::{Settings, parse_for};

    #[test]
    fn a_compose_file_adds_the_project_name_to_the_default_overrides() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!present(dir.path()));
        fs_err::write(dir.path().join("docker-compose.yml"), "services: {}\n").unwrap();
        assert!(present(dir.path()));

        let settings = parse_for("", true).unwrap();
        assert_eq!(settings.env_vars[VAR], "{db}");
        assert_eq!(settings.env_vars.len(), 3);
        assert_eq!(parse_for("", false).unwrap(), Settings::default());
        // Given `[env.vars]` replace every default, this one too.
        let given = parse_for("[env.vars]\nA = \"x\"\n", true).unwrap();
        assert!(!given.env_vars.contains_key(VAR));
    }

    /// Compose takes a project name of lowercase letters, digits, `-` and
    /// `_`, starting with a letter or digit: the database name is one.
    #[test]
    fn the_project_name_is_one_compose_takes() {
        let settings = Settings::default();
        for name in [
            "feature",
            "Feature/Auth-2",
            "x".repeat(90).as_str(),
            "ünïcode",
        ] {
            let db =
                crate::sandbox::plan::database_name(&settings, name, "My.App", "0a1b2c3d", None)
                    .unwrap();
            let mut chars = db.chars();
            assert!(
                chars
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "{db}"
            );
            assert!(
                chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{db}"
            );
        }
    }
}
