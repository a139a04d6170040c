//! The clone's identity: a random id made once per clone and kept under the
//! git common dir (`provision/clone-id`), never committed. Databases are
//! marked with it rather than with the repository's path, so moving or
//! renaming the repository keeps them provision's; two clones sharing one
//! database server tell their databases apart by it, and its first digits
//! (`{clone}`) keep their database names apart.
//!
//! A `.git` copied whole (`cp -a`, `cp -al`, rsync, tar) would carry the
//! same identity, and each copy would take the other's databases for its
//! own. So the id's file is kept with the git common dir it was last seen
//! in (`provision/clone-home`): that folder's path, and its device and inode.
//! A move within one file system keeps the folder's inode; a copy makes a
//! new folder. Found at the same path, or in the same folder, the identity
//! is this clone's (and a move's new path is written down). Found anywhere
//! else, the repository is a copy, or was moved across file systems, and
//! provision cannot tell which: it acts on no database until `provision
//! identity --new` (a copy: an identity of its own) or `--moved` (the same
//! clone, moved) says so.
//!
//! Read-only commands never write either file: [`CloneId::current`].
//!
//! Read back, both files are untrusted input: anything but the one line
//! provision writes is an error naming the file, and nothing is acted on.

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::fsutil;

/// The file under the git common dir.
const FILE: &str = "provision/clone-id";
/// The git common dir the identity was last seen in.
const HOME: &str = "provision/clone-home";
/// Hex digits of the id: 128 random bits.
const ID_LEN: usize = 32;
/// Hex digits of `{clone}`: a collision between two clones on one server
/// is one in four billion, and refused, not shared (the marks differ).
pub const TAG_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "{} is not a clone identity provision wrote: {reason}; provision marks this clone's databases with the id it holds, so it acts on none until it is fixed: restore the file, or run `provision identity --new` to give this clone a new identity (databases marked with the old one are then no longer this clone's)",
        .path.display()
    )]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "{} is not as provision wrote it: {reason}; it says where this clone's identity was last seen, to tell a copied repository from a moved one: run `provision identity --new` if this repository is a copy, or `provision identity --moved` if it is the clone that was there",
        .path.display()
    )]
    InvalidHome { path: PathBuf, reason: String },
    #[error(
        "{} holds the clone identity of {}, but is not that folder: this repository is a copy of it, or was moved from another file system; provision acts on no database here until you say which: `provision identity --new` if it is a copy (it gets an identity of its own; the databases stay the original's), or `provision identity --moved` if it is the same clone, moved (it keeps its identity and its databases)",
        .here.display(), .home.display()
    )]
    Elsewhere { here: PathBuf, home: PathBuf },
    #[error("cannot write the clone identity {}", .path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// This clone's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneId(String);

/// Where an identity was last seen, as `clone-home` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Home {
    path: PathBuf,
    /// The folder's device and inode; `None` in a file written before
    /// provision recorded them.
    dir: Option<(u64, u64)>,
}

/// How the identity's folder compares with where it was last seen.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// The same path and the same folder.
    Here,
    /// The same path or the same folder (moved within its file system):
    /// its own, with `clone-home` to be written again.
    Moved,
    /// No `clone-home`.
    Unrecorded,
}

impl CloneId {
    /// The identity of the clone whose git common dir is `common_dir`
    /// (canonical, as git's checkout gives it), made on first use; for
    /// commands that make or change sandboxes.
    pub fn of(common_dir: &Path) -> Result<CloneId, IdentityError> {
        let (id, fresh) = CloneId::made(common_dir)?;
        if fresh || seen(common_dir)? != Seen::Here {
            write_home(common_dir)?;
        }
        Ok(id)
    }

    /// The identity as it stands, for commands that only read: nothing is
    /// written. With none yet, a new one held in memory: no database is
    /// marked with it, nor named with its tag, so none is taken for this
    /// clone's.
    pub fn current(common_dir: &Path) -> Result<CloneId, IdentityError> {
        match read(&common_dir.join(FILE))? {
            Some(id) => {
                seen(common_dir)?;
                Ok(id)
            }
            None => CloneId::random().map_err(|source| IdentityError::Create {
                path: common_dir.join(FILE),
                source,
            }),
        }
    }

