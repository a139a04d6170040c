//! The links step: each path `.worktreeinclude` resolves to becomes a link
//! to the main checkout's copy, in the mode `[links]` gives it.

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::{Inputs, PlanError};
use crate::recipe::config::{FILE_NAME, Settings};
use crate::sandbox::lock::{Link, LinkKind, LinkMode};

/// The links of a worktree, sorted by path; none for the main checkout,
/// whose files are the ones linked to. Skipped paths get a note.
pub(super) fn links(inputs: &Inputs, notes: &mut Vec<String>) -> Result<Vec<Link>, PlanError> {
    let env_file = inputs.settings.env_file.as_str();
    let mut links = Vec::new();
    let modes = Modes::new(inputs.settings);
    if !inputs.is_main {
        for (path, is_dir) in &inputs.resolved.present {
            if path == env_file {
                continue;
            }
            if inputs.tracked_in_worktree.contains(path) {
                notes.push(format!(
                    "{path}: tracked in this worktree's branch, not linked"
                ));
                continue;
            }
            let kind = if *is_dir {
                LinkKind::Dir
            } else {
                LinkKind::File
            };
            links.push(Link::to_main(path, kind, modes.of(path, *is_dir)?));
        }
        for path in &inputs.resolved.absent {
            if path != env_file {
                notes.push(format!(
                    "{path}: listed in .worktreeinclude but missing from the main checkout, skipped"
                ));
                links.push(Link::to_main(
                    path,
                    LinkKind::Absent,
                    modes.of(path, false)?,
                ));
            }
        }
    }
    for path in &inputs.resolved.tracked {
        notes.push(format!("{path}: tracked by git, never replaced by a link"));
    }
    links.sort();
    if !inputs.is_main {
        notes.extend(modes.unused(&links));
    }
    Ok(links)
}

/// The `[links]` patterns, each with its line and its own matcher so that
/// one that matches nothing can be named.
struct Modes(Vec<Mode>);

struct Mode {
    mode: LinkMode,
    pattern: String,
    line: usize,
    matcher: Gitignore,
}

impl Modes {
    fn new(settings: &Settings) -> Self {
        let (links, lines) = (&settings.links, &settings.lines);
        let modes = [
            (LinkMode::Copy, &links.copy, &lines.copy),
            (LinkMode::Reflink, &links.reflink, &lines.reflink),
        ];
        Modes(
            modes
                .into_iter()
                .flat_map(|(mode, patterns, lines)| {
                    patterns.iter().zip(lines).map(move |(p, l)| (mode, p, *l))
                })
                .map(|(mode, pattern, line)| {
                    let mut builder = GitignoreBuilder::new("/");
                    // Checked when the recipe was read.
                    let _ = builder.add_line(None, pattern);
                    let matcher = builder.build().unwrap_or_else(|_| Gitignore::empty());
                    Mode {
                        mode,
                        pattern: pattern.clone(),
                        line,
                        matcher,
                    }
                })
                .collect(),
        )
    }

    /// The mode of an included path: a pattern matching it, or a folder it
    /// lies in, as in `.gitignore`.
    fn of(&self, path: &str, is_dir: bool) -> Result<LinkMode, PlanError> {
        let hit = |mode| {
            self.0.iter().find(|m| {
                m.mode == mode
                    && m.matcher
                        .matched_path_or_any_parents(path, is_dir)
                        .is_ignore()
            })
        };
        match (hit(LinkMode::Copy), hit(LinkMode::Reflink)) {
            (Some(copy), Some(reflink)) => Err(PlanError::TwoModes {
                path: path.to_string(),
                copy: copy.pattern.clone(),
                line: copy.line,
                reflink: reflink.pattern.clone(),
                reflink_line: reflink.line,
            }),
            (Some(_), None) => Ok(LinkMode::Copy),
            (None, Some(_)) => Ok(LinkMode::Reflink),
            (None, None) => Ok(LinkMode::Symlink),
        }
    }

