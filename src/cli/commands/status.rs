//! `provision status`: every worktree and every orphaned record, as one
//! aligned table (the rows come from `lifecycle::status`).

use std::io::IsTerminal;

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
    let checkout = Checkout::discover(&globals.cwd)?;
    // On a terminal each row shows as soon as it and those above it are
    // read. Its columns are as wide as git's list and the records make
    // them before any state is read, the state's as wide as its longest
    // word: a report that is read whole (a pipe, a file, `--json`) is laid
    // out from the rows as they came.
    if !globals.json && std::io::stdout().is_terminal() {
        let listing = status::Listing::gather(&checkout)?;
        let mut sandboxes = Vec::with_capacity(listing.rows.len());
        let table = Table::new(&listing.rows, true);
        output::stdout(table.header().as_bytes());
        listing.finish(|row| {
            output::stdout(table.row(&row).as_bytes());
            sandboxes.push(row);
        });
        output::stdout(footer(&sandboxes).as_bytes());
        output::stdout(store_line(status::store(&checkout).as_ref()).as_bytes());
    } else {
        output::emit(&status::status(&checkout)?, globals.json);
    }
    Ok(Exit::Clean)
}

impl Report for status::Report {
    fn text(&self) -> String {
        let table = Table::new(&self.sandboxes, false);
        let mut out = table.header();
        for row in &self.sandboxes {
            out.push_str(&table.row(row));
        }
        out.push_str(&footer(&self.sandboxes));
        out.push_str(&store_line(self.store.as_ref()));
        out
    }
}

/// The store of migrated states in one line, where it holds anything.
fn store_line(store: Option<&crate::lifecycle::store::Contents>) -> String {
    store.map_or_else(String::new, |store| {
        paint(
            DIM,
            format!("store of migrated states: {}\n", store.summary()),
        )
    })
}

const HEADER: [&str; 8] = [
    "NAME", "BRANCH", "STATE", "DIRTY", "PORT", "SERVICES", "DATABASE", "PATH",
];

/// The columns' widths, from the rows they hold.
struct Table {
    widths: [usize; 8],
}

impl Table {
    /// With `any_state`, the state column fits every state's word, for
    /// rows whose state is not read yet.
    fn new(rows: &[status::Row], any_state: bool) -> Self {
        let mut widths = HEADER.map(str::len);
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(cells(row)) {
                *width = (*width).max(cell.chars().count());
            }
        }
        if any_state {
            widths[2] = widths[2].max(status::State::NotProvisioned.label().len());
        }
        Table { widths }
    }

    /// Pads before painting, so escape codes never upset the alignment.
    fn line(&self, row: &[String], styles: &[anstyle::Style]) -> String {
        let mut text = String::new();
        for (i, cell) in row.iter().enumerate() {
            let padded = if i + 1 == row.len() {
                cell.clone()
            } else {
                format!("{cell:<w$}  ", w = self.widths[i])
            };
            text.push_str(&paint(styles[i], padded));
        }
        text.trim_end().to_string() + "\n"
    }

    fn header(&self) -> String {
        let header: Vec<String> = HEADER.iter().map(|h| h.to_string()).collect();
        self.line(&header, &[BOLD; 8])
    }

    /// A row's line, then what is under it.
    fn row(&self, data: &status::Row) -> String {
        let state = match data.state {
            status::State::Clean => GREEN,
            status::State::Stale => YELLOW,
            status::State::Drift | status::State::Orphan | status::State::Error => RED,
            status::State::NotProvisioned | status::State::Missing => DIM,
        };
        let plain = anstyle::Style::new();
        let styles = [plain, plain, state, plain, plain, plain, plain, DIM];
        self.line(&cells(data), &styles) + &below(data)
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

fn footer(rows: &[status::Row]) -> String {
    if rows
        .iter()
        .any(|r| r.main && r.state == status::State::NotProvisioned)
    {
        paint(
            DIM,
            "the main checkout is `not provisioned` until `provision apply` runs there; worktrees link to its files either way\n",
        )
    } else {
        String::new()
    }
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
