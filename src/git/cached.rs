//! Whether a worktree is clean, answered from what git itself keeps about
//! it: the stat data its index caches for every tracked file, and the cache
//! tree that names the tree the index holds. By git's own rules a tracked
//! file whose `lstat` still matches what the index recorded is unchanged
//! (unless it is "racily clean": changed in the second the index was
//! written), an index whose cache tree is HEAD's tree has nothing staged,
//! and a listing of each folder, with git's ignore rules, says whether
//! anything is untracked.
//!
//! This only ever proves a worktree clean. Whatever it cannot decide by
//! those rules (a stat that changed, a racily clean entry, a conflict, a
//! sparse, split or extended index, a submodule, an untracked path it does
//! not see ignored, a setting it does not follow) is left to `git status`,
//! which answers it and refreshes the index for the next time. It reads
//! only: no file is opened but folders, the index and ignore files.
//!
//! `git status` re-reads the index and `lstat`s every tracked file by its
//! whole path in a process of its own; here the files are `lstat`ed by name
//! within their open folder, in the process that asks.
//!
//! Listing every folder is a fifth of the work. A proof leaves a record
//! (`provision-clean`, beside the worktree's index): the time it started,
//! and which index and exclude files it read. While those are the same
//! files, a folder not changed since (its ctime older than that time:
//! adding, removing or renaming a name in a folder changes it) still
//! holds the names the proof listed, all tracked or ignored, so only its
//! tracked files are looked at again. A proof that met an untracked folder
//! git does not ignore (its contents can change without its parent's
//! ctime), or an ignore file git does not track, leaves no record; nor
//! does a worktree on a file system whose timestamps are not the local
//! clock's (network or FUSE file systems). This is git's own untracked
//! cache, kept by provision.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// What the repository's git config decides about ignored files, read once
/// for all its worktrees.
pub struct Excludes {
    /// `info/exclude` of the common dir, shared by every worktree.
    info: Gitignore,
    /// `core.excludesFile`, by default `$XDG_CONFIG_HOME/git/ignore`.
    global: Gitignore,
    /// Which files those were, as a record names them.
    files: String,
}

impl Excludes {
    /// The excludes git applies in `main`'s repository, or `None` when git
    /// is set up in a way this module does not follow: environment that
    /// points git elsewhere, names that ignore case, per-worktree config or
    /// conditional includes (`includeIf`), another hash than SHA-1, an exclude file it cannot read as git does.
    pub fn load(main: &Path, common_dir: &Path) -> Option<Excludes> {
        const REDIRECTS: [&str; 5] = [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_COMMON_DIR",
            "GIT_OBJECT_DIRECTORY",
        ];
        if REDIRECTS.iter().any(|v| std::env::var_os(v).is_some()) {
            return None;
        }
        // git's own view of its config (system, global, repository, and
        // whatever GIT_CONFIG_* says), as its `status` would read it.
        let args = ["config", "-z", "--list"].map(String::from);
        let listing = super::run_git(main, &args).ok()?;
        Self::from_config(&listing, common_dir)
    }

    /// From `git config -z --list`'s output.
    fn from_config(listing: &str, common_dir: &Path) -> Option<Excludes> {
        let mut excludes_file = None;
        for entry in listing.split('\0').filter(|e| !e.is_empty()) {
            let (key, value) = entry.split_once('\n').unwrap_or((entry, "true"));
            match key {
                "core.ignorecase" | "extensions.worktreeconfig" if !is_false(value) => return None,
                "extensions.objectformat" if !value.eq_ignore_ascii_case("sha1") => return None,
                "core.excludesfile" => excludes_file = Some(value.to_string()),
                // Read here once, in the main checkout: a condition on the
                // branch or git dir can set other excludes in a worktree.
                _ if key.starts_with("includeif.") => return None,
                _ => {}
            }
        }
        let global = match excludes_file {
            Some(value) => Some(expand_home(&value)?),
            None => default_excludes_file(),
        };
        let info_path = common_dir.join("info").join("exclude");
        let files = format!(
            "{} {}",
            identity(&info_path),
            global.as_deref().map_or_else(|| "-".into(), identity)
        );
        Some(Excludes {
            info: load_file(&info_path, true)?,
            global: match global {
                Some(path) => load_file(&path, true)?,
                None => Gitignore::empty(),
            },
            files,
        })
    }
}

/// Which file is at `path` (followed), as the file system tells files apart
/// and marks a change: `-` when there is none.
fn identity(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    fs_err::metadata(path).map_or_else(
        |_| "-".into(),
        |m| {
            format!(
                "{}:{}:{}:{}.{}:{}.{}",
                m.dev(),
                m.ino(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec()
            )
        },
    )
}

/// git's false (`false`, `no`, `off`, `0`, empty); anything else is taken
/// as true, so an odd value turns this module off rather than on.
fn is_false(value: &str) -> bool {
    ["false", "no", "off", "0", ""]
        .iter()
        .any(|f| value.eq_ignore_ascii_case(f))
}

/// A config path as git reads it: `~/` is the home folder. `~user/`, and a
/// relative path (git opens it from each worktree's root), are not
/// followed here (`None`).
fn expand_home(value: &str) -> Option<PathBuf> {
    match value.strip_prefix("~/") {
        Some(rest) => Some(PathBuf::from(std::env::var_os("HOME")?).join(rest)),
        None => Some(PathBuf::from(value)).filter(|p| p.is_absolute()),
    }
}

fn default_excludes_file() -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(config) => Some(PathBuf::from(config).join("git").join("ignore")),
        None => Some(PathBuf::from(std::env::var_os("HOME")?).join(".config/git/ignore")),
    }
}

