//! `provision.lock`: the sandbox as realised, in canonical JSON, with a
//! blake3 hash of its own canonical bytes (computed with the hash field left
//! out, since a file cannot contain its own hash).
//!
//! Canonical means sorted keys (serde_json's map is a BTreeMap while the
//! `preserve_order` feature stays off), `/`-separated relative paths, and no
//! timestamps, host names or absolute paths: the same recipe and worktree name
//! give the same bytes in any clone at any path.
//!
//! Fields added since version 1 (a link's `mode`, `setup`, `ports`) are left
//! out at their default, so every lock written before them still reads, and
//! hashes, byte for byte the same: no version bump. An older provision refuses a lock
//! that uses them as an unknown field, rather than misreading it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::migrations::Applied;
use crate::hash;
use crate::recipe::config::DatabaseKind;

pub const FILE_NAME: &str = "provision.lock";
pub const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read {FILE_NAME}")]
    Read(#[source] std::io::Error),
    #[error("{FILE_NAME} is not a valid lock: {0}")]
    Parse(String),
    #[error(
        "{FILE_NAME} is from a newer provision (lock version {0}; this one reads version {VERSION}): upgrade provision, or delete the lock to rebuild the sandbox with this one"
    )]
    Newer(u64),
}

/// Everything one worktree's sandbox consists of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sandbox {
    pub version: u32,
    /// The sandbox name (the branch `provision new` created).
    pub worktree: String,
    /// Hash of the resolved recipe settings.
    pub recipe: String,
    pub links: Vec<Link>,
    /// `None` where there is no env file to write: the main checkout whose
    /// env file is itself the shared source.
    pub env: Option<EnvLock>,
    pub database: DatabaseLock,
    /// The first named port (`{port}`).
    pub port: u16,
    /// Every named port, as [`stored_ports`] keeps them: left out while
    /// the sandbox has only the default `PORT`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: NamedPorts,
    /// The `[[setup]]` commands, in order, and whether each completed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<Hook>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// The command's text as the recipe has it (templates unexpanded).
    pub run: String,
    /// False in a lock written after the command failed: `apply` runs it
    /// (and those after it) again.
    pub completed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Where the link sits, relative to the worktree root.
    pub path: String,
    /// What it points to, as `{main}/<path>`.
    pub target: String,
    pub kind: LinkKind,
    /// How the entry is realised; the requested mode, not whether the file
    /// system could reflink, so every clone's lock is the same.
    #[serde(default, skip_serializing_if = "LinkMode::is_symlink")]
    pub mode: LinkMode,
}

impl Link {
    /// The entry for `path` of the main checkout, as every lock records it.
    pub fn to_main(path: &str, kind: LinkKind, mode: LinkMode) -> Link {
        Link {
            path: path.to_string(),
            target: format!("{{main}}/{path}"),
            kind,
            mode,
        }
    }
}

