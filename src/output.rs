//! All printing happens here: progress and warnings on stderr while work
//! runs, one report on stdout at the end (text, or JSON with `--json`), and
//! errors as `error:` plus `Caused by:` lines. Colour only on a terminal
//! (anstream strips it otherwise, and honours NO_COLOR).
//!
//! How much goes to stderr is one process-wide setting (`--quiet`,
//! `--verbose`), set once before a command runs: the git and shell runners
//! deep in the library ask it instead of having a `Progress` passed down.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

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

/// How much a command prints to stderr besides its errors and warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `--quiet`: errors and warnings only.
    Quiet = 0,
    /// Progress lines.
    Normal = 1,
    /// `--verbose`: progress lines and each git and shell command.
    Verbose = 2,
}

static VERBOSITY: AtomicU8 = AtomicU8::new(Verbosity::Normal as u8);

pub fn set_verbosity(verbosity: Verbosity) {
    VERBOSITY.store(verbosity as u8, Ordering::Relaxed);
}

pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    }
}

/// With `--verbose`, the command about to run, as `$ git …` on stderr.
pub fn command(program: &str, args: impl IntoIterator<Item = impl std::fmt::Display>) {
    if verbosity() == Verbosity::Verbose {
        let line = crate::shell::words(args);
        let _ = writeln!(
            anstream::stderr(),
            "    {}",
            paint(DIM, format!("$ {program} {line}").trim_end())
        );
    }
}

/// Progress lines for a person watching; silent with `--json` (unless
/// `--verbose`) and with `--quiet`.
#[derive(Clone)]
pub struct Progress {
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress { quiet }
    }

    pub fn step(&self, text: &str) {
        if !self.quiet && verbosity() >= Verbosity::Normal {
            let _ = writeln!(anstream::stderr(), "  {} {text}", paint(GREEN, "•"));
        }
    }

    /// Closes a step that took long enough for its time to matter.
    pub fn finished(&self, text: &str, took: std::time::Duration) {
        if !self.quiet && verbosity() >= Verbosity::Normal {
            let _ = writeln!(
                anstream::stderr(),
                "  {} {text} {}",
                paint(GREEN, "✓"),
                paint(DIM, format!("({:.1}s)", took.as_secs_f64()))
            );
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
    if json {
        let mut text = serde_json::to_string_pretty(report).expect("reports serialize");
        text.push('\n');
        stdout(text.as_bytes());
    } else {
        stdout(report.text().as_bytes());
    }
}

/// Writes a report to stdout. A reader that went away (`provision … | head`)
/// ends provision quietly, as it ends `cat`; any other failure to write the
/// report is an error, since a script would read a cut one.
pub fn stdout(bytes: &[u8]) {
    let mut out = anstream::stdout();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            #[derive(Debug, thiserror::Error)]
            #[error("cannot write the report to stdout")]
            struct WriteFailed(#[source] std::io::Error);
            print_error(&WriteFailed(e));
            std::process::exit(2);
        }
    }
}

/// The errors that caused `err`, outermost first.
pub fn causes<'a>(
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

/// With `--json`, an error is also a JSON object on stdout, so a script
/// reading stdout sees it: `{"error": …, "causes": […], "exit": 2}`.
pub fn print_error_json(err: &(dyn std::error::Error + 'static), exit: u8) {
    let causes: Vec<String> = causes(err).map(|c| c.to_string()).collect();
    let value = serde_json::json!({ "error": err.to_string(), "causes": causes, "exit": exit });
    let mut text = serde_json::to_string_pretty(&value).expect("a JSON value serializes");
    text.push('\n');
    stdout(text.as_bytes());
}

/// An error and its causes on one line, for a report's field.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    std::iter::once(err.to_string())
        .chain(causes(err).map(|c| c.to_string()))
        .collect::<Vec<_>>()
        .join(": ")
}
