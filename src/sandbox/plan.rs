//! The plan: recipe × worktree ⇒ the sandbox it should have. Pure: every
//! fact it needs is observed beforehand and passed in, and the result holds
//! no timestamps, host names or absolute paths (unless a recipe template puts
//! them into an env value).

use std::collections::{BTreeMap, BTreeSet};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::db::migrations::{self, Migration};
use crate::hash;
use crate::recipe::config::Settings;
use crate::recipe::include::Resolved;
use crate::recipe::template::{self, TemplateError};
use crate::sandbox::envfile;
use crate::sandbox::lock::{
    DatabaseLock, EnvLock, Hook, Link, LinkKind, LinkMode, Sandbox, VERSION,
};
use crate::slug;

/// Everything the plan depends on.
pub struct Inputs<'a> {
    pub settings: &'a Settings,
    /// Lines of `.worktreeinclude`, part of the recipe hash.
    pub include_lines: Vec<String>,
    pub name: &'a str,
    pub repo: &'a str,
    pub port: u16,
    pub main: &'a str,
    pub worktree: &'a str,
    pub is_main: bool,
    pub resolved: &'a Resolved,
    /// Paths the worktree's own index tracks among the resolved ones.
    pub tracked_in_worktree: &'a BTreeSet<String>,
    /// The main checkout's copy of the env file, when that file is also linked.
    pub shared_env: Option<&'a str>,
    pub migrations: &'a [Migration],
}

pub struct Plan {
    pub sandbox: Sandbox,
    /// The env file's text, when there is one to write.
    pub env_text: Option<String>,
    /// Things the user should know that are not errors.
    pub notes: Vec<String>,
    /// The template values (`{db}`, `{port}`, …).
    pub values: BTreeMap<&'static str, String>,
}

/// The database name a sandbox gets: the `name` template, slugged and cut.
pub fn database_name(settings: &Settings, name: &str, repo: &str) -> Result<String, TemplateError> {
    let values = BTreeMap::from([
        ("name", name.to_string()),
        ("slug", slug::slug(name)),
        ("repo", repo.to_string()),
    ]);
    Ok(slug::identifier(&template::expand(
        &settings.database.name,
        &values,
    )?))
}

/// The values of a sandbox's templates.
pub fn values(
    name: &str,
    repo: &str,
    db: &str,
    port: u16,
    main: &str,
    worktree: &str,
) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("name", name.to_string()),
        ("slug", slug::slug(name)),
        ("repo", repo.to_string()),
        ("db", db.to_string()),
        ("port", port.to_string()),
        ("main", main.to_string()),
        ("worktree", worktree.to_string()),
    ])
}

/// The env overrides, expanded.
pub fn overrides(
    settings: &Settings,
    values: &BTreeMap<&'static str, String>,
) -> Result<BTreeMap<String, String>, TemplateError> {
    settings
        .env_vars
        .iter()
        .map(|(key, value)| Ok((key.clone(), template::expand(value, values)?)))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(
        "env.file `{file}` lies inside `{link}`, which is linked from the main checkout: writing it would change the main checkout's copy; choose a path outside `{link}`"
    )]
    EnvInsideLink { file: String, link: String },
    #[error(
        "{}:{line}: {path} matches both links.copy `{copy}` and links.reflink `{reflink}` (line {reflink_line}); keep it in one of them",
        crate::recipe::config::FILE_NAME
    )]
    TwoModes {
        path: String,
        copy: String,
        line: usize,
        reflink: String,
        reflink_line: usize,
    },
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
                    "{}:{line}: links.{} `{pattern}` matches no path .worktreeinclude links (a path inside a linked folder cannot be copied on its own: list it in .worktreeinclude instead of its folder)",
                    crate::recipe::config::FILE_NAME,
                    mode.as_str()
                )
            })
        })
    }
}

pub fn plan(inputs: &Inputs) -> Result<Plan, PlanError> {
    let settings = inputs.settings;
    let mut notes = Vec::new();
    let db = database_name(settings, inputs.name, inputs.repo)?;
    let values = values(
        inputs.name,
        inputs.repo,
        &db,
        inputs.port,
        inputs.main,
        inputs.worktree,
    );

    let env_file = settings.env_file.as_str();
    let env_is_shared = inputs.resolved.present.iter().any(|(p, _)| p == env_file);
    if let Some((link, _)) = inputs
        .resolved
        .present
        .iter()
        .find(|(p, is_dir)| *is_dir && env_file.starts_with(&format!("{p}/")))
    {
        return Err(PlanError::EnvInsideLink {
            file: env_file.to_string(),
            link: link.clone(),
        });
    }
    let mut links = Vec::new();
    let modes = Modes::new(settings);
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
            links.push(Link {
                path: path.clone(),
                target: format!("{{main}}/{path}"),
                kind,
                mode: modes.of(path, *is_dir)?,
            });
        }
        for path in &inputs.resolved.absent {
            if path != env_file {
                notes.push(format!(
                    "{path}: listed in .worktreeinclude but missing from the main checkout, skipped"
                ));
                links.push(Link {
                    path: path.clone(),
                    target: format!("{{main}}/{path}"),
                    kind: LinkKind::Absent,
                    mode: modes.of(path, false)?,
                });
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

    let overrides = overrides(settings, &values)?;
    let (env, env_text) = if inputs.is_main && env_is_shared {
        notes.push(format!(
            "{env_file}: in the main checkout this is the file every worktree shares; overrides are not written into it"
        ));
        (None, None)
    } else {
        let shared = if env_is_shared {
            inputs.shared_env
        } else {
            None
        };
        let text = envfile::render(shared, &overrides);
        let lock = EnvLock {
            file: env_file.to_string(),
            shared: shared.map(|s| hash::of(s.as_bytes())),
            overrides,
            content: hash::of(text.as_bytes()),
        };
        (Some(lock), Some(text))
    };

    let applied: Vec<_> = inputs.migrations.iter().map(Migration::record).collect();
    let database = DatabaseLock {
        kind: settings.database.kind,
        location: crate::db::location(settings.database.kind, &db),
        name: db,
        chain: migrations::chain(&applied),
        migrations: applied,
    };

    let recipe = serde_json::json!({ "settings": settings, "include": inputs.include_lines });
    let sandbox = Sandbox {
        version: VERSION,
        worktree: inputs.name.to_string(),
        recipe: hash::of(&serde_json::to_vec(&recipe).expect("a JSON value always serializes")),
        links,
        env,
        database,
        port: inputs.port,
        setup: settings
            .setup
            .iter()
            .map(|run| Hook {
                run: run.clone(),
                completed: true,
            })
            .collect(),
    };
    Ok(Plan {
        sandbox,
        env_text,
        notes,
        values,
    })
}
