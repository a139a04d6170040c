//! The env file against the one that is wanted.

use crate::sandbox::lock::EnvLock;
use crate::sandbox::observe::{EnvFound, EnvSeen};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvState {
    pub file: EnvFileState,
    /// The main checkout's copy, which the file starts from, changed since
    /// it was merged in. Verify reports it as stale; apply's plan already
    /// merges the new copy, so apply sees an out-of-date file instead.
    pub shared_changed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvFileState {
    /// As wanted: apply does nothing; verify has nothing to say.
    Written,
    /// No file: apply writes it; verify: "missing".
    Missing,
    /// There but not readable as text: apply refuses to overwrite what it
    /// did not write; verify: "missing".
    Unreadable,
    /// A symlink where the real file belongs (writing through it would
    /// change the main checkout's file): apply replaces the link with a
    /// real file; verify says why that matters.
    Symlink,
    /// Other contents: apply rewrites a file it wrote (`ours`) and refuses
    /// any other; verify names the overrides whose values changed.
    Edited { ours: bool, changed: Vec<String> },
}

pub fn env(want: &EnvLock, seen: &EnvSeen) -> EnvState {
    let file = match &seen.file {
        EnvFound::Nothing => EnvFileState::Missing,
        EnvFound::Unreadable => EnvFileState::Unreadable,
        EnvFound::Symlink => EnvFileState::Symlink,
        EnvFound::Text { hash, .. } if *hash == want.content => EnvFileState::Written,
        EnvFound::Text { ours, values, .. } => EnvFileState::Edited {
            ours: *ours,
            changed: want
                .overrides
                .iter()
                .filter(|(k, v)| values.get(*k) != Some(v))
                .map(|(k, _)| k.clone())
                .collect(),
        },
    };
    EnvState {
        file,
        shared_changed: seen.shared != want.shared,
    }
}

impl EnvFileState {
    /// How verify words it; `None` when written as wanted.
    pub fn message(&self) -> Option<String> {
        Some(match self {
            EnvFileState::Written => return None,
            EnvFileState::Missing | EnvFileState::Unreadable => "missing".into(),
            EnvFileState::Symlink => {
                "is a symlink: writing overrides through it would change the main checkout's file"
                    .into()
            }
            EnvFileState::Edited { changed, .. } if changed.is_empty() => {
                "edited since provision wrote it".into()
            }
            EnvFileState::Edited { changed, .. } => format!(
                "edited since provision wrote it ({} changed)",
                changed.join(", ")
            ),
        })
    }
}

impl EnvState {
    /// How verify words a changed shared source (of env file `file`).
    pub fn shared_message(&self, file: &str) -> Option<String> {
        self.shared_changed
            .then(|| format!("the main checkout's {file} changed since it was merged in"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn want() -> EnvLock {
        EnvLock {
            file: ".env.local".into(),
            shared: None,
            overrides: BTreeMap::from([
                ("DB_NAME".into(), "app_a".into()),
                ("PORT".into(), "20001".into()),
            ]),
            content: "blake3:written".into(),
        }
    }

    fn seen(file: EnvFound) -> EnvSeen {
        EnvSeen { file, shared: None }
    }

    fn text(hash: &str, ours: bool, port: &str) -> EnvFound {
        EnvFound::Text {
            hash: hash.into(),
            ours,
            values: BTreeMap::from([
                ("DB_NAME".into(), "app_a".into()),
                ("PORT".into(), port.into()),
            ]),
        }
    }

    #[test]
    fn the_file_is_written_only_with_the_wanted_contents() {
        let state = |found| env(&want(), &seen(found)).file;
        assert_eq!(
            state(text("blake3:written", true, "20001")),
            EnvFileState::Written
        );
        assert_eq!(
            state(text("blake3:other", true, "1")),
            EnvFileState::Edited {
                ours: true,
                changed: vec!["PORT".into()]
            }
        );
        assert_eq!(
            state(text("blake3:other", false, "20001")),
            EnvFileState::Edited {
                ours: false,
                changed: vec![]
            }
        );
        assert_eq!(state(EnvFound::Symlink), EnvFileState::Symlink);
        assert_eq!(state(EnvFound::Nothing), EnvFileState::Missing);
        assert_eq!(state(EnvFound::Unreadable), EnvFileState::Unreadable);
    }

    #[test]
    fn a_changed_shared_source_is_its_own_fact() {
        let mut want = want();
        want.shared = Some("blake3:old".into());
        let seen = EnvSeen {
            file: text("blake3:written", true, "20001"),
            shared: Some("blake3:new".into()),
        };
        let state = env(&want, &seen);
        assert_eq!(state.file, EnvFileState::Written);
        assert!(state.shared_changed);
    }

    #[test]
    fn verify_names_the_changed_overrides() {
        let edited = EnvFileState::Edited {
            ours: true,
            changed: vec!["DB_NAME".into(), "PORT".into()],
        };
        assert_eq!(
            edited.message().unwrap(),
            "edited since provision wrote it (DB_NAME, PORT changed)"
        );
        assert_eq!(EnvFileState::Unreadable.message().unwrap(), "missing");
        assert_eq!(EnvFileState::Written.message(), None);
    }
}
