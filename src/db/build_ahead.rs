//! `new` builds the SQLite database while git writes the checkout: the
//! database does not need the files, only the migrations, and those are in
//! git's objects at the commit the branch starts from. The database is
//! moved into place only if the migration files git then checked out are
//! exactly the ones it was built from; otherwise it is thrown away and
//! `apply` builds one as it always does. For PostgreSQL, whose sandboxes
//! are copies of the store's entries, only the connection is made ahead.

use std::path::Path;
use std::thread::JoinHandle;

use git2::{ObjectType, Repository};

use crate::BoxError;
use crate::db::migrations::{Applied, Entry, Format, Mode, layout};
use crate::db::{self, BuiltAhead, Source, store};
use crate::recipe::config::{DatabaseKind, Settings};

/// A database built ahead of its worktree, and what it has applied.
pub struct Prebuilt {
    pub file: BuiltAhead,
    pub applied: Vec<Applied>,
    /// The store's entry it started from, and how many migrations that
    /// had applied.
    pub from_store: Option<(String, usize)>,
}

/// Starts building on another thread; `None` for kinds that are not built
/// ahead. Any failure on the way only means nothing is built ahead.
pub struct Ahead(Option<JoinHandle<Option<Prebuilt>>>);

impl Ahead {
    /// `store_mark`: whose mark the store's entries carry (`db::store`).
    pub fn start(
        main: &Path,
        common_dir: &Path,
        settings: &Settings,
        rev: &str,
        store_mark: String,
    ) -> Self {
        if settings.database.kind == DatabaseKind::Postgres {
            // Nothing to build: the store's copy is taken by a rename. The
            // server's connection is made meanwhile, for `apply` to use.
            let (settings, main) = (settings.database.clone(), main.display().to_string());
            return Ahead(Some(std::thread::spawn(move || {
                db::Postgres::connect_ahead(&settings, &main);
                None
            })));
        }
        // A seeded database starts as its seed's copy, which `apply` makes.
        if settings.database.kind != DatabaseKind::Sqlite || settings.database.seed.is_some() {
            return Ahead(None);
        }
        let main = main.to_path_buf();
        // Beside the databases, so that adopting it is a rename.
        let dir = db::sqlite_dir(common_dir);
        let folder = settings.database.migrations.clone();
        let format = settings.database.format;
        let rev = rev.to_string();
        Ahead(Some(std::thread::spawn(move || {
            build(&main, &dir, &folder, format, &rev, &store_mark).ok()
        })))
    }

    /// Whether the build is still going (so a person is told why `new` waits).
    pub fn is_running(&self) -> bool {
        self.0.as_ref().is_some_and(|handle| !handle.is_finished())
    }

    /// Waits for the build; dropping the result unadopted deletes its file.
    pub fn finish(self) -> Option<Prebuilt> {
        self.0.and_then(|handle| handle.join().ok().flatten())
    }
}

fn build(
    main: &Path,
    dir: &Path,
    folder: &str,
    format: Option<Format>,
    rev: &str,
    store_mark: &str,
) -> Result<Prebuilt, BoxError> {
    // What a killed `new` left here goes first; this one's is locked.
    db::sweep_abandoned(dir)?;
    let migrations = read_migrations(main, folder, format, rev)?;
    let applied: Vec<Applied> = migrations
        .iter()
        .map(|m| Applied {
            name: m.name.clone(),
            checksum: m.checksum.clone(),
        })
        .collect();
    let keys = store::keys(
        store_mark,
        DatabaseKind::Sqlite,
        Format::Flat,
        "empty",
        &applied,
    );
    let (file, from_store) = db::prebuild_stored(dir, &migrations, &keys, store_mark)?;
    Ok(Prebuilt {
        file,
        applied,
        from_store,
    })
}

/// The migrations of `folder` at `rev`, as `migrations::scan` reads them
/// from a checkout of it. Only flat folders whose migrations each run in
/// provision's transaction are built ahead: the others go through apply.
fn read_migrations(
    main: &Path,
    folder: &str,
    format: Option<Format>,
    rev: &str,
) -> Result<Vec<Source>, BoxError> {
    let repo = Repository::open(main)?;
    let tree = repo.revparse_single(rev)?.peel_to_tree()?;
    let folder = match tree.get_path(Path::new(folder)) {
        Ok(entry) => entry.to_object(&repo)?.peel_to_tree()?,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut entries = Vec::new();
    for entry in folder.iter() {
        let Ok(name) = entry.name() else { continue };
        if entry.kind() == Some(ObjectType::Tree) {
            let inner = entry.to_object(&repo)?.peel_to_tree()?;
            for file in inner.iter() {
                if let Ok(file_name) = file.name() {
                    entries.extend(blob(&repo, &file, format!("{name}/{file_name}"))?);
                }
            }
        } else {
            entries.extend(blob(&repo, &entry, name.to_string())?);
        }
    }
    let read = layout::read(&entries, format)?;
    if read.format != Format::Flat {
        return Err("only flat folders are built ahead".into());
    }
    let mut out = Vec::new();
    for m in read.migrations {
        if m.mode()? != Mode::Wrapped {
            return Err("a migration runs outside provision's transaction".into());
        }
        out.push(Source {
            name: m.name,
            checksum: m.checksum,
            sql: m.up,
        });
    }
    Ok(out)
}

/// A checkout writes blobs as files; links and folders are not scanned.
fn blob(
    repo: &Repository,
    entry: &git2::TreeEntry,
    path: String,
) -> Result<Option<Entry>, BoxError> {
    if entry.kind() != Some(ObjectType::Blob) || entry.filemode() == 0o120000 {
        return Ok(None);
    }
    let bytes = if Entry::is_read(&path) {
        entry.to_object(repo)?.peel_to_blob()?.content().to_vec()
    } else {
        Vec::new()
    };
    Ok(Some(Entry { path, bytes }))
}