/// The patterns of one ignore file, matched with paths relative to its
/// folder; none when there is no file. `None` when git would read it
/// differently: not a regular file (git does not follow a `.gitignore`
/// symlink in the worktree), unreadable, a line this matcher rejects (an
/// unclosed `[`, which git never matches), or a line ending in whitespace
/// other than a space (a tab, form feed, no-break space: git keeps it in
/// the pattern, this matcher trims it).
fn load_file(path: &Path, follow: bool) -> Option<Gitignore> {
    let meta = if follow {
        fs_err::metadata(path)
    } else {
        fs_err::symlink_metadata(path)
    };
    match meta {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(Gitignore::empty()),
        Ok(meta) if meta.is_file() => {}
        _ => return None,
    }
    let bytes = fs_err::read(path).ok()?;
    let odd_end = |line: &[u8]| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        String::from_utf8_lossy(line)
            .chars()
            .next_back()
            .is_some_and(|c| c.is_whitespace() && c != ' ')
    };
    if bytes.split(|&b| b == b'\n').any(odd_end) {
        return None;
    }
    let mut builder = GitignoreBuilder::new(".");
    builder.allow_unclosed_class(false);
    if builder.add(path).is_some() {
        return None;
    }
    builder.build().ok()
}

/// Whether the worktree at `root`, whose admin dir is `git_dir` and whose
/// HEAD commit has the tree `head_tree`, is proven clean: no file `git
/// status --untracked-files=normal --ignore-submodules=all` would list.
/// `false` means "ask git". `record` is where its proof is kept for the
/// next time (see the module's notes).
#[cfg(target_os = "linux")]
pub fn proven_clean(
    excludes: &Excludes,
    root: &Path,
    git_dir: &Path,
    record: &Path,
    head_tree: git2::Oid,
) -> bool {
    proof::prove(excludes, root, git_dir, record, head_tree, proof::MARGIN).is_some()
}

#[cfg(not(target_os = "linux"))]
pub fn proven_clean(_: &Excludes, _: &Path, _: &Path, _: &Path, _: git2::Oid) -> bool {
    false
}

/// A proof, and its record.
#[cfg(target_os = "linux")]
mod proof {
    use std::path::Path;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use rustix::fs::{CWD, Mode, OFlags, fstatfs, openat};

    use super::Excludes;
    use super::index;
    use super::walk::Walk;

    /// How much older than a proof's start a folder's last change must be
    /// to count as before it: a file system's clock is the kernel's coarse
    /// one, and may lag the time read here.
    pub const MARGIN: Duration = Duration::from_secs(2);

    const VERSION: &str = "provision-clean 1";

    /// File systems whose timestamps come from this kernel's clock, as
    /// `statfs` names them: ext2/3/4, xfs, btrfs, tmpfs, overlayfs, zfs,
    /// f2fs, bcachefs.
    const LOCAL: [i64; 8] = [
        0xEF53,
        0x5846_5342,
        0x9123_683E,
        0x0102_1994,
        0x794C_7630,
        0x2FC1_2FC1,
        0xF2F5_2010,
        0xCA45_1A4E,
    ];

    /// The folders listed to prove the worktree clean; `None`: not proven.
    pub fn prove(
        excludes: &Excludes,
        root: &Path,
        git_dir: &Path,
        record: &Path,
        head_tree: git2::Oid,
        margin: Duration,
    ) -> Option<usize> {
        let started = SystemTime::now();
        let index = index::read(&git_dir.join("index"))?;
        if index.tree.as_ref().map(|t| t.as_slice()) != Some(head_tree.as_bytes()) {
            return None;
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = openat(CWD, root, flags, Mode::empty()).ok()?;
        // The inputs a record is good for.
        let inputs = format!("{} {}", index.identity, excludes.files);
        #[allow(clippy::unnecessary_cast)] // f_type's type differs by target
        let local = fstatfs(&dir).is_ok_and(|fs| LOCAL.contains(&(fs.f_type as i64)));
        let since = if local { read(record, &inputs) } else { None };
        let mut walk = Walk::new(root, &index, excludes, since);
        if !walk.tracked(&dir, b"", 0..index.entries.len()) {
            return None;
        }
        if local && walk.reusable && walk.listed > 0 {
            let proven = started
                .checked_sub(margin)
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
            if let Some(proven) = proven {
                write(record, &inputs, proven);
            }
        }
        Some(walk.listed)
    }

    /// The time a record's proof started, when it was made from `inputs`.
    fn read(record: &Path, inputs: &str) -> Option<(i64, i64)> {
        let text = fs_err::read_to_string(record).ok()?;
        let mut lines = text.lines();
        if lines.next()? != VERSION {
            return None;
        }
        let (secs, nanos) = lines.next()?.split_once('.')?;
        let (secs, nanos): (i64, i64) = (secs.parse().ok()?, nanos.parse().ok()?);
        // A record from the future (a clock set back, or a forged file)
        // would spare folders changed after it.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
        let past = i64::try_from(now.as_secs()).is_ok_and(|now| secs <= now);
        (past && lines.next()? == inputs).then_some((secs, nanos))
    }

    /// Replaces the record whole (a reader sees the old one or the new
    /// one); not synced: a record lost is a proof to make again. Only into
    /// a folder that is there: a linked worktree's admin dir made again
    /// after git removed it would be a broken entry.
    fn write(record: &Path, inputs: &str, proven: Duration) {
        let text = format!(
            "{VERSION}\n{}.{:09}\n{inputs}\n",
            proven.as_secs(),
            proven.subsec_nanos()
        );
        let Some(dir) = record.parent() else {
            return;
        };
        if let Ok(mut tmp) = tempfile::Builder::new()
            .prefix(".provision-clean-")
            .tempfile_in(dir)
        {
            use std::io::Write;
            if tmp.write_all(text.as_bytes()).is_ok() {
                let _ = tmp.persist(record);
            }
        }
    }
}

/// The index file, as far as this module reads it.
mod index {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    /// The SHA-1 trailer of the index file.
    const TRAILER: usize = 20;
    /// The blob id of an empty file.
    const EMPTY_BLOB: [u8; 20] = [
        0xe6, 0x9d, 0xe2, 0x9b, 0xb2, 0xd1, 0xd6, 0x43, 0x4b, 0x8b, 0x29, 0xae, 0x77, 0x5a, 0xd8,
        0xc2, 0xe4, 0x8c, 0x53, 0x91,
    ];

