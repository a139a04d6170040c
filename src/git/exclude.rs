//! Provision's own block in the shared `info/exclude`.

use std::path::Path;

use super::GitError;

const EXCLUDE_BEGIN: &str =
    "# >>> provision: links, env files and locks (managed, edits are overwritten) >>>";
const EXCLUDE_END: &str = "# <<< provision <<<";

/// The temp files of provision's atomic writes, anywhere in a worktree.
const TEMP_FILES: &str = ".provision-*";

/// `path` as a gitignore line that matches it alone: its pattern characters
/// and a trailing space escaped, so a linked `a*b` hides no other file.
fn literal(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '\\' | '*' | '?' | '[') {
            out.push('\\');
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.insert(out.len() - 1, '\\');
    }
    out
}

/// Keeps `paths` out of `git status` in every worktree through the shared
/// `info/exclude`: a symlink named `node_modules` is not matched by a
/// `.gitignore` line `node_modules/`, and an untracked file would block
/// `git worktree remove`. Only provision's own block is rewritten. Callers
/// hold the registry lock, since every worktree shares this file.
pub fn exclude_paths(common_dir: &Path, paths: &[String]) -> Result<bool, GitError> {
    let file = common_dir.join("info").join("exclude");
    let old = match fs_err::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.into()),
    };
    let mut kept = Vec::new();
    let mut in_block = false;
    let mut existing = Vec::new();
    for line in old.lines() {
        match line {
            EXCLUDE_BEGIN => in_block = true,
            EXCLUDE_END => in_block = false,
            _ if in_block => existing.push(line.to_string()),
            _ => kept.push(line.to_string()),
        }
    }
    let mut wanted: Vec<String> = existing.clone();
    // A write cut short by a kill leaves its temp file (`.provision-…`,
    // see `fsutil::write_atomically`): ignored, it blocks no `remove`.
    let lines = paths
        .iter()
        .map(|path| format!("/{}", literal(path)))
        .chain([TEMP_FILES.to_string()]);
    for line in lines {
        if !wanted.contains(&line) {
            wanted.push(line);
        }
    }
    wanted.sort();
    wanted.dedup();
    if wanted == existing {
        return Ok(false);
    }
    let mut text = kept.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(EXCLUDE_BEGIN);
    text.push('\n');
    for line in &wanted {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(EXCLUDE_END);
    text.push('\n');
    crate::fsutil::write_atomically(&file, text.as_bytes())?;
    Ok(true)
}

/// The paths in provision's block of the shared `info/exclude`, relative,
/// `/`-separated: what git does not show in any worktree's status.
pub fn excluded_paths(common_dir: &Path) -> Result<Vec<String>, GitError> {
    let file = common_dir.join("info").join("exclude");
    let text = match fs_err::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(text
        .lines()
        .skip_while(|l| *l != EXCLUDE_BEGIN)
        .skip(1)
        .take_while(|l| *l != EXCLUDE_END)
        .filter(|l| *l != TEMP_FILES)
        .map(|l| unescape(l.trim_start_matches('/')))
        .filter(|l| !l.is_empty())
        .collect())
}

/// The path a [`literal`] line names.
fn unescape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_matched_literally() {
        assert_eq!(literal("node_modules"), "node_modules");
        assert_eq!(literal("a*b?[c]\\d"), "a\\*b\\?\\[c]\\\\d");
        assert_eq!(literal("trailing "), "trailing\\ ");
        for path in ["a*b?[c]\\d", "trailing ", ".env"] {
            assert_eq!(unescape(&literal(path)), path);
        }
    }
}
