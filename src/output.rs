//! All printing happens here: progress and warnings on stderr while work
//! runs, one report on stdout at the end (text, or JSON with `--json`), and
//! errors as `error:` plus `Caused by:` lines. Colour only on a terminal
//! (anstream strips it otherwise, and honours NO_COLOR).

use std::io::Write;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

pub const BOLD: Style = Style::new().bold();
pub const GREEN: Style = AnsiColor::Green.on_default();
pub const YELLOW: Style = AnsiColor::Yellow.on_default();
pub const RED: Style = AnsiColor::Red.on_default().bold();
pub const DIM: Style = Style::new().dimmed();
pub const CYAN: Style = AnsiColor::Cyan.on_default();

pub fn paint(style: Style, text: impl std::fmt::Display) -> String {
    format!("{}{text}{}", style.render(), style.render_reset())
}

/// Progress lines for a person watching; silent with `--json`.
pub struct Progress {
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress { quiet }
    }

    pub fn step(&self, text: &str) {
        if !self.quiet {
            let _ = writeln!(anstream::stderr(), "  {} {text}", paint(GREEN, "•"));
        }
    }

    pub fn warn(&self, text: &str) {
        let _ = writeln!(anstream::stderr(), "{} {text}", paint(YELLOW, "warning:"));
    }
}

/// A command's result: text for a person, JSON for a script.
pub trait Report: Serialize {
    fn text(&self) -> String;
}

pub fn emit(report: &impl Report, json: bool) {
    let mut out = anstream::stdout();
    if json {
        let text = serde_json::to_string_pretty(report).expect("reports serialize");
        let _ = writeln!(out, "{text}");
    } else {
        let _ = write!(out, "{}", report.text());
    }
}

/// The errors that caused `err`, outermost first.
fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(err.source(), |cause| cause.source())
}

pub fn print_error(err: &(dyn std::error::Error + 'static)) {
    let mut out = anstream::stderr();
    let _ = writeln!(out, "{} {err}", paint(RED, "error:"));
    if err.source().is_some() {
        let _ = writeln!(out, "\nCaused by:");
    }
    for cause in causes(err) {
        let _ = writeln!(out, "    {cause}");
    }
}

/// An error and its causes on one line, for a report's field.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    std::iter::once(err.to_string())
        .chain(causes(err).map(|c| c.to_string()))
        .collect::<Vec<_>>()
        .join(": ")
}
