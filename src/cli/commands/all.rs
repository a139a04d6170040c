//! `apply --all` and `verify --all`: the same command in every provisioned
//! worktree of the repository (every one whose folder holds a lock), each
//! reported on its own; one failing does not stop the others.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::BoxError;
use crate::git::{self, Checkout};
use crate::output::{self, BOLD, RED, Report, paint};
use crate::sandbox::lock;

/// One worktree's result: its report, or the error that stopped it.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Each<T> {
    Done(T),
    Failed {
        path: String,
        error: String,
        causes: Vec<String>,
    },
}

#[derive(Serialize)]
pub struct AllReport<T> {
    pub sandboxes: Vec<Each<T>>,
}

impl<T> AllReport<T> {
    pub fn failed(&self) -> usize {
        self.sandboxes
            .iter()
            .filter(|e| matches!(e, Each::Failed { .. }))
            .count()
    }
}

/// The worktrees of the repository around `cwd` that have a sandbox, the
/// main checkout first: a folder git still lists, holding a lock.
pub fn provisioned(cwd: &Path) -> Result<Vec<PathBuf>, BoxError> {
    let checkout = Checkout::discover(cwd)?;
    let worktrees = git::worktrees(&checkout.main, &checkout.common_dir)?;
    Ok(worktrees
        .into_iter()
        .filter(|w| !w.prunable && !w.cut_short)
        .map(|w| w.path)
        .filter(|path| fs_err::symlink_metadata(path.join(lock::FILE_NAME)).is_ok())
        .collect())
}

/// Runs `each` in every provisioned worktree.
pub fn run<T>(
    cwd: &Path,
    progress: &output::Progress,
    each: impl Fn(&Path) -> Result<T, BoxError>,
) -> Result<AllReport<T>, BoxError> {
    let mut sandboxes = Vec::new();
    for path in provisioned(cwd)? {
        progress.step(&format!("== {}", path.display()));
        sandboxes.push(match each(&path) {
            Ok(report) => Each::Done(report),
            Err(err) => Each::Failed {
                path: path.display().to_string(),
                error: err.to_string(),
                causes: output::causes(&*err).map(|c| c.to_string()).collect(),
            },
        });
    }
    Ok(AllReport { sandboxes })
}

impl<T: Report> Report for AllReport<T> {
    fn text(&self) -> String {
        let mut out = String::new();
        for each in &self.sandboxes {
            match each {
                Each::Done(report) => out.push_str(&report.text()),
                Each::Failed {
                    path,
                    error,
                    causes,
                } => {
                    let why = std::iter::once(error.as_str())
                        .chain(causes.iter().map(String::as_str))
                        .collect::<Vec<_>>()
                        .join(": ");
                    out.push_str(&format!("{} {path}: {why}\n", paint(RED, "error")));
                }
            }
        }
        let failed = self.failed();
        out.push_str(&paint(
            BOLD,
            format!("{} sandbox(es), {} failed\n", self.sandboxes.len(), failed),
        ));
        out
    }
}
