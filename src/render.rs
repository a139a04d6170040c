//! How each command's report reads as text. The JSON form is the report's
//! own serialization; `output::emit` picks one.

use crate::apply::Outcome;
use crate::output::{BOLD, CYAN, DIM, GREEN, RED, Report, YELLOW, paint};
use crate::{gc, remove, status, verify};

/// `new`'s report: apply's, read as the announcement of a new sandbox.
#[derive(serde::Serialize)]
#[serde(transparent)]
pub struct NewReport(pub Outcome);

impl Report for NewReport {
    fn text(&self) -> String {
        format!(
            "{}\n  cd {}\n",
            paint(
                GREEN,
                format!(
                    "sandbox {} is ready (lock {})",
                    self.0.worktree,
                    short(&self.0.lock)
                )
            ),
            self.0.path
        )
    }
}

impl Report for Outcome {
    fn text(&self) -> String {
        if self.dry_run {
            let mut out = format!(
                "{}\n",
                paint(
                    BOLD,
                    format!(
                        "would apply {} action(s) to {}",
                        self.actions.len(),
                        self.worktree
                    )
                )
            );
            for action in &self.actions {
                out.push_str(&format!("  {action}\n"));
            }
            return out;
        }
        if self.actions.is_empty() {
            return format!(
                "{}\n",
                paint(
                    GREEN,
                    format!(
                        "sandbox {} is up to date (lock {})",
                        self.worktree,
                        short(&self.lock)
                    )
                )
            );
        }
        format!(
            "{}\n",
            paint(
                GREEN,
                format!(
                    "sandbox {}: {} action(s) applied (lock {})",
                    self.worktree,
                    self.actions.len(),
                    short(&self.lock)
                )
            )
        )
    }
}

impl Report for verify::Report {
    fn text(&self) -> String {
        let mut out = String::new();
        for line in self.diff.lines() {
            let style = match line.chars().next() {
                Some('+') if !line.starts_with("+++") => GREEN,
                Some('-') if !line.starts_with("---") => RED,
                Some('@') => CYAN,
                _ => DIM,
            };
            out.push_str(&paint(style, line));
            out.push('\n');
        }
        let width = self
            .findings
            .iter()
            .map(|f| f.subject.len())
            .max()
            .unwrap_or(0);
        for f in &self.findings {
            let kind = paint(
                if f.kind == "stale" { YELLOW } else { RED },
                format!("{:<5}", f.kind),
            );
            out.push_str(&format!("{kind} {:<width$}  {}\n", f.subject, f.message));
        }
        let name = self.worktree.as_deref().unwrap_or("this worktree");
        if self.clean {
            out.push_str(&paint(GREEN, format!("sandbox {name} matches its lock\n")));
        } else {
            out.push_str(&format!(
                "{} finding(s) in {name}; `provision apply` repairs what it can\n",
                self.findings.len()
            ));
        }
        out
    }
}

impl Report for remove::Removal {
    fn text(&self) -> String {
        let mut out = format!(
            "{}\n",
            paint(GREEN, format!("removed sandbox {}", self.name))
        );
        for line in &self.done {
            out.push_str(&format!("  {line}\n"));
        }
        out
    }
}

impl Report for gc::Report {
    fn text(&self) -> String {
        let mut out = String::new();
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        out.push_str(&paint(BOLD, format!("{verb} {}\n", self.removed.len())));
        for item in &self.removed {
            let r = &item.removal;
            out.push_str(&format!(
                "  {}  {}  ({})\n",
                paint(GREEN, &r.name),
                r.path,
                item.reason
            ));
            for line in &r.done {
                out.push_str(&format!("      {line}\n"));
            }
        }
        out.push_str(&paint(BOLD, format!("kept {}\n", self.kept.len())));
        let width = self.kept.iter().map(|k| k.name.len()).max().unwrap_or(0);
        let path_width = self.kept.iter().map(|k| k.path.len()).max().unwrap_or(0);
        for kept in &self.kept {
            out.push_str(&format!(
                "  {:<width$}  {}  {}\n",
                kept.name,
                paint(DIM, format!("{:<path_width$}", kept.path)),
                kept.reason
            ));
        }
        for failed in &self.failed {
            out.push_str(&format!(
                "{} {}  {}: {}\n",
                paint(RED, "failed"),
                failed.name,
                failed.path,
                failed.error
            ));
        }
        if self.dry_run {
            out.push_str("dry run: nothing was changed\n");
        }
        out
    }
}

impl Report for status::Report {
    fn text(&self) -> String {
        let header = [
            "NAME", "BRANCH", "STATE", "DIRTY", "PORT", "DATABASE", "PATH",
        ];
        let cells: Vec<[String; 7]> = self
            .sandboxes
            .iter()
            .map(|row| {
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
                    row.database.clone().unwrap_or_else(|| "-".into()),
                    row.path.clone(),
                ]
            })
            .collect();
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
        let mut out = line(&header, &[BOLD; 7]);
        for (row, data) in cells.iter().zip(&self.sandboxes) {
            let state = match data.state {
                status::State::Clean => GREEN,
                status::State::Stale => YELLOW,
                status::State::Drift | status::State::Orphan | status::State::Error => RED,
                status::State::NotProvisioned | status::State::Missing => DIM,
            };
            let plain = anstyle::Style::new();
            out.push_str(&line(row, &[plain, plain, state, plain, plain, plain, DIM]));
        }
        out
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(7 + 12)]
}
