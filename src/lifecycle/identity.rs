//! The clone's identity: a random id made once per clone and kept under the
//! git common dir (`provision/clone-id`), never committed. Databases are
//! marked with it rather than with the repository's path, so moving or
//! renaming the repository keeps them provision's; two clones sharing one
//! database server tell their databases apart by it, and its first digits
//! (`{clone}`) keep their database names apart.
//!
//! Read back, the file is untrusted input: anything but the one line
//! provision writes is an error naming the file, and nothing is acted on.

use std::path::{Path, PathBuf};

use crate::fsutil;

/// The file under the git common dir.
const FILE: &str = "provision/clone-id";
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
    /// The identity of the clone whose git common dir is `common_dir`,
    /// made on first use. Two provision runs making it at once agree: the
    /// file is linked into place only where none is, and the loser reads
    /// the winner's.
    pub fn of(common_dir: &Path) -> Result<CloneId, IdentityError> {
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

/// The identity in `path`, if there is one; anything but one line of
/// [`ID_LEN`] lowercase hex digits is refused.
fn read(path: &Path) -> Result<Option<CloneId>, IdentityError> {
    let invalid = |reason: String| IdentityError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    match fs_err::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(invalid(e.to_string())),
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(invalid("it is a symlink".into()));
        }
        Ok(meta) if !meta.is_file() => return Err(invalid("it is not a regular file".into())),
        Ok(meta) if meta.len() > 64 => {
            return Err(invalid(format!("it holds {} bytes", meta.len())));
        }
        Ok(_) => {}
    }
    let bytes = fs_err::read(path).map_err(|e| invalid(e.to_string()))?;
    parse(&bytes).map(Some).map_err(invalid)
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
