//! `provision status`: every worktree and every orphaned record, as one
//! aligned table (the rows come from `lifecycle::status`).

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::git::Checkout;
use crate::lifecycle::ports;
use crate::lifecycle::status;
use crate::output::{self, BOLD, DIM, GREEN, RED, Report, YELLOW, paint};
use crate::sandbox::lock;
use crate::services::ServiceStatus;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let report = status::status(&Checkout::discover(&globals.cwd)?)?;
    output::emit(&report, globals.json);
    Ok(Exit::Clean)
}

impl Report for status::Report {
    fn text(&self) -> String {
        let header = [
            "NAME", "BRANCH", "STATE", "DIRTY", "PORT", "SERVICES", "DATABASE", "PATH",
        ];
        let cells: Vec<[String; 8]> = self.sandboxes.iter().map(cells).collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        // Pad before painting, so escape codes never upset the alignment.
        let line = |row: &[String], styles: &[anstyle::Style]| {
            let mut text = String::new();
            for (i, cell) in row.iter().enumerate() {
                let padded = if i + 1 == row.len() {
                    cell.clone()
                } else {
                    format!("{cell:<w$}  ", w = widths[i])
                };
                text.push_str(&paint(styles[i], padded));
            }
            text.trim_end().to_string() + "\n"
        };
        let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
        let mut out = line(&header, &[BOLD; 8]);
        for (row, data) in cells.iter().zip(&self.sandboxes) {
            let state = match data.state {
                status::State::Clean => GREEN,
                status::State::Stale => YELLOW,
                status::State::Drift | status::State::Orphan | status::State::Error => RED,
                status::State::NotProvisioned | status::State::Missing => DIM,
            };
            let plain = anstyle::Style::new();
            let styles = [plain, plain, state, plain, plain, plain, plain, DIM];
            out.push_str(&line(row, &styles));
            out.push_str(&below(data));
        }
        if let Some(store) = &self.store {
            out.push_str(&paint(
                DIM,
                format!("store of migrated states: {}\n", store.summary()),
            ));
        }
        if self
            .sandboxes
            .iter()
            .any(|r| r.main && r.state == status::State::NotProvisioned)
        {
            out.push_str(&paint(
                DIM,
                "the main checkout is `not provisioned` until `provision apply` runs there; worktrees link to its files either way\n",
            ));
        }
        out
    }
}

/// The SERVICES cell: each service by name, with how it ended if it did.
fn services(services: &[ServiceStatus]) -> String {
    if services.is_empty() {
        return "-".into();
    }
    let labels: Vec<String> = services.iter().map(ServiceStatus::label).collect();
    labels.join(", ")
}

/// One row's cells, in the header's order.
fn cells(row: &status::Row) -> [String; 8] {
    let mut name = row.name.clone();
    if row.locked {
        name.push_str(" (locked)");
    }
    [
        name,
        row.branch.clone().unwrap_or_else(|| "-".into()),
        row.state.label().to_string(),
        match row.dirty {
            Some(true) => "yes".into(),
            Some(false) => "no".into(),
            None => "-".into(),
        },
        row.port.map_or("-".into(), |p| p.to_string()),
        services(&row.services),
        row.database.clone().unwrap_or_else(|| "-".into()),
        row.path.clone(),
    ]
}

/// Under a row: its named ports, why it is not clean (the reason an `error`
/// row could not be read is as much the answer as the state), its warnings.
fn below(row: &status::Row) -> String {
    let mut out = String::new();
    // More than the one default port: each by name.
    if !lock::stored_ports(&row.ports).is_empty() {
        let text = ports::text(&row.ports);
        out.push_str(&format!("  {}\n", paint(DIM, format!("└ {text}"))));
    }
    if let Some(detail) = &row.detail {
        let style = if row.state == status::State::Error {
            RED
        } else {
            DIM
        };
        out.push_str(&format!("  {}\n", paint(style, format!("└ {detail}"))));
    }
    for warning in &row.warnings {
        out.push_str(&format!(
            "  {}\n",
            paint(YELLOW, format!("└ warning: {warning}"))
        ));
    }
    out
}
