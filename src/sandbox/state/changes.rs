//! The lock against what the recipe now gives: what verify calls stale,
//! and what apply brings the sandbox (and then the lock) to.

use crate::sandbox::lock::{Hook, Link, LinkKind, LinkMode, Sandbox};
use crate::sandbox::setup;

/// A link of the recipe (or of the lock) that the other does not match.
/// Verify reports each as stale; apply acts on what is at a wanted link's
/// path (its `LinkState`), and on dropped links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkChange {
    /// Wanted by the recipe, not in the lock.
    Added,
    /// The recipe now realises it another way (symlink, copy, reflink).
    ModeChanged { wanted: LinkMode, locked: LinkMode },
    /// The main checkout's entry is now of another kind (or gone).
    KindChanged { kind: LinkKind },
    /// In the lock, no longer wanted: apply removes the symlink it made,
    /// where it is still there as made (a copy is the worktree's and stays).
    Dropped,
}

/// A `[[setup]]` command of the recipe against the lock's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Completed with this text, after the same commands: apply skips it.
    Done,
    /// Recorded as not completed: apply runs it (and all after it) again;
    /// verify reports it as drift, from the lock's record.
    Failed,
    /// Completed, but a command before it changed: apply runs it again.
    RunsAgain,
    /// Not run: apply runs it.
    New,
}

/// One way the lock differs from the recipe's plan, in the order verify
/// reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<'a> {
    Recipe,
    /// `link` is the recipe's, or for `Dropped` the lock's.
    Link {
        link: &'a Link,
        change: LinkChange,
    },
    Overrides {
        file: &'a str,
    },
    /// A command of the recipe that is not `Done`.
    Setup {
        run: &'a str,
        step: Step,
    },
    SetupDropped {
        run: &'a str,
    },
    DatabaseName {
        name: &'a str,
    },
    NotApplied {
        name: &'a str,
    },
}

/// The recipe's links against the lock's, then the lock's it no longer has.
pub fn link_changes<'a>(planned: &'a [Link], locked: &'a [Link]) -> Vec<(&'a Link, LinkChange)> {
    let mut out = Vec::new();
    for link in planned {
        let change = match locked.iter().find(|o| o.path == link.path) {
            None => LinkChange::Added,
            Some(old) if old.mode != link.mode => LinkChange::ModeChanged {
                wanted: link.mode,
                locked: old.mode,
            },
            Some(old) if old.kind != link.kind => LinkChange::KindChanged { kind: link.kind },
            Some(_) => continue,
        };
        out.push((link, change));
    }
    for old in locked
        .iter()
        .filter(|l| !planned.iter().any(|p| p.path == l.path))
    {
        out.push((old, LinkChange::Dropped));
    }
    out
}

/// Each of the recipe's commands against the lock's record.
pub fn steps(planned: &[Hook], locked: &[Hook]) -> Vec<Step> {
    let first = setup::first_pending(planned, locked);
    planned
        .iter()
        .enumerate()
        .map(|(index, hook)| match locked.get(index) {
            _ if index < first => Step::Done,
            Some(old) if old.run == hook.run && !old.completed => Step::Failed,
            Some(old) if old.run == hook.run => Step::RunsAgain,
            _ => Step::New,
        })
        .collect()
}

pub fn changes<'a>(locked: &'a Sandbox, planned: &'a Sandbox) -> Vec<Change<'a>> {
    let mut out = Vec::new();
    if locked.recipe != planned.recipe {
        out.push(Change::Recipe);
    }
    for (link, change) in link_changes(&planned.links, &locked.links) {
        out.push(Change::Link { link, change });
    }
    if let (Some(want), Some(have)) = (&planned.env, &locked.env)
        && want.overrides != have.overrides
    {
        out.push(Change::Overrides { file: &want.file });
    }
    let steps = steps(&planned.setup, &locked.setup);
    for (hook, step) in planned.setup.iter().zip(steps) {
        if step != Step::Done {
            out.push(Change::Setup {
                run: &hook.run,
                step,
            });
        }
    }
    for hook in locked
        .setup
        .iter()
        .filter(|h| !planned.setup.iter().any(|p| p.run == h.run))
    {
        out.push(Change::SetupDropped { run: &hook.run });
    }
    if planned.database.name != locked.database.name {
        out.push(Change::DatabaseName {
            name: &planned.database.name,
        });
    }
    for file in planned
        .database
        .migrations
        .iter()
        .filter(|m| !locked.database.migrations.iter().any(|l| l.name == m.name))
    {
        out.push(Change::NotApplied { name: &file.name });
    }
    out
}