    /// Patterns that match none of `links`: most likely a path inside a
    /// folder that is linked whole, or one `.worktreeinclude` does not list.
    fn unused<'a>(&'a self, links: &'a [Link]) -> impl Iterator<Item = String> + 'a {
        self.0.iter().filter_map(move |Mode { mode, pattern, line, matcher }| {
            let used = links.iter().any(|l| {
                matcher
                    .matched_path_or_any_parents(&l.path, l.kind == LinkKind::Dir)
                    .is_ignore()
            });
            (!used).then(|| {
                format!(
                    "{FILE_NAME}:{line}: links.{} `{pattern}` matches no path .worktreeinclude links (a path inside a linked folder cannot be copied on its own: list it in .worktreeinclude instead of its folder)",
                    mode.as_str()
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::case::Case;
    use crate::sandbox::lock::{Link, LinkKind, LinkMode};

    fn link(path: &str, kind: LinkKind, mode: LinkMode) -> Link {
        Link::to_main(path, kind, mode)
    }

    #[test]
    fn present_paths_link_to_the_main_checkout_sorted_by_path() {
        let case = Case::new().include(&[".wrangler/", ".env", "node_modules/"], &[]);
        let plan = case.plan().unwrap();
        assert_eq!(
            plan.sandbox.links,
            [
                link(".env", LinkKind::File, LinkMode::Symlink),
                link(".wrangler", LinkKind::Dir, LinkMode::Symlink),
                link("node_modules", LinkKind::Dir, LinkMode::Symlink),
            ]
        );
        assert_eq!(plan.sandbox.links[0].target, "{main}/.env");
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn absent_paths_are_recorded_and_noted() {
        let plan = Case::new().include(&[".env"], &[".npmrc"]).plan().unwrap();
        assert_eq!(
            plan.sandbox.links,
            [
                link(".env", LinkKind::File, LinkMode::Symlink),
                link(".npmrc", LinkKind::Absent, LinkMode::Symlink),
            ]
        );
        assert_eq!(
            plan.notes,
            [".npmrc: listed in .worktreeinclude but missing from the main checkout, skipped"]
        );
    }

    #[test]
    fn tracked_paths_are_never_linked() {
        let mut case = Case::new().include(&[".env", "vendor/"], &[]);
        case.resolved.tracked.insert("README.md".into());
        case.tracked_in_worktree.insert("vendor".into());
        let plan = case.plan().unwrap();
        assert_eq!(
            plan.sandbox.links,
            [link(".env", LinkKind::File, LinkMode::Symlink)]
        );
        assert_eq!(
            plan.notes,
            [
                "vendor: tracked in this worktree's branch, not linked",
                "README.md: tracked by git, never replaced by a link",
            ]
        );
    }

    #[test]
    fn the_env_file_is_never_a_link() {
        let case = Case::new()
            .recipe("[env]\nfile = \".dev.vars\"\n")
            .include(&[".dev.vars", ".env"], &[]);
        let links = case.plan().unwrap().sandbox.links;
        assert_eq!(links, [link(".env", LinkKind::File, LinkMode::Symlink)]);
        let case = Case::new().include(&[".env"], &[".env.local"]);
        let plan = case.plan().unwrap();
        assert_eq!(plan.sandbox.links.len(), 1);
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn the_main_checkout_gets_no_links() {
        let mut case = Case::new()
            .recipe("[links]\ncopy = [\"nothing\"]\n")
            .include(&[".env", "node_modules/"], &[".npmrc"])
            .in_main();
        case.resolved.tracked.insert("README.md".into());
        let plan = case.plan().unwrap();
        assert!(plan.sandbox.links.is_empty());
        assert_eq!(
            plan.notes,
            ["README.md: tracked by git, never replaced by a link"]
        );
    }

    #[test]
    fn modes_come_from_copy_and_reflink_patterns() {
        let case = Case::new()
            .recipe("[links]\ncopy = [\"*.key\", \"cache\"]\nreflink = [\".wrangler\"]\n")
            .include(
                &[".env", "config/a.key", "cache/x/", ".wrangler/"],
                &["b.key"],
            );
        let plan = case.plan().unwrap();
        assert_eq!(
            plan.sandbox.links,
            [
                link(".env", LinkKind::File, LinkMode::Symlink),
                link(".wrangler", LinkKind::Dir, LinkMode::Reflink),
                link("b.key", LinkKind::Absent, LinkMode::Copy),
                // A folder's pattern covers what lies inside it.
                link("cache/x", LinkKind::Dir, LinkMode::Copy),
                link("config/a.key", LinkKind::File, LinkMode::Copy),
            ]
        );
        assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
    }

    #[test]
    fn a_pattern_inside_a_linked_folder_is_noted_as_unused() {
        let case = Case::new()
            .recipe("[links]\nreflink = [\n  \"node_modules/.cache\",\n]\n")
            .include(&["node_modules/"], &[]);
        let plan = case.plan().unwrap();
        assert_eq!(
            plan.sandbox.links,
            [link("node_modules", LinkKind::Dir, LinkMode::Symlink)]
        );
        assert_eq!(
            plan.notes,
            [
                "provision.toml:3: links.reflink `node_modules/.cache` matches no path .worktreeinclude links (a path inside a linked folder cannot be copied on its own: list it in .worktreeinclude instead of its folder)"
            ]
        );
    }

    #[test]
    fn a_path_in_both_modes_is_refused_with_both_lines() {
        let case = Case::new()
            .recipe(
                "[links]\ncopy = [\"node_modules\"]\nreflink = [\n\"x\",\n\"node_modules/**\"]\n",
            )
            .include(&["node_modules/a/"], &[]);
        let err = case.plan().err().unwrap().to_string();
        assert_eq!(
            err,
            "provision.toml:2: node_modules/a matches both links.copy `node_modules` and links.reflink `node_modules/**` (line 5); keep it in one of them"
        );
    }
}