    pub struct Index {
        /// Every entry's path, one after the other.
        names: Vec<u8>,
        pub entries: Vec<Entry>,
        /// The cache tree's root: the tree the index holds, when git knows it.
        pub tree: Option<[u8; 20]>,
        /// When the index file was written (seconds): an entry whose file
        /// changed in that second or later may be "racily clean".
        pub written: i64,
        /// Which index file this was (git replaces it whole on every
        /// write), as a proof's record names it.
        pub identity: String,
    }

    /// One stage-0 entry and the stat data git cached for it.
    pub struct Entry {
        name: (usize, usize),
        pub ctime: (u32, u32),
        pub mtime: (u32, u32),
        pub ino: u32,
        pub mode: u32,
        pub uid: u32,
        pub gid: u32,
        pub size: u32,
        /// git smudges a racily clean entry by setting its size to 0: an
        /// entry of size 0 is only trusted for the empty blob.
        pub empty_blob: bool,
    }

    impl Index {
        pub fn name(&self, i: usize) -> &[u8] {
            let (start, end) = self.entries[i].name;
            &self.names[start..end]
        }

        /// Whether `path` is a tracked file.
        pub fn tracks(&self, path: &[u8]) -> bool {
            self.entries
                .binary_search_by(|e| self.names[e.name.0..e.name.1].cmp(path))
                .is_ok()
        }

        /// Where the run of entries under `folder` (`a/b/`) that starts
        /// `range` ends, found by bisection.
        pub fn run_end(&self, range: std::ops::Range<usize>, folder: &[u8]) -> usize {
            let start = range.start;
            start
                + self.entries[range]
                    .partition_point(|e| self.names[e.name.0..e.name.1].starts_with(folder))
        }
    }

    pub fn read(path: &Path) -> Option<Index> {
        let file = fs_err::File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        let mut data = Vec::with_capacity(usize::try_from(meta.len()).ok()? + 1);
        // std's own file: it reads into the buffer without zeroing it first.
        file.file().read_to_end(&mut data).ok()?;
        let mut index = parse(&data, meta.mtime())?;
        index.identity = format!(
            "{}:{}:{}:{}.{}:{}.{}",
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        );
        Some(index)
    }

    fn be32(data: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
    }

    fn be16(data: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
    }

    /// git's offset varint (index v4 path compression): bytes used and value.
    fn varint(data: &[u8]) -> Option<(usize, usize)> {
        let mut used = 0;
        let mut byte = *data.first()?;
        let mut value = usize::from(byte & 0x7f);
        while byte & 0x80 != 0 {
            used += 1;
            byte = *data.get(used)?;
            value = value.checked_add(1)?.checked_mul(128)? | usize::from(byte & 0x7f);
        }
        Some((used + 1, value))
    }

