//! A link's path against the link that is wanted there.

use crate::sandbox::lock::{Link, LinkKind};
use crate::sandbox::observe::Found;

use super::kind_word;

/// What is at a link's path, against the wanted link. Apply acts on the
/// plan's non-absent links (the main checkout has nothing to link for an
/// absent one); verify reports every locked link that is not `InPlace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// As wanted: apply does nothing; verify has nothing to say.
    InPlace,
    /// Nothing there, or a symlink that cannot be read: apply links or
    /// copies; verify: "missing".
    Missing,
    /// A real file or folder where a symlink belongs: apply refuses (it is
    /// someone's data; `own_copy` when the lock records it as the
    /// worktree's copy); verify: "replaced by a regular file or folder".
    Occupied { have: LinkKind, own_copy: bool },
    /// A symlink where the worktree's own copy belongs: apply copies in its
    /// place (a symlink holds no data); verify says so.
    SymlinkForCopy,
    /// A real file or folder where a copy belongs that is not the copy the
    /// lock records (another kind, or not recorded): apply refuses; verify
    /// names both kinds.
    NotOurCopy { have: LinkKind, wanted: LinkKind },
    /// A symlink to something that does not exist: apply relinks; verify
    /// names the target.
    Dangling { target: String },
    /// A symlink to somewhere else: apply relinks; verify names both.
    Retargeted { target: String, wanted: String },
    /// The wanted symlink, to something of another kind: apply relinks;
    /// verify names both kinds.
    KindChanged { have: LinkKind, wanted: LinkKind },
}

/// `found` at `want`'s path. `own_copy`: the lock records a copy there.
pub fn link(want: &Link, found: &Found, own_copy: bool) -> LinkState {
    match found {
        Found::Nothing if want.kind == LinkKind::Absent => LinkState::InPlace,
        // The main checkout has nothing there to link: what the worktree
        // made there itself (`.wrangler` by wrangler) is its own.
        Found::Real(_) if want.kind == LinkKind::Absent => LinkState::InPlace,
        Found::Symlink { target, .. }
            if want.kind == LinkKind::Absent && *target != want.target =>
        {
            LinkState::InPlace
        }
        Found::Nothing | Found::Unreadable => LinkState::Missing,
        Found::Real(have) if want.mode.is_symlink() => LinkState::Occupied {
            have: *have,
            own_copy,
        },
        Found::Real(have) if *have == want.kind && own_copy => LinkState::InPlace,
        Found::Real(have) => LinkState::NotOurCopy {
            have: *have,
            wanted: want.kind,
        },
        Found::Symlink { .. } if !want.mode.is_symlink() => LinkState::SymlinkForCopy,
        Found::Symlink { target, kind } if *target == want.target && *kind == want.kind => {
            LinkState::InPlace
        }
        Found::Symlink {
            target,
            kind: LinkKind::Absent,
        } if want.kind != LinkKind::Absent => LinkState::Dangling {
            target: target.clone(),
        },
        Found::Symlink { target, .. } if *target != want.target => LinkState::Retargeted {
            target: target.clone(),
            wanted: want.target.clone(),
        },
        Found::Symlink { kind, .. } => LinkState::KindChanged {
            have: *kind,
            wanted: want.kind,
        },
    }
}