    /// `provision identity --new`: a new identity for this clone, whatever
    /// it held (a copy's: its databases stay the original's); the old one,
    /// if there was one that reads.
    pub fn renew(common_dir: &Path) -> Result<(Option<CloneId>, CloneId), IdentityError> {
        let path = common_dir.join(FILE);
        let old = read(&path).ok().flatten();
        let id = CloneId::random().map_err(|source| IdentityError::Create {
            path: path.clone(),
            source,
        })?;
        fsutil::write_atomically(&path, format!("{}\n", id.0).as_bytes())
            .map_err(|source| IdentityError::Create { path, source })?;
        write_home(common_dir)?;
        Ok((old, id))
    }

    /// `provision identity --moved`: the identity here is this clone's,
    /// wherever it was seen before.
    pub fn moved(common_dir: &Path) -> Result<CloneId, IdentityError> {
        let (id, _) = CloneId::made(common_dir)?;
        write_home(common_dir)?;
        Ok(id)
    }

    /// The identity, made if there is none (and whether it was made now).
    /// Two provision runs making it at once agree: the file is linked into
    /// place only where none is, and the loser reads the winner's.
    fn made(common_dir: &Path) -> Result<(CloneId, bool), IdentityError> {
        let path = common_dir.join(FILE);
        if let Some(id) = read(&path)? {
            return Ok((id, false));
        }
        let id = CloneId::random().map_err(|source| IdentityError::Create {
            path: path.clone(),
            source,
        })?;
        let create = |source| IdentityError::Create {
            path: path.clone(),
            source,
        };
        fs_err::create_dir_all(path.parent().expect("a file in a folder")).map_err(create)?;
        if fsutil::write_new(&path, format!("{}\n", id.0).as_bytes()).map_err(create)? {
            return Ok((id, true));
        }
        let id = read(&path)?.ok_or_else(|| IdentityError::Invalid {
            path,
            reason: "it vanished while provision read it".into(),
        })?;
        Ok((id, false))
    }