    /// Versions 2 to 4. `None` for anything this module does not follow:
    /// an entry flagged assume-unchanged, skip-worktree or intent-to-add, a
    /// conflict stage, a submodule, a required extension (split or sparse
    /// index), or a file that does not add up.
    pub fn parse(data: &[u8], written: i64) -> Option<Index> {
        if data.len() < 12 + TRAILER || &data[..4] != b"DIRC" {
            return None;
        }
        let version = be32(data, 4)?;
        if !(2..=4).contains(&version) {
            return None;
        }
        let count = usize::try_from(be32(data, 8)?).ok()?;
        let end = data.len() - TRAILER;
        let mut names = Vec::with_capacity(count.min(1 << 20) * 32);
        let mut entries: Vec<Entry> = Vec::with_capacity(count.min(1 << 20));
        let mut pos = 12;
        for _ in 0..count {
            let entry = pos;
            let field = |i: usize| be32(data, entry + 4 * i);
            let flags = be16(data, entry + 60)?;
            // assume-unchanged, or a conflict stage
            if flags & 0x8000 != 0 || flags & 0x3000 != 0 {
                return None;
            }
            let mut at = entry + 62;
            if flags & 0x4000 != 0 {
                // skip-worktree, intent-to-add, or bits git has not defined
                if version < 3 || be16(data, at)? != 0 {
                    return None;
                }
                at += 2;
            }
            // The name's length, when under 4095 bytes; longer names end at
            // their NUL.
            let length = usize::from(flags & 0x0fff);
            let start = names.len();
            let keep = if version == 4 {
                let (used, strip) = varint(data.get(at..end)?)?;
                at += used;
                let (prev_start, prev_end) = entries.last().map_or((0, 0), |e| e.name);
                let keep = (prev_end - prev_start).checked_sub(strip)?;
                names.extend_from_within(prev_start..prev_start + keep);
                keep
            } else {
                0
            };
            let rest = data.get(at..end)?;
            let suffix = match length.checked_sub(keep) {
                Some(n) if length < 0x0fff && rest.get(n) == Some(&0) => n,
                Some(_) if length == 0x0fff => rest.iter().position(|&b| b == 0)?,
                _ => return None,
            };
            names.extend_from_slice(&rest[..suffix]);
            pos = if version == 4 {
                at + suffix + 1
            } else {
                entry + ((at - entry + suffix + 8) & !7)
            };
            if pos > end {
                return None;
            }
            let mode = field(6)?;
            // Regular files and symlinks only, in git's order (the walk
            // finds a folder's entries as one run of it). Other names git
            // would not write (empty, `a//b`, `./`) never pass the walk.
            let sorted = entries
                .last()
                .is_none_or(|e| names[e.name.0..e.name.1] < names[start..]);
            if !matches!(mode >> 12, 0o10 | 0o12) || !sorted {
                return None;
            }
            let oid = data.get(entry + 40..entry + 60)?;
            entries.push(Entry {
                name: (start, names.len()),
                ctime: (field(0)?, field(1)?),
                mtime: (field(2)?, field(3)?),
                ino: field(5)?,
                mode,
                uid: field(7)?,
                gid: field(8)?,
                size: field(9)?,
                empty_blob: oid == EMPTY_BLOB,
            });
        }
        let mut tree = None;
        while pos + 8 <= end {
            let signature = &data[pos..pos + 4];
            let size = usize::try_from(be32(data, pos + 4)?).ok()?;
            let body = data.get(pos + 8..(pos + 8).checked_add(size)?)?;
            // git's rule: an extension whose name does not start with an
            // upper-case letter must be understood to read the index.
            if !signature[0].is_ascii_uppercase() {
                return None;
            }
            if signature == b"TREE" {
                tree = root_tree(body, count);
            }
            pos += 8 + size;
        }
        (pos == end).then_some(Index {
            names,
            entries,
            tree,
            written,
            identity: String::new(),
        })
    }

    /// The root of a `TREE` extension: its tree id when valid for all
    /// `count` entries.
    fn root_tree(body: &[u8], count: usize) -> Option<[u8; 20]> {
        // "" NUL "<entries> <subtrees>" LF <id>, the root first
        if body.first() != Some(&0) {
            return None;
        }
        let newline = body.iter().position(|&b| b == b'\n')?;
        let counts = std::str::from_utf8(&body[1..newline]).ok()?;
        let entries: i64 = counts.split_once(' ')?.0.parse().ok()?;
        if usize::try_from(entries).ok()? != count {
            return None;
        }
        body.get(newline + 1..newline + 21)?.try_into().ok()
    }
}

/// The worktree's folders, listed and matched against the index.
#[cfg(target_os = "linux")]
mod walk {
    use std::collections::HashMap;
    use std::ops::Range;
    use std::os::fd::{AsFd, OwnedFd};
    use std::path::Path;

    use ignore::gitignore::Gitignore;
    use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, openat, statat};

    use super::Excludes;
    use super::index::Index;

    /// A folder's names, one after the other, with where each is and its type.
    #[derive(Default)]
    struct Listing {
        names: Vec<u8>,
        entries: Vec<(usize, usize, FileType)>,
    }

    impl Listing {
        fn iter(&self) -> impl Iterator<Item = (&[u8], FileType)> {
            self.entries
                .iter()
                .map(|&(start, end, kind)| (&self.names[start..end], kind))
        }
    }

    enum Child {
        File(usize),
        /// A tracked folder: the index entries under it.
        Folder(Range<usize>),
    }

