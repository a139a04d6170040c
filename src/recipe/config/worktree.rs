//! `[worktree]`: where `provision new NAME` puts the worktree.

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Source};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawWorktree {
    path: Option<Spanned<String>>,
}

pub(super) fn resolve(
    raw: RawWorktree,
    source: &Source,
    path: &mut String,
) -> Result<(), ConfigError> {
    if let Some(value) = raw.path {
        source.templates(
            &value,
            "worktree.path",
            &["name", "slug", "repo", "main"],
            "the worktree path is chosen before the sandbox exists",
        )?;
        *path = value.into_inner();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::recipe::config::{Settings, parse};

    #[test]
    fn defaults_to_a_sibling_folder() {
        assert_eq!(
            parse("[worktree]\n").unwrap().worktree_path,
            "../worktree-{name}"
        );
        assert_eq!(Settings::default().worktree_path, "../worktree-{name}");
    }

    #[test]
    fn takes_the_path_and_its_templates() {
        let s = parse("[worktree]\npath = \"{main}/../wt/{slug}\"\n").unwrap();
        assert_eq!(s.worktree_path, "{main}/../wt/{slug}");
    }

    #[test]
    fn errors_name_their_line() {
        for (text, want) in [
            (
                "[worktree]\n\npath = \"../{db}\"\n",
                "provision.toml:3: worktree.path: `{db}` cannot be used here: the worktree path is chosen before the sandbox exists",
            ),
            (
                "[worktree]\npath = \"{nme}\"\n",
                "provision.toml:2: worktree.path: unknown template `{nme}`; known: {name} {slug} {db} {repo} {port} {main} {worktree} {clone} {migration} {entry} {port.NAME}",
            ),
            (
                "[worktree]\npath = \"{name\"\n",
                "provision.toml:2: worktree.path: unclosed `{` (write `{{` for a literal brace)",
            ),
            (
                "[worktree]\npath = 3\n",
                "provision.toml:2: invalid type: integer `3`, expected a string",
            ),
            (
                "worktree = 3\n",
                "provision.toml:1: invalid type: integer `3`, expected a table",
            ),
            (
                "[worktree]\npaht = \"x\"\n",
                "provision.toml:2: unknown field `paht`, expected `path`",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), want, "{text:?}");
        }
    }
}