impl Hook {
    /// Setup commands with whether each completed, for tests.
    #[cfg(test)]
    pub fn list(list: &[(&str, bool)]) -> Vec<Hook> {
        list.iter()
            .map(|(run, completed)| Hook {
                run: run.to_string(),
                completed: *completed,
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkMode {
    /// A relative symlink to the main checkout's copy (the default).
    #[default]
    Symlink,
    /// A copy the worktree owns: its contents are the worktree's to change.
    Copy,
    /// A copy sharing the source's blocks where the file system can
    /// (copy-on-write), else a plain copy.
    Reflink,
}

impl LinkMode {
    pub fn is_symlink(&self) -> bool {
        *self == LinkMode::Symlink
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LinkMode::Symlink => "symlink",
            LinkMode::Copy => "copy",
            LinkMode::Reflink => "reflink",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkKind {
    File,
    Dir,
    /// Listed in `.worktreeinclude` but missing from the main checkout.
    Absent,
    /// Observed only: nothing at the link's path.
    Missing,
    /// Observed only: a regular file or folder where the link should be.
    NotALink,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvLock {
    /// The real per-worktree file, relative to the worktree root.
    pub file: String,
    /// Hash of the main checkout's copy when the env file is also a shared
    /// (linked) file, whose contents the per-worktree file starts from.
    pub shared: Option<String>,
    pub overrides: BTreeMap<String, String>,
    /// Hash of the file as written.
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseLock {
    #[serde(deserialize_with = "crate::db::read_kind")]
    pub kind: DatabaseKind,
    pub name: String,
    /// Where the database lives, without host-specific parts.
    pub location: String,
    pub migrations: Vec<Applied>,
    /// Chained hash over `migrations`, in order.
    pub chain: String,
}

/// A sandbox's ports by name (`[ports] names`).
pub type NamedPorts = BTreeMap<String, u16>;

/// How a lock or registry record keeps its named ports: nothing while they
/// are exactly the default `{"PORT": port}`, which the `port` field says
/// alone, so locks and records from before named ports read and hash as
/// they did.
pub fn stored_ports(ports: &NamedPorts) -> NamedPorts {
    let default = crate::recipe::config::DEFAULT_PORT_NAME;
    if ports.len() == 1 && ports.contains_key(default) {
        NamedPorts::new()
    } else {
        ports.clone()
    }
}

/// The named ports a lock or record keeps as `port` and `stored`.
pub fn named_ports(port: u16, stored: &NamedPorts) -> NamedPorts {
    if stored.is_empty() {
        NamedPorts::from([(crate::recipe::config::DEFAULT_PORT_NAME.to_string(), port)])
    } else {
        stored.clone()
    }
}

impl Sandbox {
    /// Every named port of the sandbox.
    pub fn named_ports(&self) -> NamedPorts {
        named_ports(self.port, &self.ports)
    }
}

/// Where a lock holds the clone's tag (`lifecycle::identity`): in a
/// database name (and so its location and the overrides that hold it),
/// written so, every clone's lock is the same, as link targets record
/// `{main}`. In memory a sandbox holds its clone's tag itself.
pub const CLONE: &str = "{clone}";

/// `sandbox` as its lock records it: `tag` written [`CLONE`]. In an
/// override value, which may hold any text, a `{` of its own is written
/// `{{` first, so that a literal `{clone}` reads back as itself; a value
/// without `{` is written as before.
pub fn symbolic(sandbox: &Sandbox, tag: &str) -> Sandbox {
    assert!(!tag.is_empty(), "a clone's tag is never empty");
    let mut sandbox = sandbox.clone();
    let database = &mut sandbox.database;
    database.name = database.name.replace(tag, CLONE);
    database.location = database.location.replace(tag, CLONE);
    for value in overrides(&mut sandbox) {
        *value = value.replace('{', "{{").replace(tag, CLONE);
    }
    sandbox
}

/// A lock's sandbox with [`CLONE`] filled in with `tag` (and, in override
/// values, `{{` read as `{`).
pub fn realised(mut sandbox: Sandbox, tag: &str) -> Sandbox {
    let database = &mut sandbox.database;
    database.name = database.name.replace(CLONE, tag);
    database.location = database.location.replace(CLONE, tag);
    for value in overrides(&mut sandbox) {
        *value = unescape(value, tag);
    }
    sandbox
}

fn overrides(sandbox: &mut Sandbox) -> impl Iterator<Item = &mut String> {
    sandbox
        .env
        .iter_mut()
        .flat_map(|e| e.overrides.values_mut())
}

/// An override value as [`symbolic`] wrote it, read left to right: `{{` is
/// `{`, [`CLONE`] is `tag`, anything else itself (a lock written before
/// braces were escaped reads as it did).
fn unescape(value: &str, tag: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = rest.strip_prefix(CLONE) {
            out.push_str(tag);
            rest = after;
        } else {
            out.push('{');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The hash of an env file as a lock records it (`env.content`): of its
/// bytes with the clone's `tag` written [`CLONE`], so that it is the same
/// in every clone.
pub fn env_hash(bytes: &[u8], tag: &str) -> String {
    assert!(!tag.is_empty(), "a clone's tag is never empty");
    let tag = tag.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.starts_with(tag) {
            out.extend_from_slice(CLONE.as_bytes());
            rest = &rest[tag.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    hash::of(&out)
}

/// Canonical bytes: compact JSON with sorted keys.
pub fn canonical(sandbox: &Sandbox) -> Vec<u8> {
    let value = serde_json::to_value(sandbox).expect("a sandbox always serializes");
    serde_json::to_vec(&value).expect("a JSON value always serializes")
}

pub fn hash_of(sandbox: &Sandbox) -> String {
    hash::of(&canonical(sandbox))
}

/// The file's text: pretty JSON with sorted keys and the hash, ending in a newline.
pub fn render(sandbox: &Sandbox) -> String {
    let mut value = serde_json::to_value(sandbox).expect("a sandbox always serializes");
    value
        .as_object_mut()
        .expect("a sandbox is an object")
        .insert("hash".into(), Value::String(hash_of(sandbox)));
    let mut text = serde_json::to_string_pretty(&value).expect("a JSON value always serializes");
    text.push('\n');
    text
}

/// A lock read from disk.
#[derive(Debug)]
pub struct Read {
    pub sandbox: Sandbox,
    pub text: String,
    /// The hash field, and whether it matches the contents.
    pub recorded_hash: String,
    pub hash_ok: bool,
}

/// The worktree's lock, its sandbox with the clone's `tag` filled in.
pub fn read(worktree: &Path, tag: &str) -> Result<Option<Read>, LockError> {
    let path = worktree.join(FILE_NAME);
    // Read back, so never followed: a link would carry the read (and the
    // lock's paths) outside the worktree.
    if fs_err::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(LockError::Parse(
            "it is a symlink, not the file provision writes".into(),
        ));
    }
    let text = match fs_err::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LockError::Read(e)),
    };
    let mut read = parse(&text)?;
    read.sandbox = realised(read.sandbox, tag);
    Ok(Some(read))
}

/// A lock's text, as its file holds it: [`CLONE`] left unfilled.
pub fn parse(text: &str) -> Result<Read, LockError> {
    let mut value: Value =
        serde_json::from_str(text).map_err(|e| LockError::Parse(e.to_string()))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| LockError::Parse("not a JSON object".into()))?;
    // A newer provision may add fields: say which version it is before
    // the fields are checked.
    if let Some(version) = object.get("version").and_then(Value::as_u64)
        && version > u64::from(VERSION)
    {
        return Err(LockError::Newer(version));
    }
    let recorded_hash = match object.remove("hash") {
        Some(Value::String(h)) => h,
        _ => return Err(LockError::Parse("no \"hash\" field".into())),
    };
    // Hash what is in the file, not what the struct keeps of it, so that an
    // added field is caught as tampering too.
    let actual = hash::of(&serde_json::to_vec(&value).expect("a JSON value always serializes"));
    let sandbox: Sandbox =
        serde_json::from_value(value).map_err(|e| LockError::Parse(e.to_string()))?;
    if sandbox.version != VERSION {
        return Err(LockError::Parse(format!(
            "lock version {} is not supported (expected {VERSION})",
            sandbox.version
        )));
    }
    check(&sandbox).map_err(LockError::Parse)?;
    // Port names become variable names (`PROVISION_PORT_<NAME>`).
    if let Some(name) = sandbox
        .ports
        .keys()
        .find(|name| !crate::recipe::config::is_env_name(name))
    {
        return Err(LockError::Parse(format!(
            "ports: `{name}` is not a variable name"
        )));
    }
    Ok(Read {
        sandbox,
        text: text.to_string(),
        hash_ok: actual == recorded_hash,
        recorded_hash,
    })
}

/// What a lock names is acted on (linked, written, removed, opened): a lock
/// is read back from disk, so each path must stay inside the worktree and
/// each name be one provision makes. The hash only catches mistakes.
fn check(sandbox: &Sandbox) -> Result<(), String> {
    for (i, link) in sandbox.links.iter().enumerate() {
        inside(&link.path).map_err(|why| format!("links[{i}].path `{}`: {why}", link.path))?;
    }
    if let Some(env) = &sandbox.env {
        inside(&env.file).map_err(|why| format!("env.file `{}`: {why}", env.file))?;
    }
    let name = &sandbox.database.name;
    let filled = name.replace(CLONE, &"0".repeat(crate::lifecycle::identity::TAG_LEN));
    if !crate::slug::is_identifier(&filled) {
        return Err(format!(
            "database.name `{name}`: not a database name provision makes ([a-z0-9_], at most {} bytes)",
            crate::slug::MAX_IDENTIFIER
        ));
    }
    Ok(())
}

/// A path provision may act on inside a worktree: relative, only plain
/// components (no `..`, `.`, root), not in `.git`, not the lock itself.
pub fn inside(path: &str) -> Result<(), &'static str> {
    use std::path::Component;
    let components: Vec<Component> = Path::new(path).components().collect();
    if path.is_empty() || path.contains('\0') {
        return Err("empty, or holds a NUL");
    }
    // `components` folds `a//b` and a trailing `/`, and skips a leading
    // `./`: each would name one path in two ways.
    let plain = components.iter().all(|c| matches!(c, Component::Normal(_)))
        && !path.starts_with("./")
        && !path.contains("//")
        && !path.contains("/./")
        && !path.ends_with('/');
    if !plain {
        return Err("must be a plain relative path inside the worktree (no `..`, `./` or `//`)");
    }
    if components.first().is_some_and(|c| c.as_os_str() == ".git") {
        return Err("is one of provision's or git's own files: it lies in git's folder");
    }
    if path == FILE_NAME {
        return Err("is one of provision's or git's own files: the lock itself");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