    fn random() -> std::io::Result<CloneId> {
        let mut bytes = [0u8; ID_LEN / 2];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        Ok(CloneId(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// The whole id, as marks carry it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its first digits: `{clone}` in a database name.
    pub fn tag(&self) -> &str {
        &self.0[..TAG_LEN]
    }
}

/// The device and inode of the folder `dir`.
fn folder(dir: &Path) -> Result<(u64, u64), IdentityError> {
    use std::os::unix::fs::MetadataExt;
    fs_err::metadata(dir)
        .map(|m| (m.dev(), m.ino()))
        .map_err(|source| IdentityError::Read {
            path: dir.to_path_buf(),
            source,
        })
}

/// Whether the identity in `common_dir` is its own (see the module's
/// comment); never writes.
fn seen(common_dir: &Path) -> Result<Seen, IdentityError> {
    let path = common_dir.join(HOME);
    let invalid = |reason| IdentityError::InvalidHome {
        path: path.clone(),
        reason,
    };
    let Some(bytes) = read_file(&path, 8192).map_err(invalid)? else {
        return Ok(Seen::Unrecorded);
    };
    let home = parse_home(&bytes).map_err(invalid)?;
    let dir = folder(common_dir)?;
    match (home.path == common_dir, home.dir == Some(dir)) {
        (true, true) => Ok(Seen::Here),
        (true, false) | (false, true) => Ok(Seen::Moved),
        (false, false) => Err(IdentityError::Elsewhere {
            here: common_dir.to_path_buf(),
            home: home.path,
        }),
    }
}

/// Writes down that the identity is seen in `common_dir`.
fn write_home(common_dir: &Path) -> Result<(), IdentityError> {
    let path = common_dir.join(HOME);
    let (dev, ino) = folder(common_dir)?;
    let text = format!("{dev} {ino} {}\n", hex(common_dir.as_os_str().as_bytes()));
    fsutil::write_atomically(&path, text.as_bytes())
        .map_err(|source| IdentityError::Create { path, source })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `<device> <inode> <the path's bytes in hex>` on a line of its own; or,
/// as written before devices and inodes were recorded, one absolute path.
fn parse_home(bytes: &[u8]) -> Result<Home, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8".to_string())?;
    let line = text.strip_suffix('\n').unwrap_or(text);
    let bad = || format!("it holds {line:?}, not a git dir's device, inode and path");
    if line.starts_with('/') && !line.contains(['\n', '\0']) {
        return Ok(Home {
            path: PathBuf::from(line),
            dir: None,
        });
    }
    let mut fields = line.split(' ');
    let (Some(dev), Some(ino), Some(path), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(bad());
    };
    let number = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let unhex = |s: &str| -> Option<Vec<u8>> {
        (s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| {
                (0..s.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
                    .collect()
            })
            .flatten()
    };
    let (Some(dev), Some(ino), Some(path)) = (number(dev), number(ino), unhex(path)) else {
        return Err(bad());
    };
    let path = PathBuf::from(std::ffi::OsString::from_vec(path));
    if !path.is_absolute() || path.as_os_str().as_bytes().contains(&0) {
        return Err(bad());
    }
    Ok(Home {
        path,
        dir: Some((dev, ino)),
    })
}

/// The identity in `path`, if there is one; anything but one line of
/// [`ID_LEN`] lowercase hex digits is refused.
fn read(path: &Path) -> Result<Option<CloneId>, IdentityError> {
    let invalid = |reason| IdentityError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    match read_file(path, 64).map_err(invalid)? {
        Some(bytes) => parse(&bytes).map(Some).map_err(invalid),
        None => Ok(None),
    }
}

/// A file of provision's, if there is one: a regular file of at most
/// `limit` bytes, never followed through a symlink; else why not.
fn read_file(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, String> {
    match fs_err::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
        Ok(meta) if meta.file_type().is_symlink() => return Err("it is a symlink".into()),
        Ok(meta) if !meta.is_file() => return Err("it is not a regular file".into()),
        Ok(meta) if meta.len() > limit => return Err(format!("it holds {} bytes", meta.len())),
        Ok(_) => {}
    }
    fs_err::read(path).map(Some).map_err(|e| e.to_string())
}

fn parse(bytes: &[u8]) -> Result<CloneId, String> {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if text.len() == ID_LEN && text.iter().all(hex) {
        Ok(CloneId(String::from_utf8_lossy(text).into_owned()))
    } else {
        Err(format!(
            "it holds {:?}, not {ID_LEN} lowercase hex digits",
            String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = CloneId::of(dir.path()).unwrap();
        assert_eq!(first.as_str().len(), ID_LEN);
        assert_eq!(first.tag(), &first.as_str()[..TAG_LEN]);
        assert_eq!(CloneId::of(dir.path()).unwrap(), first);
        let text = fs_err::read_to_string(dir.path().join(FILE)).unwrap();
        assert_eq!(text, format!("{}\n", first.as_str()));
        // Another clone gets another id.
        let other = tempfile::tempdir().unwrap();
        assert_ne!(CloneId::of(other.path()).unwrap(), first);
    }

    #[test]
    fn only_the_line_provision_writes_is_read() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(parse(id.as_bytes()).unwrap().as_str(), id);
        assert_eq!(parse(format!("{id}\n").as_bytes()).unwrap().as_str(), id);
        for bad in [
            "",
            "\n",
            &id[1..],
            &format!("{id}0"),
            &id.to_uppercase(),
            &format!("{id}\n\n"),
            &format!(" {}", &id[1..]),
            "../../../../etc/passwd0123456789",
        ] {
            let err = parse(bad.as_bytes()).unwrap_err();
            assert!(
                err.contains("not 32 lowercase hex digits"),
                "{bad:?}: {err}"
            );
        }
    }

    /// Moved within its file system (the same folder), an identity is kept
    /// and its new home written down; copied (a new folder), the copy is
    /// refused, even once the original has moved away, until it is told
    /// what it is.
    #[test]
    fn a_moved_clone_keeps_its_identity_and_a_copy_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (first, moved, copy) = (
            dir.path().join("a/.git"),
            dir.path().join("b/.git"),
            dir.path().join("c/.git"),
        );
        let id = CloneId::of(&first).unwrap();
        let home = |git: &Path| parse_home(&fs_err::read(git.join(HOME)).unwrap()).unwrap();
        assert_eq!(home(&first).path, first);
        assert_eq!(home(&first).dir, Some(folder(&first).unwrap()));
        // A copy, made before the original moves away.
        fs_err::create_dir_all(copy.join("provision")).unwrap();
        for file in [FILE, HOME] {
            fs_err::copy(first.join(file), copy.join(file)).unwrap();
        }
        fs_err::create_dir_all(moved.parent().unwrap()).unwrap();
        fs_err::rename(&first, &moved).unwrap();
        assert_eq!(CloneId::current(&moved).unwrap(), id);
        assert_eq!(home(&moved).path, first, "a read-only look writes nothing");
        assert_eq!(CloneId::of(&moved).unwrap(), id);
        assert_eq!(home(&moved).path, moved);

        let copied = fs_err::read(copy.join(HOME)).unwrap();
        let expected = format!(
            "{} holds the clone identity of {}, but is not that folder: this repository is a copy of it, or was moved from another file system; provision acts on no database here until you say which: `provision identity --new` if it is a copy (it gets an identity of its own; the databases stay the original's), or `provision identity --moved` if it is the same clone, moved (it keeps its identity and its databases)",
            copy.display(),
            first.display()
        );
        assert_eq!(CloneId::of(&copy).unwrap_err().to_string(), expected);
        assert_eq!(CloneId::current(&copy).unwrap_err().to_string(), expected);
        assert_eq!(fs_err::read(copy.join(HOME)).unwrap(), copied);
        assert_eq!(CloneId::of(&moved).unwrap(), id);

        // Told it is the same clone, moved: it keeps the identity.
        assert_eq!(CloneId::moved(&copy).unwrap(), id);
        assert_eq!(CloneId::of(&copy).unwrap(), id);
        // Told it is a copy: an identity of its own.
        let (old, own) = CloneId::renew(&copy).unwrap();
        assert_eq!(old, Some(id.clone()));
        assert_ne!(own, id);
        assert_eq!(CloneId::of(&copy).unwrap(), own);
        assert_eq!(home(&copy).path, copy);

        // One folder under another path is not a copy.
        let alias = dir.path().join("alias");
        fs_err::os::unix::fs::symlink(moved.parent().unwrap(), &alias).unwrap();
        assert_eq!(CloneId::current(&alias.join(".git")).unwrap(), id);

        // Written before inodes were recorded: the same path only.
        fs_err::write(moved.join(HOME), format!("{}\n", moved.display())).unwrap();
        assert_eq!(CloneId::current(&moved).unwrap(), id);
        fs_err::write(moved.join(HOME), format!("{}\n", first.display())).unwrap();
        assert!(matches!(
            CloneId::current(&moved),
            Err(IdentityError::Elsewhere { .. })
        ));

        fs_err::write(moved.join(HOME), "relative/.git\n").unwrap();
        let err = CloneId::of(&moved).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{} is not as provision wrote it: it holds \"relative/.git\", not a git dir's device, inode and path",
                moved.join(HOME).display()
            )),
            "{err}"
        );
    }

    /// Read-only, nothing is made: an identity held in memory only.
    #[test]
    fn reading_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let one = CloneId::current(dir.path()).unwrap();
        assert_ne!(CloneId::current(dir.path()).unwrap(), one);
        assert!(!dir.path().join("provision").exists());
    }

