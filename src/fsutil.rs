//! File-system helpers shared by apply, the lock and the registry.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// The entries of folder `dir`; none where it does not exist.
pub fn entries(dir: &Path) -> std::io::Result<Vec<fs_err::DirEntry>> {
    match fs_err::read_dir(dir) {
        Ok(entries) => entries.collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The file at `path`, opened and locked, where nobody else holds its lock
/// (a process that made it and still lives); `None` when someone does, or
/// the file is gone. The lock lasts while the file is open.
pub fn try_lock(path: &Path) -> std::io::Result<Option<fs_err::File>> {
    let file = match fs_err::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.file().try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Writes `contents` to `path` so that a reader sees the old file or the new
/// one, never half of either: a temp file in the same directory, fsynced,
/// then renamed over `path`, then the directory fsynced so the rename itself
/// survives a power loss. A replaced file keeps its permissions; a new one
/// gets `0644`.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs_err::create_dir_all(dir)?;
    let permissions = match fs_err::metadata(path) {
        Ok(meta) if meta.is_file() => meta.permissions(),
        _ => std::fs::Permissions::from_mode(0o644),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".provision-")
        .permissions(permissions)
        .tempfile_in(dir)
        .map_err(|e| annotate(e, dir))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| annotate(e.error, path))?;
    fs_err::File::open(dir)?.sync_all()
}

/// Writes a new file at `path` whole or not at all, and never over one that
/// exists (then `Ok(false)`): a temp file beside it, then linked into place
/// only if nothing is there.
pub fn write_new(path: &Path, contents: &[u8]) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".provision-")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| annotate(e, dir))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(annotate(e.error, path)),
    }
}

fn annotate(err: std::io::Error, path: &Path) -> std::io::Error {
    std::io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

/// The relative path that leads from directory `from` to `to`; both absolute
/// and free of `..` (as from `std::fs::canonicalize`).
pub fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to[common..] {
        out.push(part);
    }
    out
}

/// The first folder on the way from `root` to `root/rel` (not `rel` itself)
/// that is a `"symlink"`, whatever is written or deleted at `rel` landing
/// where it points (such as the main checkout), or a `"file"`.
pub fn blocked_parent(root: &Path, rel: &Path) -> Option<(PathBuf, &'static str)> {
    let mut folder = PathBuf::new();
    for part in rel.parent()?.components() {
        folder.push(part);
        match fs_err::symlink_metadata(root.join(&folder)) {
            Ok(meta) if meta.file_type().is_symlink() => return Some((folder, "symlink")),
            Ok(meta) if !meta.is_dir() => return Some((folder, "file")),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Resolves `.` and `..` lexically, as the kernel does when following a
/// relative link whose own folders are real.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_between_siblings() {
        assert_eq!(
            relative_path(
                Path::new("/w/wt-a/config"),
                Path::new("/w/app/config/x.key")
            ),
            PathBuf::from("../../app/config/x.key")
        );
        assert_eq!(
            relative_path(Path::new("/w/wt"), Path::new("/w/app/.env")),
            PathBuf::from("../app/.env")
        );
    }

    #[test]
    fn a_new_file_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(write_new(&path, b"one").unwrap());
        assert!(!write_new(&path, b"two").unwrap());
        assert_eq!(fs_err::read(&path).unwrap(), b"one");
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs_err::read(&path).unwrap(), b"two");
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 1);
    }
}
