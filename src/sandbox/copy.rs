//! Realises `[links] copy` and `reflink` entries: a copy of the main
//! checkout's file or folder that the worktree owns. `reflink` asks the file
//! system to share the source's blocks (copy-on-write, `FICLONE` on Linux:
//! btrfs, XFS, bcachefs) and falls back to a plain copy where it cannot.

use std::fs::FileType;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("cannot copy {path}: a {what}")]
    Special { path: String, what: &'static str },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Copies `main/path` (a file or folder; a symlink at `path` itself is
/// followed, as `.worktreeinclude` follows it) to `root/path`, which must not
/// exist. The copy is made under a temp name beside it and renamed into
/// place, so a copy cut short never looks like a finished one; a copy that
/// fails takes its temp folder with it.
pub fn copy(main: &Path, root: &Path, path: &str, reflink: bool) -> Result<(), CopyError> {
    let (from, to) = (main.join(path), root.join(path));
    let parent = to.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent)?;
    let staging = tempfile::Builder::new()
        .prefix(".provision-copy-")
        .tempdir_in(parent)?;
    let staged = staging.path().join("entry");
    let copy = Copy { main, reflink };
    let kind = fs_err::metadata(&from)?.file_type();
    if kind.is_dir() {
        copy.dir(&from, &staged)?;
    } else {
        copy.file(kind, &from, &staged)?;
    }
    fs_err::rename(&staged, to)?;
    Ok(())
}

struct Copy<'a> {
    /// Where the paths errors name are relative to.
    main: &'a Path,
    reflink: bool,
}

impl Copy<'_> {
    /// A folder's contents; symlinks inside it are copied as symlinks.
    fn dir(&self, from: &Path, to: &Path) -> Result<(), CopyError> {
        fs_err::create_dir(to)?;
        for item in fs_err::read_dir(from)? {
            let item = item?;
            let (source, target) = (item.path(), to.join(item.file_name()));
            let kind = item.file_type()?;
            if kind.is_symlink() {
                fs_err::os::unix::fs::symlink(fs_err::read_link(&source)?, &target)?;
            } else if kind.is_dir() {
                self.dir(&source, &target)?;
            } else {
                self.file(kind, &source, &target)?;
            }
        }
        fs_err::set_permissions(to, fs_err::metadata(from)?.permissions())?;
        Ok(())
    }

    /// A regular file. Anything else is refused: reading a FIFO waits for a
    /// writer forever, and a socket or device is no data to copy.
    fn file(&self, kind: FileType, from: &Path, to: &Path) -> Result<(), CopyError> {
        if kind.is_file() {
            return Ok(copy_file(from, to, self.reflink)?);
        }
        let what = if kind.is_fifo() {
            "fifo"
        } else if kind.is_socket() {
            "socket"
        } else {
            "device"
        };
        Err(CopyError::Special {
            path: from
                .strip_prefix(self.main)
                .unwrap_or(from)
                .display()
                .to_string(),
            what,
        })
    }
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

/// Makes the (empty) file `target` a copy-on-write clone of `source`.
#[cfg(target_os = "linux")]
pub fn clone_into(source: &std::fs::File, target: &std::fs::File) -> io::Result<()> {
    rustix::fs::ioctl_ficlone(target, source).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
pub fn clone_into(_source: &std::fs::File, _target: &std::fs::File) -> io::Result<()> {
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
            fs_err::create_dir_all(&to).unwrap();
            copy(dir.path(), &to, "cache", reflink).unwrap();
            let to = to.join("cache");
            assert_eq!(fs_err::read(to.join("sub/a.bin")).unwrap(), b"a");
            assert_eq!(
                fs_err::read_link(to.join("link")).unwrap(),
                Path::new("sub/a.bin")
            );
        }
        let names: Vec<_> = fs_err::read_dir(dir.path().join("wt/copied"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["cache"]);
    }
}