    pub struct Walk<'a> {
        root: &'a Path,
        index: &'a Index,
        excludes: &'a Excludes,
        /// When the proof this walk may rely on started (ctime seconds,
        /// nanoseconds): a folder changed before then is not listed.
        since: Option<(i64, i64)>,
        /// Whether this walk's proof may be recorded: it met no untracked
        /// folder git does not ignore, and no ignore file git does not track.
        pub reusable: bool,
        /// How many folders were listed.
        pub listed: usize,
        /// Each folder's `.gitignore`, once read (`None`: git would read it
        /// otherwise than this module).
        gitignores: HashMap<Vec<u8>, Option<Gitignore>>,
        /// Folders known excluded, or known not to be.
        excluded: HashMap<Vec<u8>, bool>,
        buffer: Vec<u8>,
        /// Listings done with, kept for the next folder's.
        spare: Vec<Listing>,
    }

    impl<'a> Walk<'a> {
        pub fn new(
            root: &'a Path,
            index: &'a Index,
            excludes: &'a Excludes,
            since: Option<(i64, i64)>,
        ) -> Self {
            Walk {
                root,
                index,
                excludes,
                since,
                reusable: true,
                listed: 0,
                gitignores: HashMap::new(),
                excluded: HashMap::new(),
                buffer: Vec::with_capacity(32 * 1024),
                spare: Vec::new(),
            }
        }

        /// The tracked folder `prefix` (`""`, or `a/b/`), open as `dir`,
        /// holding the index entries `range`: every entry unchanged, and
        /// nothing else in it that git would list.
        pub fn tracked(&mut self, dir: &OwnedFd, prefix: &[u8], range: Range<usize>) -> bool {
            let index = self.index;
            let mut children: Vec<(&[u8], Child)> = Vec::new();
            let mut i = range.start;
            while i < range.end {
                let rest = &index.name(i)[prefix.len()..];
                match rest.iter().position(|&b| b == b'/') {
                    None => {
                        children.push((rest, Child::File(i)));
                        i += 1;
                    }
                    Some(slash) => {
                        // Everything under `name/` is one run of the
                        // sorted index.
                        let under = &index.name(i)[..prefix.len() + slash + 1];
                        let start = i;
                        i = index.run_end(i..range.end, under);
                        children.push((&rest[..slash], Child::Folder(start..i)));
                    }
                }
            }
            children.sort_unstable_by(|a, b| a.0.cmp(b.0));
            // Names git would not write (`a//b`, `./a`, `.git`): no folder
            // listing holds them, and no lookup may stand in for one.
            if children.windows(2).any(|w| w[0].0 == w[1].0)
                || children
                    .iter()
                    .any(|(name, _)| matches!(*name, b"" | b"." | b".." | b".git"))
            {
                return false;
            }
            if self
                .since
                .is_some_and(|since| changed(dir).is_some_and(|at| at < since))
            {
                // The names the proof listed, tracked or ignored, are the
                // names here: only the tracked ones are looked at again.
                return children
                    .iter()
                    .all(|(name, child)| self.child_clean(dir, prefix, name, child));
            }
            self.listed += 1;
            let Some(listing) = self.list(dir) else {
                return false;
            };
            let mut seen = 0;
            let clean = 'listing: {
                for (name, kind) in listing.iter() {
                    // git never looks into a `.git` (its own, or a nested repository's).
                    if name == b".git" {
                        continue;
                    }
                    let Ok(k) = children.binary_search_by(|c| c.0.cmp(name)) else {
                        if self.untracked(dir, prefix, name, kind) {
                            continue;
                        }
                        break 'listing false;
                    };
                    seen += 1;
                    if !self.child_clean(dir, prefix, name, &children[k].1) {
                        break 'listing false;
                    }
                }
                // A tracked file or folder that is gone.
                seen == children.len()
            };
            self.spare.push(listing);
            clean
        }

        /// The names in `dir` but `.` and `..`, with their type as the
        /// listing gives it.
        fn list(&mut self, dir: &OwnedFd) -> Option<Listing> {
            let mut out = self.spare.pop().unwrap_or_default();
            out.names.clear();
            out.entries.clear();
            let mut entries = RawDir::new(dir.as_fd(), self.buffer.spare_capacity_mut());
            while let Some(entry) = entries.next() {
                let entry = entry.ok()?;
                let name = entry.file_name().to_bytes();
                if name != b"." && name != b".." {
                    let start = out.names.len();
                    out.names.extend_from_slice(name);
                    out.entries
                        .push((start, out.names.len(), entry.file_type()));
                }
            }
            Some(out)
        }

        /// Whether the tracked file or folder `name` in `dir` is as the
        /// index has it.
        fn child_clean(
            &mut self,
            dir: &OwnedFd,
            prefix: &[u8],
            name: &[u8],
            child: &Child,
        ) -> bool {
            match child {
                Child::File(entry) => self.unchanged(dir, name, *entry),
                Child::Folder(range) => match open_folder(dir, name) {
                    Some(sub) => {
                        let prefix = [prefix, name, b"/"].concat();
                        self.tracked(&sub, &prefix, range.clone())
                    }
                    None => false,
                },
            }
        }

        /// Whether the tracked file `name` in `dir` still has the stat data
        /// git cached for index entry `entry`, and is not racily clean.
        // Stat's field types differ by target; the index keeps 32 bits of each.
        #[allow(clippy::unnecessary_cast)]
        fn unchanged(&self, dir: &OwnedFd, name: &[u8], entry: usize) -> bool {
            let Ok(st) = statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
                return false;
            };
            let e = &self.index.entries[entry];
            let kind = st.st_mode & 0o170000;
            let mode_ok = match e.mode & 0o170000 {
                0o100000 => kind == 0o100000 && (e.mode & 0o100) == (st.st_mode & 0o100),
                0o120000 => kind == 0o120000,
                _ => false,
            };
            mode_ok
                && e.mtime == (st.st_mtime as u32, st.st_mtime_nsec as u32)
                && e.ctime == (st.st_ctime as u32, st.st_ctime_nsec as u32)
                && e.ino == st.st_ino as u32
                && e.uid == st.st_uid
                && e.gid == st.st_gid
                && e.size == st.st_size as u32
                && (e.size != 0 || e.empty_blob)
                && i64::from(e.mtime.0) < self.index.written
        }

        /// An untracked `name` in folder `prefix`: fine when git ignores
        /// it, or when it is a folder holding nothing git would list.
        fn untracked(&mut self, dir: &OwnedFd, prefix: &[u8], name: &[u8], kind: FileType) -> bool {
            let kind = if kind == FileType::Unknown {
                match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => FileType::from_raw_mode(st.st_mode),
                    Err(_) => return false,
                }
            } else {
                kind
            };
            let is_dir = kind == FileType::Directory;
            // git lists files, symlinks and folders; not sockets, fifos or devices.
            if !is_dir && kind != FileType::RegularFile && kind != FileType::Symlink {
                return true;
            }
            let path = [prefix, name].concat();
            match self.ignored(&path, is_dir) {
                Some(true) => true,
                Some(false) if is_dir => {
                    // What is in it may change without its parent changing.
                    self.reusable = false;
                    let Some(sub) = open_folder(dir, name) else {
                        return false;
                    };
                    let Some(listing) = self.list(&sub) else {
                        return false;
                    };
                    let prefix = [&path[..], b"/"].concat();
                    // A nested repository is listed even when empty.
                    let clean = listing.iter().all(|(n, _)| n != b".git")
                        && listing
                            .iter()
                            .all(|(n, k)| self.untracked(&sub, &prefix, n, k));
                    self.spare.push(listing);
                    clean
                }
                _ => false,
            }
        }

        /// Whether git ignores `path`: a folder it excludes hides all that
        /// is in it (no pattern further down brings a path back), else the
        /// path's own last matching pattern decides. `None`: cannot tell.
        fn ignored(&mut self, path: &[u8], is_dir: bool) -> Option<bool> {
            for (i, _) in path.iter().enumerate().filter(|(_, b)| **b == b'/') {
                let folder = &path[..i];
                let excluded = match self.excluded.get(folder) {
                    Some(known) => *known,
                    None => {
                        let known = self.matches(folder, true)?;
                        self.excluded.insert(folder.to_vec(), known);
                        known
                    }
                };
                if excluded {
                    return Some(true);
                }
            }
            self.matches(path, is_dir)
        }

        /// The last pattern matching `path`, by git's precedence: the
        /// `.gitignore` of its own folder, then of each folder above it,
        /// then `info/exclude`, then `core.excludesFile`.
        fn matches(&mut self, path: &[u8], is_dir: bool) -> Option<bool> {
            let text = std::str::from_utf8(path).ok()?;
            // The folders above `path`, nearest first: `a/b/c` is matched
            // as `c` in `a/b`, `b/c` in `a`, then `a/b/c` at the root.
            let mut slash = text.rfind('/');
            loop {
                let (folder, relative) = match slash {
                    Some(at) => (&text[..at], &text[at + 1..]),
                    None => ("", text),
                };
                match self.gitignore(folder.as_bytes())?.matched(relative, is_dir) {
                    ignore::Match::Ignore(_) => return Some(true),
                    ignore::Match::Whitelist(_) => return Some(false),
                    ignore::Match::None => {}
                }
                match slash {
                    Some(at) => slash = text[..at].rfind('/'),
                    None => break,
                }
            }
            for gitignore in [&self.excludes.info, &self.excludes.global] {
                match gitignore.matched(text, is_dir) {
                    ignore::Match::Ignore(_) => return Some(true),
                    ignore::Match::Whitelist(_) => return Some(false),
                    ignore::Match::None => {}
                }
            }
            Some(false)
        }

        /// The `.gitignore` of `folder` (`""`: the worktree's root).
        fn gitignore(&mut self, folder: &[u8]) -> Option<&Gitignore> {
            if !self.gitignores.contains_key(folder) {
                let text = std::str::from_utf8(folder).ok()?;
                let path = self.root.join(text).join(".gitignore");
                let tracked = if folder.is_empty() {
                    b".gitignore".to_vec()
                } else {
                    [folder, b"/.gitignore"].concat()
                };
                // One git does not track can change what is ignored with no
                // folder or tracked file changing.
                if !self.index.tracks(&tracked) && fs_err::symlink_metadata(&path).is_ok() {
                    self.reusable = false;
                }
                let loaded = super::load_file(&path, false);
                self.gitignores.insert(folder.to_vec(), loaded);
            }
            self.gitignores.get(folder)?.as_ref()
        }
    }

    /// When `dir` last changed (ctime: a name added, removed or renamed in
    /// it changes it, and it cannot be set back).
    #[allow(clippy::unnecessary_cast)] // Stat's field types differ by target
    fn changed(dir: &OwnedFd) -> Option<(i64, i64)> {
        let st = rustix::fs::fstat(dir).ok()?;
        Some((st.st_ctime as i64, st.st_ctime_nsec as i64))
    }

    /// The folder `name` in `dir`, not following a symlink.
    fn open_folder(dir: &OwnedFd, name: &[u8]) -> Option<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        openat(dir, name, flags, Mode::empty()).ok()
    }
}

