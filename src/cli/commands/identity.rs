//! `provision identity`: shows this clone's identity, and settles it when
//! provision cannot tell a copied repository from a moved one: `--new` for
//! a copy (an identity of its own), `--moved` for the same clone moved
//! across file systems (it keeps its identity).

use serde::Serialize;

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::git::Checkout;
use crate::lifecycle::identity::CloneId;
use crate::lifecycle::registry::Registry;
use crate::output::{self, DIM, Report, paint};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// This repository is a copy: give it an identity of its own. The
    /// original's databases stay the original's; this copy's sandboxes get
    /// new ones on their next `provision apply`.
    #[arg(long, conflicts_with = "moved")]
    pub new: bool,
    /// This repository is the clone that was elsewhere, moved (across file
    /// systems): it keeps its identity and its databases.
    #[arg(long)]
    pub moved: bool,
}

#[derive(Serialize)]
struct IdentityReport {
    /// The git common dir the identity is kept in.
    git_dir: String,
    /// The clone's id, as databases are marked with it.
    id: String,
    /// Its first digits: `{clone}` in database names.
    tag: String,
    /// `kept`, `moved` or `new`.
    action: &'static str,
    /// With `--new`, the sandboxes whose recorded database names held the
    /// old tag and now hold the new one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    renamed: Vec<String>,
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let checkout = Checkout::discover(&globals.cwd)?;
    let common_dir = &checkout.common_dir;
    let mut renamed = Vec::new();
    let (id, action) = if args.new {
        // A copy's records name the original's databases: under the new
        // tag they name databases of the copy's own, made on `apply`.
        let registry = Registry::new(common_dir);
        let guard = registry.lock()?;
        let (old, id) = CloneId::renew(common_dir)?;
        if let Some(old) = old {
            for mut record in registry.all(&guard)? {
                let database = &mut record.database;
                if database.name.contains(old.tag()) || database.location.contains(old.tag()) {
                    database.name = database.name.replace(old.tag(), id.tag());
                    database.location = database.location.replace(old.tag(), id.tag());
                    registry.put(&guard, &record)?;
                    renamed.push(record.name);
                }
            }
        }
        (id, "new")
    } else if args.moved {
        (CloneId::moved(common_dir)?, "moved")
    } else {
        (CloneId::current(common_dir)?, "kept")
    };
    let report = IdentityReport {
        git_dir: common_dir.display().to_string(),
        id: id.as_str().to_string(),
        tag: id.tag().to_string(),
        action,
        renamed,
    };
    output::emit(&report, globals.json);
    Ok(Exit::Clean)
}

impl Report for IdentityReport {
    fn text(&self) -> String {
        let what = match self.action {
            "new" => "a new clone identity",
            "moved" => "the clone identity, kept after a move",
            _ => "clone identity",
        };
        let mut out = format!("{what} {} ({{clone}} = {})\n", self.id, self.tag);
        for name in &self.renamed {
            out.push_str(&paint(
                DIM,
                format!(
                    "  sandbox {name}: its database is named with the new tag; `provision apply` there makes it\n"
                ),
            ));
        }
        out
    }
}
