//! Whether a registry record whose worktree git no longer lists is an
//! orphan: the one decision table `gc` acts on and `status` shows. The
//! evidence is gathered first, so the table itself is pure.

use std::path::Path;

use crate::git::{self, Worktree};
use crate::lifecycle::registry::{Claim, Record};
use crate::sandbox::lock;

/// What is known of a record that no listed worktree owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence {
    /// What git lists under the record's id (it reuses an id once its entry
    /// is gone).
    pub listed: Listed,
    /// What the admin dir under the record's id says of the record.
    pub claim: Claim,
    /// git still has an entry (`worktrees/<id>`) under the record's id.
    pub entry: bool,
    /// The record's folder still exists.
    pub folder: bool,
    /// That folder holds a lock naming this sandbox (its name and its
    /// database): whatever its claim says, it is this sandbox's worktree.
    pub locked_here: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// No worktree under the record's id.
    No,
    /// A worktree under the record's id, at the record's path.
    AtItsPath,
    /// A worktree under the record's id, elsewhere.
    Elsewhere,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not provably gone: the record and its database stay.
    Kept(Kept),
    /// Its worktree is gone: the sandbox is garbage.
    Orphan(Gone),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// At the record's own path but on another branch, without a claim: a
    /// newcomer under the reused id, or this sandbox's worktree after its
    /// claim was lost and its branch switched.
    Unclaimed,
    /// git still has an entry under the id that its list did not match to
    /// a path.
    EntryRemains,
    /// The worktree at its path holds its lock, but its claim is missing or
    /// names another sandbox (lost, or forged): `apply` there writes it.
    ClaimBroken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// git gave the record's id to another worktree.
    IdReused,
    /// git's entry is gone; the folder is still there.
    Entry,
    /// The folder and git's entry are both gone.
    FolderAndEntry,
}

impl Gone {
    pub fn reason(self) -> &'static str {
        match self {
            Gone::IdReused => "its worktree is gone; git gave its id to another worktree",
            Gone::Entry => "its git worktree entry is gone",
            Gone::FolderAndEntry => "its folder and git worktree entry are gone",
        }
    }
}

impl Evidence {
    /// The evidence on `record`, whose claim was read as `claim`, against
    /// git's list `worktrees`; `tag` is the clone's (`{clone}`).
    pub fn gather(
        record: &Record,
        claim: Claim,
        worktrees: &[Worktree],
        common_dir: &Path,
        tag: &str,
    ) -> Self {
        let listed = match worktrees.iter().find(|w| w.id == record.id) {
            None => Listed::No,
            Some(w) if git::same_path(&w.path, &record.path) => Listed::AtItsPath,
            Some(_) => Listed::Elsewhere,
        };
        let locked_here = lock::read(&record.path, tag)
            .ok()
            .flatten()
            .is_some_and(|read| {
                read.sandbox.worktree == record.name
                    && read.sandbox.database.name == record.database.name
            });
        Evidence {
            listed,
            claim,
            entry: git::has_entry(common_dir, &record.id),
            folder: record.path.exists(),
            locked_here,
        }
    }
}

pub fn judge(evidence: Evidence) -> Verdict {
    let Evidence {
        listed,
        claim,
        entry,
        folder,
        locked_here,
    } = evidence;
    match listed {
        Listed::AtItsPath if locked_here && claim != Claim::Ours => {
            Verdict::Kept(Kept::ClaimBroken)
        }
        Listed::AtItsPath if claim == Claim::Missing => Verdict::Kept(Kept::Unclaimed),
        Listed::AtItsPath | Listed::Elsewhere => Verdict::Orphan(Gone::IdReused),
        // An entry claiming another sandbox is the reused id's newcomer's.
        Listed::No if entry && claim != Claim::Other => Verdict::Kept(Kept::EntryRemains),
        Listed::No if folder => Verdict::Orphan(Gone::Entry),
        Listed::No => Verdict::Orphan(Gone::FolderAndEntry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLAIMS: [Claim; 3] = [Claim::Ours, Claim::Other, Claim::Missing];

    fn judged(listed: Listed, claim: Claim, entry: bool, folder: bool) -> Verdict {
        judge(Evidence {
            listed,
            claim,
            entry,
            folder,
            locked_here: false,
        })
    }

    #[test]
    fn unclaimed_at_its_own_path_is_kept() {
        for (entry, folder) in [(true, true), (false, false)] {
            assert_eq!(
                judged(Listed::AtItsPath, Claim::Missing, entry, folder),
                Verdict::Kept(Kept::Unclaimed)
            );
        }
    }

    #[test]
    fn its_id_under_another_worktree_is_an_orphan() {
        for claim in [Claim::Ours, Claim::Other] {
            assert_eq!(
                judged(Listed::AtItsPath, claim, true, true),
                Verdict::Orphan(Gone::IdReused)
            );
        }
        for claim in CLAIMS {
            for (entry, folder) in [(true, true), (false, false)] {
                assert_eq!(
                    judged(Listed::Elsewhere, claim, entry, folder),
                    Verdict::Orphan(Gone::IdReused)
                );
            }
        }
    }

    #[test]
    fn an_entry_git_did_not_list_keeps_it() {
        for claim in [Claim::Ours, Claim::Missing] {
            for folder in [true, false] {
                assert_eq!(
                    judged(Listed::No, claim, true, folder),
                    Verdict::Kept(Kept::EntryRemains)
                );
            }
        }
    }

    #[test]
    fn an_entry_that_claims_another_sandbox_does_not_keep_it() {
        assert_eq!(
            judged(Listed::No, Claim::Other, true, true),
            Verdict::Orphan(Gone::Entry)
        );
        assert_eq!(
            judged(Listed::No, Claim::Other, true, false),
            Verdict::Orphan(Gone::FolderAndEntry)
        );
    }

    #[test]
    fn no_entry_is_an_orphan_with_or_without_its_folder() {
        for claim in CLAIMS {
            assert_eq!(
                judged(Listed::No, claim, false, true),
                Verdict::Orphan(Gone::Entry)
            );
            assert_eq!(
                judged(Listed::No, claim, false, false),
                Verdict::Orphan(Gone::FolderAndEntry)
            );
        }
    }

    #[test]
    fn its_own_lock_at_its_path_keeps_it_whatever_the_claim_says() {
        for claim in [Claim::Other, Claim::Missing] {
            let evidence = Evidence {
                listed: Listed::AtItsPath,
                claim,
                entry: true,
                folder: true,
                locked_here: true,
            };
            assert_eq!(judge(evidence), Verdict::Kept(Kept::ClaimBroken));
        }
    }
}
