//! The clone's identity: a random id made once per clone and kept under the
//! git common dir (`provision/clone-id`), never committed. Databases are
//! marked with it rather than with the repository's path, so moving or
//! renaming the repository keeps them provision's; two clones sharing one
//! database server tell their databases apart by it, and its first digits
//! (`{clone}`) keep their database names apart.
//!
//! A `.git` copied whole (`cp -r` of a repository) would carry the same
//! identity, and each copy would take the other's databases for its own.
//! So the id's file is kept with the git common dir it was last seen in
//! (`provision/clone-home`): found elsewhere, while that folder still holds
//! the same identity in a file of its own, this is a copy, and is refused
//! until it gets an identity of its own. Found elsewhere otherwise, the
//! repository was moved, and the new place is written down.
//!
//! Read back, both files are untrusted input: anything but the one line
//! provision writes is an error naming the file, and nothing is acted on.

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
        "{} is not a clone identity provision wrote: {reason}; provision marks this clone's databases with the id it holds, so it acts on none until it is fixed: restore the file, or delete it to give this clone a new identity (databases marked with the old one are then no longer this clone's)",
        .path.display()
    )]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "{} is not as provision wrote it: {reason}; it says where this clone's identity was last seen, to tell a copied repository from a moved one: delete it, and provision writes it again",
        .path.display()
    )]
    InvalidHome { path: PathBuf, reason: String },
    #[error(
        "{} is a copy of the clone at {}: both hold the same clone identity, so each would take the other's databases for its own; provision acts on none here until this copy has an identity of its own: delete {}",
        .here.display(), .home.display(), .here.join(FILE).display()
    )]
    Copied { here: PathBuf, home: PathBuf },
    #[error("cannot create the clone identity {}", .path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// This clone's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneId(String);

impl CloneId {
    /// The identity of the clone whose git common dir is `common_dir`
    /// (canonical, as git's checkout gives it), made on first use.
    pub fn of(common_dir: &Path) -> Result<CloneId, IdentityError> {
        let id = CloneId::made(common_dir)?;
        at_home(common_dir)?;
        Ok(id)
    }

    /// The identity, made if there is none. Two provision runs making it at
    /// once agree: the file is linked into place only where none is, and
    /// the loser reads the winner's.
    fn made(common_dir: &Path) -> Result<CloneId, IdentityError> {
        let path = common_dir.join(FILE);
        if let Some(id) = read(&path)? {
            return Ok(id);
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
            return Ok(id);
        }
        read(&path)?.ok_or_else(|| IdentityError::Invalid {
            path,
            reason: "it vanished while provision read it".into(),
        })
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

/// Checks that the identity in `common_dir` is its own, not a copy's (see
/// the module's comment); writes down where it is now.
fn at_home(common_dir: &Path) -> Result<(), IdentityError> {
    let path = common_dir.join(HOME);
    let invalid = |reason| IdentityError::InvalidHome {
        path: path.clone(),
        reason,
    };
    let home = match read_file(&path, 4096).map_err(invalid)? {
        Some(bytes) => Some(parse_home(&bytes).map_err(invalid)?),
        None => None,
    };
    match home {
        Some(home) if home == common_dir => return Ok(()),
        Some(home) if is_copy_of(common_dir, &home) => {
            return Err(IdentityError::Copied {
                here: common_dir.to_path_buf(),
                home,
            });
        }
        _ => {}
    }
    let text = format!("{}\n", common_dir.display());
    fsutil::write_atomically(&path, text.as_bytes())
        .map_err(|source| IdentityError::Create { path, source })
}

/// Whether `home` holds the identity `here` holds, in a file of its own
/// (one folder under two paths is not a copy).
fn is_copy_of(here: &Path, home: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (mine, theirs) = (here.join(FILE), home.join(FILE));
    let same_id = match (read(&mine), read(&theirs)) {
        (Ok(Some(mine)), Ok(Some(theirs))) => mine == theirs,
        _ => false,
    };
    let file = |path: &Path| fs_err::metadata(path).map(|m| (m.dev(), m.ino())).ok();
    same_id && file(&mine) != file(&theirs)
}

/// One absolute path on a line of its own.
fn parse_home(bytes: &[u8]) -> Result<PathBuf, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8".to_string())?;
    let line = text.strip_suffix('\n').unwrap_or(text);
    let path = Path::new(line);
    if line.contains(['\n', '\0']) || !path.is_absolute() {
        return Err(format!(
            "it holds {line:?}, not the absolute path of a git dir"
        ));
    }
    Ok(path.to_path_buf())
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

    /// Moved, an identity is kept and its new home written down; copied,
    /// the copy is refused until it has an identity of its own.
    #[test]
    fn a_moved_clone_keeps_its_identity_and_a_copy_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (first, moved, copy) = (
            dir.path().join("a/.git"),
            dir.path().join("b/.git"),
            dir.path().join("c/.git"),
        );
        let id = CloneId::of(&first).unwrap();
        let home = |git: &Path| fs_err::read_to_string(git.join(HOME)).unwrap();
        assert_eq!(home(&first), format!("{}\n", first.display()));
        fs_err::create_dir_all(moved.parent().unwrap()).unwrap();
        fs_err::rename(&first, &moved).unwrap();
        assert_eq!(CloneId::of(&moved).unwrap(), id);
        assert_eq!(home(&moved), format!("{}\n", moved.display()));

        crate::fsutil::write_atomically(&copy.join(FILE), format!("{}\n", id.0).as_bytes())
            .unwrap();
        fs_err::copy(moved.join(HOME), copy.join(HOME)).unwrap();
        let err = CloneId::of(&copy).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} is a copy of the clone at {}: both hold the same clone identity, so each would take the other's databases for its own; provision acts on none here until this copy has an identity of its own: delete {}",
                copy.display(),
                moved.display(),
                copy.join(FILE).display()
            )
        );
        assert_eq!(CloneId::of(&moved).unwrap(), id);
        fs_err::remove_file(copy.join(FILE)).unwrap();
        let own = CloneId::of(&copy).unwrap();
        assert_ne!(own, id);
        assert_eq!(home(&copy), format!("{}\n", copy.display()));

        // One folder under another path is not a copy.
        let alias = dir.path().join("alias");
        fs_err::os::unix::fs::symlink(moved.parent().unwrap(), &alias).unwrap();
        assert_eq!(CloneId::of(&alias.join(".git")).unwrap(), id);

        fs_err::write(moved.join(HOME), "relative/.git\n").unwrap();
        let err = CloneId::of(&moved).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{} is not as provision wrote it: it holds \"relative/.git\", not the absolute path of a git dir",
                moved.join(HOME).display()
            )),
            "{err}"
        );
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