impl LinkState {
    /// How verify words it; `None` when in place.
    pub fn message(&self) -> Option<String> {
        Some(match self {
            LinkState::InPlace => return None,
            LinkState::Missing => "missing".into(),
            LinkState::Occupied { .. } => "replaced by a regular file or folder".into(),
            LinkState::SymlinkForCopy => "a symlink where the worktree's own copy belongs".into(),
            LinkState::NotOurCopy { have, wanted } => format!(
                "a {} where the worktree's own copy (a {}) belongs",
                kind_word(*have),
                kind_word(*wanted)
            ),
            LinkState::Dangling { target } => format!("points to {target}, which does not exist"),
            LinkState::Retargeted { target, wanted } => {
                format!("points to {target} instead of {wanted}")
            }
            LinkState::KindChanged { have, wanted } => {
                format!("now a {have:?} link, locked as {wanted:?}").to_lowercase()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::lock::LinkMode;

    fn want(kind: LinkKind, mode: LinkMode) -> Link {
        Link {
            path: "node_modules".into(),
            target: "{main}/node_modules".into(),
            kind,
            mode,
        }
    }

    fn symlink(target: &str, kind: LinkKind) -> Found {
        Found::Symlink {
            target: target.into(),
            kind,
        }
    }

    const MAIN: &str = "{main}/node_modules";

    #[test]
    fn a_symlink_is_in_place_only_to_its_target_and_kind() {
        let dir = want(LinkKind::Dir, LinkMode::Symlink);
        assert_eq!(
            link(&dir, &symlink(MAIN, LinkKind::Dir), false),
            LinkState::InPlace
        );
        assert_eq!(
            link(&dir, &symlink(MAIN, LinkKind::File), false),
            LinkState::KindChanged {
                have: LinkKind::File,
                wanted: LinkKind::Dir
            }
        );
        assert_eq!(
            link(&dir, &symlink("../x", LinkKind::Dir), false),
            LinkState::Retargeted {
                target: "../x".into(),
                wanted: MAIN.into()
            }
        );
        // Dangling wins over retargeted: the target is named either way.
        assert_eq!(
            link(&dir, &symlink("../x", LinkKind::Absent), false),
            LinkState::Dangling {
                target: "../x".into()
            }
        );
        assert_eq!(link(&dir, &Found::Nothing, false), LinkState::Missing);
        assert_eq!(link(&dir, &Found::Unreadable, false), LinkState::Missing);
        assert_eq!(
            link(&dir, &Found::Real(LinkKind::Dir), true),
            LinkState::Occupied {
                have: LinkKind::Dir,
                own_copy: true
            }
        );
    }

    #[test]
    fn the_worktrees_own_file_or_link_at_an_absent_links_path_is_in_place() {
        let absent = want(LinkKind::Absent, LinkMode::Symlink);
        assert_eq!(
            link(&absent, &Found::Real(LinkKind::Dir), false),
            LinkState::InPlace
        );
        assert_eq!(
            link(&absent, &symlink("/elsewhere", LinkKind::Dir), false),
            LinkState::InPlace
        );
    }

    #[test]
    fn an_absent_link_is_in_place_when_nothing_or_a_dangling_link_is_there() {
        let absent = want(LinkKind::Absent, LinkMode::Symlink);
        assert_eq!(link(&absent, &Found::Nothing, false), LinkState::InPlace);
        assert_eq!(
            link(&absent, &symlink(MAIN, LinkKind::Absent), false),
            LinkState::InPlace
        );
        assert_eq!(
            link(&absent, &symlink(MAIN, LinkKind::File), false),
            LinkState::KindChanged {
                have: LinkKind::File,
                wanted: LinkKind::Absent
            }
        );
    }

    #[test]
    fn a_copy_is_in_place_only_when_the_lock_records_it() {
        let copy = want(LinkKind::Dir, LinkMode::Copy);
        let real = Found::Real(LinkKind::Dir);
        assert_eq!(link(&copy, &real, true), LinkState::InPlace);
        assert_eq!(
            link(&copy, &real, false),
            LinkState::NotOurCopy {
                have: LinkKind::Dir,
                wanted: LinkKind::Dir
            }
        );
        assert_eq!(
            link(&copy, &Found::Real(LinkKind::File), true),
            LinkState::NotOurCopy {
                have: LinkKind::File,
                wanted: LinkKind::Dir
            }
        );
        assert_eq!(
            link(&copy, &symlink(MAIN, LinkKind::Dir), true),
            LinkState::SymlinkForCopy
        );
        assert_eq!(
            link(&copy, &symlink(MAIN, LinkKind::Absent), true),
            LinkState::SymlinkForCopy
        );
        assert_eq!(link(&copy, &Found::Unreadable, true), LinkState::Missing);
    }

    #[test]
    fn verify_words_each_state() {
        let words = |state: LinkState| state.message().unwrap_or_default();
        assert_eq!(words(LinkState::InPlace), "");
        assert_eq!(
            words(LinkState::NotOurCopy {
                have: LinkKind::File,
                wanted: LinkKind::Dir
            }),
            "a file where the worktree's own copy (a folder) belongs"
        );
        assert_eq!(
            words(LinkState::KindChanged {
                have: LinkKind::Dir,
                wanted: LinkKind::File
            }),
            "now a dir link, locked as file"
        );
        assert_eq!(
            words(LinkState::Retargeted {
                target: "../x".into(),
                wanted: MAIN.into()
            }),
            "points to ../x instead of {main}/node_modules"
        );
    }
}
