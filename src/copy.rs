//! Realises `[links] copy` and `reflink` entries: a copy of the main
//! checkout's file or folder that the worktree owns. `reflink` asks the file
//! system to share the source's blocks (copy-on-write, `FICLONE` on Linux:
//! btrfs, XFS, bcachefs) and falls back to a plain copy where it cannot.

use std::io;
use std::path::Path;

/// Copies `from` (a file or folder; a symlink at `from` itself is followed,
/// as `.worktreeinclude` follows it) to `to`, which must not exist. The copy
/// is made under a temp name beside `to` and renamed into place, so a copy
/// cut short never looks like a finished one.
pub fn copy(from: &Path, to: &Path, reflink: bool) -> io::Result<()> {
    let parent = to.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent)?;
    let staging = tempfile::Builder::new()
        .prefix(".provision-copy-")
        .tempdir_in(parent)?;
    let staged = staging.path().join("entry");
    if fs_err::metadata(from)?.is_dir() {
        copy_dir(from, &staged, reflink)?;
    } else {
        copy_file(from, &staged, reflink)?;
    }
    fs_err::rename(&staged, to)
}

/// A folder's contents; symlinks inside it are copied as symlinks.
fn copy_dir(from: &Path, to: &Path, reflink: bool) -> io::Result<()> {
    fs_err::create_dir(to)?;
    for item in fs_err::read_dir(from)? {
        let item = item?;
        let (source, target) = (item.path(), to.join(item.file_name()));
        let kind = item.file_type()?;
        if kind.is_symlink() {
            fs_err::os::unix::fs::symlink(fs_err::read_link(&source)?, &target)?;
        } else if kind.is_dir() {
            copy_dir(&source, &target, reflink)?;
        } else {
            copy_file(&source, &target, reflink)?;
        }
    }
    fs_err::set_permissions(to, fs_err::metadata(from)?.permissions())
}

fn copy_file(from: &Path, to: &Path, reflink: bool) -> io::Result<()> {
    if reflink && clone(from, to).is_ok() {
        return Ok(());
    }
    fs_err::copy(from, to).map(|_| ())
}

/// A copy-on-write clone of `from` at `to`; on failure nothing is left at `to`.
#[cfg(target_os = "linux")]
fn clone(from: &Path, to: &Path) -> io::Result<()> {
    let source = fs_err::File::open(from)?;
    let target = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    let cloned = rustix::fs::ioctl_ficlone(target.file(), source.file())
        .map_err(io::Error::from)
        .and_then(|()| target.set_permissions(source.metadata()?.permissions()));
    if cloned.is_err() {
        drop(target);
        let _ = fs_err::remove_file(to);
    }
    cloned
}

#[cfg(not(target_os = "linux"))]
fn clone(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_a_folder_with_its_links_and_leaves_no_staging_behind() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("cache");
        fs_err::create_dir_all(from.join("sub")).unwrap();
        fs_err::write(from.join("sub/a.bin"), b"a").unwrap();
        fs_err::os::unix::fs::symlink("sub/a.bin", from.join("link")).unwrap();
        for (reflink, name) in [(false, "copied"), (true, "reflinked")] {
            let to = dir.path().join("wt").join(name);
            copy(&from, &to, reflink).unwrap();
            assert_eq!(fs_err::read(to.join("sub/a.bin")).unwrap(), b"a");
            assert_eq!(
                fs_err::read_link(to.join("link")).unwrap(),
                Path::new("sub/a.bin")
            );
        }
        let names: Vec<_> = fs_err::read_dir(dir.path().join("wt"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