/// The agreement that matters: never "clean" where `git status` lists a
/// file. And the point of it all: "clean" for a clean worktree, so that
/// `git status` is not run for it.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use std::time::Duration;

    use super::Excludes;
    use super::proof::prove;

    fn git(dir: &Path, args: &[&str]) -> String {
        let home = dir.parent().unwrap().join("home");
        let out = Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", &home)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn sh(dir: &Path, script: &str) {
        let status = Command::new("sh")
            .current_dir(dir)
            .args(["-c", script])
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    }

    /// A repository with files of every kind git tracks, ignore rules at
    /// several levels, and a linked worktree `wt`, whose files are older
    /// than its index (as in a worktree someone works in: not racily clean).
    fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        fs_err::create_dir_all(tmp.path().join("home")).unwrap();
        fs_err::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        let global = tmp.path().join("global-ignore");
        fs_err::write(&global, "*.swp\n").unwrap();
        git(
            &repo,
            &["config", "core.excludesFile", global.to_str().unwrap()],
        );
        sh(
            &repo,
            "mkdir -p src/deep docs build out && echo a > a.txt && echo b > src/b.txt \
             && echo c > src/deep/c.txt && : > empty.txt && echo x > script.sh \
             && chmod +x script.sh && ln -s a.txt link && echo k > build/kept \
             && echo d > docs/readme && printf '*.gen\\n' > src/.gitignore \
             && printf '*.log\\n!keep.log\\nbuild/\\nout/\\n/rooted\\ndocs/*.tmp\\n' > .gitignore",
        );
        git(&repo, &["add", "."]);
        git(&repo, &["add", "-f", "build/kept"]);
        git(&repo, &["commit", "-q", "-m", "files"]);
        git(&repo, &["worktree", "add", "-q", "../wt"]);
        let wt = tmp.path().join("wt");
        sh(
            &wt,
            "find . -path ./.git -prune -o -exec touch -h -d @1600000000 {} +",
        );
        git(&wt, &["status", "--porcelain"]);
        (tmp, wt)
    }

    /// What `git status` lists, and what this module says.
    fn both(wt: &Path) -> (bool, bool) {
        let listed = !git(
            wt,
            &[
                "status",
                "--porcelain",
                "--untracked-files=normal",
                "--ignore-submodules=all",
            ],
        )
        .is_empty();
        (listed, proof(wt).is_some())
    }

    /// What this module proves (the folders it listed), recording its
    /// proof beside the worktree's index. A margin of 25 ms, not 2 s: the
    /// fixture's folders change 50 ms before a proof starts or after it
    /// (the file system's coarse clock is one tick, at most 10 ms, behind).
    fn proof(wt: &Path) -> Option<usize> {
        let common = wt.parent().unwrap().join("repo/.git");
        let listing = git(wt, &["config", "-z", "--list"]);
        let excludes = Excludes::from_config(&listing, &common)?;
        let repo = git2::Repository::open(wt).unwrap();
        let tree = repo.head().unwrap().peel_to_tree().unwrap().id();
        let git_dir = common.join("worktrees/wt");
        let record = git_dir.join("provision-clean");
        std::thread::sleep(Duration::from_millis(50));
        prove(
            &excludes,
            wt,
            &git_dir,
            &record,
            tree,
            Duration::from_millis(25),
        )
    }

    /// A fixture whose clean state a proof has recorded.
    fn recorded() -> (tempfile::TempDir, std::path::PathBuf) {
        let (tmp, wt) = fixture();
        assert!(proof(&wt).is_some_and(|listed| listed > 0));
        assert!(
            tmp.path()
                .join("repo/.git/worktrees/wt/provision-clean")
                .is_file()
        );
        (tmp, wt)
    }

    #[test]
    fn a_clean_worktree_is_proven_clean() {
        let (_tmp, wt) = fixture();
        assert_eq!(both(&wt), (false, true));
    }

    #[test]
    fn a_recorded_proof_spares_listing_folders_again() {
        let (_tmp, wt) = recorded();
        assert_eq!(proof(&wt), Some(0));
        sh(&wt, "echo x > src/deep/new.log");
        // Only the folder that changed is listed again.
        assert_eq!(proof(&wt), Some(1));
    }

    /// A record goes only into a folder that is there: a worktree's admin
    /// dir git removed meanwhile is not made again.
    #[test]
    fn a_record_makes_no_folder() {
        let (tmp, wt) = fixture();
        let common = tmp.path().join("repo/.git");
        let listing = git(&wt, &["config", "-z", "--list"]);
        let excludes = Excludes::from_config(&listing, &common).unwrap();
        let tree = git2::Repository::open(&wt)
            .unwrap()
            .head()
            .unwrap()
            .peel_to_tree()
            .unwrap()
            .id();
        let gone = common.join("worktrees/gone");
        std::thread::sleep(Duration::from_millis(50));
        let proven = prove(
            &excludes,
            &wt,
            &common.join("worktrees/wt"),
            &gone.join("provision-clean"),
            tree,
            Duration::from_millis(25),
        );
        assert!(proven.is_some_and(|listed| listed > 0));
        assert!(!gone.exists());
    }

    #[test]
    fn what_can_change_unseen_leaves_no_record() {
        let (tmp, wt) = fixture();
        sh(&wt, "mkdir -p empty/inner");
        assert!(proof(&wt).is_some());
        let record = tmp.path().join("repo/.git/worktrees/wt/provision-clean");
        assert!(!record.exists());
        sh(&wt, "echo x > empty/inner/new");
        assert_eq!(both(&wt), (true, false));
    }

    #[test]
    fn a_changed_exclude_file_voids_the_record() {
        let (tmp, wt) = fixture();
        let exclude = tmp.path().join("repo/.git/info/exclude");
        fs_err::write(&exclude, "secret\n").unwrap();
        sh(&wt, "echo x > secret");
        assert!(proof(&wt).is_some_and(|listed| listed > 0));
        assert_eq!(proof(&wt), Some(0));
        fs_err::write(&exclude, "# nothing\n").unwrap();
        assert_eq!(both(&wt), (true, false));
    }

    #[test]
    fn ignored_and_empty_things_keep_it_clean() {
        for script in [
            "echo x > new.log",
            "echo x > src/new.log",
            "echo x > src/x.gen",
            "echo x > rooted",
            "echo x > docs/x.tmp",
            "echo x > notes.swp",
            "mkdir -p empty/inner",
            "mkdir only-ignored && echo x > only-ignored/x.log",
            "echo x > build/new",
            "mkdir -p out/deep && echo x > out/deep/x",
            "mkfifo pipe",
        ] {
            let (_tmp, wt) = fixture();
            sh(&wt, script);
            assert_eq!(both(&wt), (false, true), "{script}");
        }
    }

    #[test]
    fn whatever_git_lists_is_never_clean() {
        for script in [
            "echo x > new.txt",
            "echo x > src/deep/new.txt",
            "mkdir newdir && echo x > newdir/x",
            "mkdir -p newdir/a/b && echo x > newdir/a/b/x",
            "echo x > keep.log",
            "echo x > x.gen",
            "echo x > src/rooted",
            "mkdir docs/sub && echo x > docs/sub/x.tmp",
            "ln -s build outlink && rm -rf out && ln -s build out",
            "echo zz > a.txt && touch -d @1600000000 a.txt",
            "rm src/b.txt",
            "rm -r src/deep",
            "chmod +x a.txt",
            "chmod -x script.sh",
            "ln -sf src/b.txt link",
            "rm a.txt && mkdir a.txt",
            "rm -r src/deep && echo x > src/deep",
            "echo y > src/b.txt && git add src/b.txt",
            "git init -q nested",
            "echo x > empty.txt && touch -d @1600000000 empty.txt",
        ] {
            for record in [false, true] {
                let (_tmp, wt) = if record { recorded() } else { fixture() };
                sh(&wt, script);
                let (listed, clean) = both(&wt);
                assert!(listed, "git lists nothing after `{script}`");
                assert!(
                    !clean,
                    "proven clean after `{script}` (recorded before: {record}), git lists files"
                );
            }
        }
    }

    /// Lines git reads otherwise than the matcher: a trailing tab, form
    /// feed, vertical tab or no-break space stays in git's pattern; git
    /// never matches an unclosed `[`. In an exclude file, or a tracked
    /// `.gitignore`: left to git.
    #[test]
    fn ignore_lines_git_reads_otherwise_are_left_to_git() {
        for (line, file) in [
            ("*.odd\t", "x.odd"),
            ("*.odd\u{c}", "x.odd"),
            ("*.odd\u{b}", "x.odd"),
            ("*.odd\u{a0}", "x.odd"),
            ("[abc", "[abc"),
        ] {
            let (tmp, wt) = fixture();
            let exclude = tmp.path().join("repo/.git/info/exclude");
            fs_err::write(&exclude, format!("{line}\n")).unwrap();
            fs_err::write(wt.join(file), "x").unwrap();
            assert_eq!(both(&wt), (true, false), "{line:?}");
        }
    }

    /// Conditional includes can set other excludes in a worktree than in
    /// the main checkout, where the config is read: left to git.
    #[test]
    fn conditional_includes_are_left_to_git() {
        let listing =
            "core.excludesfile\n/nonexistent/ignore\0includeif.onbranch:wt.path\n/x.inc\0";
        assert!(Excludes::from_config(listing, Path::new("/nonexistent")).is_none());
        let listing = "core.excludesfile\n/nonexistent/ignore\0";
        assert!(Excludes::from_config(listing, Path::new("/nonexistent")).is_some());
    }

    #[test]
    fn a_racily_clean_entry_is_left_to_git() {
        let (_tmp, wt) = fixture();
        // A file dated after the index was written: its content could have
        // changed within the stat data the index keeps.
        sh(&wt, "touch -d @4000000000 a.txt");
        git(&wt, &["update-index", "--refresh"]);
        assert_eq!(both(&wt), (false, false));
    }

    #[test]
    fn index_versions_3_and_4_are_read() {
        for version in ["3", "4"] {
            let (_tmp, wt) = fixture();
            git(&wt, &["update-index", "--index-version", version]);
            assert_eq!(both(&wt), (false, true), "version {version}");
            sh(&wt, "echo x > new.txt");
            assert_eq!(both(&wt), (true, false), "version {version}");
        }
    }

    #[test]
    fn what_git_keeps_outside_the_stat_data_is_left_to_git() {
        for args in [
            &["update-index", "--split-index"][..],
            &["update-index", "--skip-worktree", "a.txt"],
            &["update-index", "--assume-unchanged", "a.txt"],
        ] {
            let (_tmp, wt) = fixture();
            git(&wt, args);
            assert_eq!(both(&wt), (false, false), "{args:?}");
        }
    }

    /// A cut or damaged index is refused or read, never a panic.
    #[test]
    fn a_damaged_index_is_never_a_panic() {
        let (tmp, _wt) = fixture();
        let data = fs_err::read(tmp.path().join("repo/.git/worktrees/wt/index")).unwrap();
        assert!(super::index::parse(&data, 0).is_some());
        for len in 0..data.len() {
            let _ = super::index::parse(&data[..len], 0);
        }
        for at in 0..data.len() {
            let mut damaged = data.clone();
            damaged[at] ^= 0x5a;
            let _ = super::index::parse(&damaged, 0);
        }
    }
}