    /// Any path is written down and read back: a newline, bytes not UTF-8.
    #[test]
    fn any_path_is_its_home() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        for name in [&b"new\nline"[..], b"not\xffutf8"] {
            let git = dir.path().join(std::ffi::OsStr::from_bytes(name));
            let id = CloneId::of(&git).unwrap();
            assert_eq!(CloneId::of(&git).unwrap(), id);
            let home = parse_home(&fs_err::read(git.join(HOME)).unwrap()).unwrap();
            assert_eq!(home.path, git);
        }
    }

    #[test]
    fn a_forged_file_is_an_error_naming_it_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, "repo=/elsewhere\n").unwrap();
        let err = CloneId::of(dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{} is not a clone identity provision wrote: it holds \"repo=/elsewhere\\n\"",
                path.display()
            )),
            "{err}"
        );
        assert_eq!(fs_err::read_to_string(&path).unwrap(), "repo=/elsewhere\n");

        fs_err::remove_file(&path).unwrap();
        let target = dir.path().join("elsewhere");
        fs_err::write(&target, "0123456789abcdef0123456789abcdef\n").unwrap();
        fs_err::os::unix::fs::symlink(&target, &path).unwrap();
        let err = CloneId::of(dir.path()).unwrap_err().to_string();
        assert!(err.contains("it is a symlink"), "{err}");
    }
}
