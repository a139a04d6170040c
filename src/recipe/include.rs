//! `.worktreeinclude`: which untracked files of the main checkout every
//! worktree links to. One path or gitignore-style pattern per line, `#`
//! comments, blank lines, `!` to exclude again.

use std::collections::BTreeSet;
use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::git::{self, GitError, Untracked};

pub const FILE_NAME: &str = ".worktreeinclude";

#[derive(Debug, thiserror::Error)]
pub enum IncludeError {
    #[error("{FILE_NAME}:{line}: `{entry}` {why}")]
    Refused {
        line: usize,
        entry: String,
        why: &'static str,
    },
    #[error(
        "{FILE_NAME}:{line}: `{entry}` goes through `{folder}`, a symlink in the main checkout; list `{folder}` itself to link the whole folder"
    )]
    ThroughLink {
        line: usize,
        entry: String,
        folder: String,
    },
    #[error("{FILE_NAME}:{line}: `{entry}` is not a valid pattern")]
    Pattern {
        line: usize,
        entry: String,
        #[source]
        source: ignore::Error,
    },
    #[error("cannot build the matcher for {FILE_NAME}")]
    Matcher(#[source] ignore::Error),
    #[error("cannot read {FILE_NAME}")]
    Read(#[source] std::io::Error),
    #[error(transparent)]
    Git(#[from] GitError),
}

/// One line of `.worktreeinclude` that names something.
#[derive(Debug, Clone)]
pub struct Entry {
    pub line: usize,
    pub text: String,
}

impl Entry {
    fn is_literal(&self) -> bool {
        !self.text.starts_with('!') && !self.text.contains(['*', '?', '[', '\\'])
    }

    /// The path a literal entry names, without gitignore's anchoring `/`.
    fn literal_path(&self) -> &str {
        self.text.trim_start_matches('/').trim_end_matches('/')
    }

    /// The folder a pattern is confined to (`config/**/*.key` → `config`),
    /// used to decide whether an ignored folder must be looked into.
    fn static_prefix(&self) -> Option<&str> {
        let text = self.text.trim_start_matches('!').trim_start_matches('/');
        let glob_at = text.find(['*', '?', '[', '\\']).unwrap_or(text.len());
        let dir_end = text[..glob_at].rfind('/')?;
        Some(&text[..dir_end])
    }
}

/// What `.worktreeinclude` resolves to in the main checkout.
#[derive(Debug, Default, PartialEq)]
pub struct Resolved {
    /// Untracked paths to link, `/`-separated, with whether each is a folder.
    pub present: BTreeSet<(String, bool)>,
    /// Literal entries that do not exist in the main checkout.
    pub absent: BTreeSet<String>,
    /// Literal entries that git tracks: never replaced by a link.
    pub tracked: BTreeSet<String>,
}

pub fn load(main: &Path) -> Result<Vec<Entry>, IncludeError> {
    match fs_err::read_to_string(main.join(FILE_NAME)) {
        Ok(text) => parse(&text, main),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(IncludeError::Read(e)),
    }
}

pub fn parse(text: &str, main: &Path) -> Result<Vec<Entry>, IncludeError> {
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let entry = Entry {
            line,
            text: text.to_string(),
        };
        let body = text.trim_start_matches('!');
        let refuse = |why| {
            Err(IncludeError::Refused {
                line,
                entry: text.to_string(),
                why,
            })
        };
        if body.split('/').any(|part| part == "..") {
            return refuse("leaves the repository");
        }
        if body.starts_with("./") || body.contains("//") {
            return refuse(
                "names a path in two ways; write it without `./` or `//` (a leading `/` anchors it)",
            );
        }
        if body.starts_with('~') {
            return refuse("is a home-relative path; entries are relative to the repository");
        }
        // gitignore reads a leading `/` as "anchored at the root", and that is
        // how `/.env` is meant; `/etc/passwd` is someone's absolute path.
        if entry.is_literal() && body.starts_with('/') {
            let inside = main.join(entry.literal_path());
            if !inside.exists() && Path::new(body).exists() {
                return refuse("is an absolute path outside the repository");
            }
        }
        // A link inside a linked folder would reach wherever that folder
        // points, outside the repository as likely as not.
        if entry.is_literal()
            && let Some(folder) = linked_ancestor(main, entry.literal_path())
        {
            return Err(IncludeError::ThroughLink {
                line,
                entry: entry.text,
                folder,
            });
        }
        entries.push(entry);
    }
    refuse_own_files(&entries, main)?;
    Ok(entries)
}

/// Every worktree writes its own lock: a link in its place (`provision.lock`,
/// or a pattern such as `*` that takes it in) would make a sandbox that never
/// verifies. The entry that selects it is named.
fn refuse_own_files(entries: &[Entry], main: &Path) -> Result<(), IncludeError> {
    let own = crate::sandbox::lock::FILE_NAME;
    let matcher = build_matcher(entries, main)?;
    let ignore::Match::Ignore(glob) = matcher.matched(own, false) else {
        return Ok(());
    };
    let entry = entries
        .iter()
        .rev()
        .find(|e| e.text == glob.original())
        .or(entries.last())
        .expect("a match comes from an entry");
    Err(IncludeError::Refused {
        line: entry.line,
        entry: entry.text.clone(),
        why: "takes in provision.lock, which every worktree writes for itself: add `!provision.lock` after it, or narrow it",
    })
}

/// Matches the entries against the main checkout's untracked files.
pub fn resolve(
    entries: &[Entry],
    main_repo: &git2::Repository,
    main: &Path,
) -> Result<Resolved, IncludeError> {
    let mut resolved = Resolved::default();
    if entries.is_empty() {
        return Ok(resolved);
    }
    let head = git::head_tree(main_repo)?;

    let (literals, patterns): (Vec<&Entry>, Vec<&Entry>) =
        entries.iter().partition(|e| e.is_literal());
    for entry in &literals {
        let path = entry.literal_path().to_string();
        if git::committed(head.as_ref(), &path) {
            resolved.tracked.insert(path);
            continue;
        }
        // Follows a link in the main checkout (a `node_modules` that is itself
        // a symlink to a folder is linked as a folder).
        match fs_err::metadata(main.join(&path)) {
            Ok(meta) => {
                resolved.present.insert((path.clone(), meta.is_dir()));
            }
            Err(_) => {
                resolved.absent.insert(path);
            }
        }
    }

    // Patterns (and `!` exclusions, which apply to literals too) go through
    // gitignore's own matcher.
    let matcher = build_matcher(entries, main)?;
    resolved
        .present
        .retain(|(path, is_dir)| !matcher.matched(path, *is_dir).is_whitelist());
    if patterns.iter().any(|e| !e.text.starts_with('!')) {
        for candidate in candidates(main_repo, main, &patterns)? {
            if let Some(top) = topmost_match(&matcher, &candidate) {
                resolved.present.insert(top);
            }
        }
    }
    // A folder that is linked takes everything inside it along.
    let dirs: Vec<String> = resolved
        .present
        .iter()
        .filter(|(_, d)| *d)
        .map(|(p, _)| format!("{p}/"))
        .collect();
    resolved
        .present
        .retain(|(path, _)| !dirs.iter().any(|d| path.starts_with(d.as_str())));
    Ok(resolved)
}

/// The first folder on `path`'s way (not `path` itself) that is a symlink
/// in the main checkout.
fn linked_ancestor(main: &Path, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut folder = String::new();
    for part in parts.split_last()?.1 {
        if !folder.is_empty() {
            folder.push('/');
        }
        folder.push_str(part);
        match fs_err::symlink_metadata(main.join(&folder)) {
            Ok(meta) if meta.file_type().is_symlink() => return Some(folder),
            Ok(meta) if meta.is_dir() => {}
            _ => return None,
        }
    }
    None
}

fn build_matcher(entries: &[Entry], main: &Path) -> Result<Gitignore, IncludeError> {
    let mut builder = GitignoreBuilder::new(main);
    for entry in entries {
        builder
            .add_line(None, &entry.text)
            .map_err(|source| IncludeError::Pattern {
                line: entry.line,
                entry: entry.text.clone(),
                source,
            })?;
    }
    builder.build().map_err(IncludeError::Matcher)
}

/// The outermost folder of `candidate` (or `candidate` itself) that matches.
fn topmost_match(matcher: &Gitignore, candidate: &Untracked) -> Option<(String, bool)> {
    let parts: Vec<&str> = candidate.path.split('/').collect();
    for end in 1..=parts.len() {
        let path = parts[..end].join("/");
        let is_dir = end < parts.len() || candidate.is_dir;
        if matcher.matched(&path, is_dir).is_ignore() {
            return Some((path, is_dir));
        }
    }
    None
}

/// Untracked entries to match patterns against. Ignored folders are looked
/// into only when a pattern names a path inside them, so `node_modules` is
/// never walked unless asked for.
fn candidates(
    repo: &git2::Repository,
    main: &Path,
    patterns: &[&Entry],
) -> Result<Vec<Untracked>, IncludeError> {
    let prefixes: Vec<&str> = patterns.iter().filter_map(|e| e.static_prefix()).collect();
    let mut out = Vec::new();
    for entry in git::untracked(repo)? {
        let inside = format!("{}/", entry.path);
        let wanted_inside = entry.is_dir
            && prefixes
                .iter()
                .any(|p| format!("{p}/").starts_with(&inside) || p.starts_with(&inside));
        if wanted_inside {
            walk(main, &entry.path, &mut out).map_err(IncludeError::Read)?;
        }
        out.push(entry);
    }
    Ok(out)
}

fn walk(main: &Path, dir: &str, out: &mut Vec<Untracked>) -> std::io::Result<()> {
    for item in fs_err::read_dir(main.join(dir))? {
        let item = item?;
        let name = item.file_name().to_string_lossy().into_owned();
        let path = format!("{dir}/{name}");
        let is_dir = item.file_type()?.is_dir();
        if is_dir {
            walk(main, &path, out)?;
        }
        out.push(Untracked {
            path,
            is_dir,
            ignored: true,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Result<Vec<Entry>, IncludeError> {
        parse(text, Path::new("/nonexistent-main"))
    }

    #[test]
    fn comments_and_blanks_are_skipped() {
        let e = entries("# shared config\n\n.env\n  node_modules  \n").unwrap();
        assert_eq!(
            e.iter()
                .map(|e| (e.line, e.text.as_str()))
                .collect::<Vec<_>>(),
            [(3, ".env"), (4, "node_modules")]
        );
    }

    #[test]
    fn escaping_entries_are_refused_by_name() {
        let err = entries(".env\n../../etc/passwd\n").unwrap_err().to_string();
        assert_eq!(
            err,
            ".worktreeinclude:2: `../../etc/passwd` leaves the repository"
        );
        let err = entries("/etc/passwd\n").unwrap_err().to_string();
        assert!(err.contains("`/etc/passwd` is an absolute path"), "{err}");
    }

    #[test]
    fn static_prefix_of_patterns() {
        let e = entries("config/**/*.key\n*.local\n").unwrap();
        assert_eq!(e[0].static_prefix(), Some("config"));
        assert_eq!(e[1].static_prefix(), None);
    }
}