impl Step {
    /// How verify words it.
    pub fn message(self) -> Option<&'static str> {
        match self {
            Step::Done => None,
            Step::Failed => Some("did not complete (`provision apply` runs it again)"),
            Step::RunsAgain => Some("runs again: a setup command before it changed"),
            Step::New => Some("not run yet"),
        }
    }
}

impl Change<'_> {
    /// What verify names.
    pub fn subject(&self) -> String {
        match self {
            Change::Recipe => "recipe".into(),
            Change::Link { link, .. } => format!("link {}", link.path),
            Change::Overrides { file } => format!("env file {file}"),
            Change::Setup { run, .. } | Change::SetupDropped { run } => format!("setup `{run}`"),
            Change::DatabaseName { .. } => "database".into(),
            Change::NotApplied { name } => format!("migration {name}"),
        }
    }

    /// How verify words it as stale; `None` for a failed setup command,
    /// which verify reports as drift.
    pub fn message(&self) -> Option<String> {
        Some(match self {
            Change::Recipe => {
                "provision.toml or .worktreeinclude changed since the lock was written".into()
            }
            Change::Link { link, change } => match change {
                LinkChange::Added => "wanted by the recipe, not in the lock".into(),
                LinkChange::ModeChanged { wanted, locked } => format!(
                    "the recipe now wants a {}, the lock has a {}",
                    wanted.as_str(),
                    locked.as_str()
                ),
                LinkChange::KindChanged { kind } => {
                    format!("the main checkout's {} is now {kind:?}", link.path).to_lowercase()
                }
                LinkChange::Dropped => "in the lock, no longer wanted by the recipe".into(),
            },
            Change::Overrides { .. } => "the recipe's overrides changed".into(),
            Change::Setup {
                step: Step::Failed, ..
            } => return None,
            Change::Setup { step, .. } => step.message()?.into(),
            Change::SetupDropped { .. } => "in the lock, no longer in the recipe".into(),
            Change::DatabaseName { name } => format!("the recipe now names it {name}"),
            Change::NotApplied { .. } => "not applied yet".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(list: &[(&str, bool)]) -> Vec<Hook> {
        Hook::list(list)
    }

    fn link(path: &str, kind: LinkKind, mode: LinkMode) -> Link {
        Link::to_main(path, kind, mode)
    }

    #[test]
    fn setup_runs_from_the_first_changed_or_failed_command() {
        let planned = hooks(&[("a", true), ("b", true), ("c", true)]);
        let locked = hooks(&[("a", true), ("b", false), ("c", true)]);
        assert_eq!(
            steps(&planned, &locked),
            [Step::Done, Step::Failed, Step::RunsAgain]
        );
        let locked = hooks(&[("a", true), ("B", true)]);
        assert_eq!(steps(&planned, &locked), [Step::Done, Step::New, Step::New]);
        assert_eq!(steps(&planned, &planned), [Step::Done; 3]);
    }

    #[test]
    fn links_are_added_changed_or_dropped() {
        use LinkKind::{Dir, File};
        use LinkMode::{Copy, Symlink};
        let planned = [
            link("a", File, Symlink),
            link("b", File, Copy),
            link("c", Dir, Symlink),
            link("d", File, Symlink),
        ];
        let locked = [
            link("b", File, Symlink),
            link("c", File, Symlink),
            link("d", File, Symlink),
            link("e", File, Symlink),
        ];
        let changes: Vec<(&str, LinkChange)> = link_changes(&planned, &locked)
            .into_iter()
            .map(|(l, c)| (l.path.as_str(), c))
            .collect();
        assert_eq!(
            changes,
            [
                ("a", LinkChange::Added),
                (
                    "b",
                    LinkChange::ModeChanged {
                        wanted: Copy,
                        locked: Symlink
                    }
                ),
                ("c", LinkChange::KindChanged { kind: Dir }),
                ("e", LinkChange::Dropped),
            ]
        );
    }

    #[test]
    fn a_failed_command_is_not_stale_but_drift() {
        let change = Change::Setup {
            run: "npm ci",
            step: Step::Failed,
        };
        assert_eq!(change.message(), None);
        assert_eq!(change.subject(), "setup `npm ci`");
        let kind = Change::Link {
            link: &link("config", LinkKind::Dir, LinkMode::Symlink),
            change: LinkChange::KindChanged {
                kind: LinkKind::Dir,
            },
        };
        assert_eq!(
            kind.message().unwrap(),
            "the main checkout's config is now dir"
        );
    }
}
