//! Runs a templated shell command the way every user-written command runs:
//! `sh -c` in a given folder, each `{key}` standing for `${PROVISION_KEY}`
//! (set in its environment, never pasted as shell text), the sandbox's env
//! overrides in its environment, its output streamed to stderr (stdout
//! belongs to provision's report) with the last lines kept for errors.
//! Used by the command database kind and by `[[setup]]` hooks; `start`
//! leaves a `[[services]]` command running in the background.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::recipe::{template, trust};

/// How much of a failed command's output its error repeats.
const TAIL_LINES: usize = 15;

/// How long the output of a command that has ended may still take to
/// arrive; what a background process it started prints later is not waited
/// for.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// One command to run.
pub struct Shell<'a> {
    pub template: &'a str,
    pub cwd: &'a Path,
    /// The template values (`{db}`, `{port}`, …), passed as `PROVISION_*`.
    pub values: &'a BTreeMap<&'static str, String>,
    /// The sandbox's env overrides.
    pub env: &'a BTreeMap<String, String>,
    /// `PROVISION_WORKTREE` as a path (the values hold it only as text).
    pub worktree: &'a Path,
    pub extra_env: &'a [(&'a str, String)],
    /// Holds the output back, for questions like `exists`.
    pub quiet: bool,
}

/// How a command ended and the last lines it printed.
pub struct Ran {
    pub code: Option<i32>,
    /// `exited with status 1`, or how a signal stopped it.
    pub status: String,
    pub tail: Vec<String>,
}

impl Ran {
    /// The last lines, as an error's tail: `; its last output:` then each
    /// line indented, or `, printing nothing`.
    pub fn last_output(&self) -> String {
        if self.tail.is_empty() {
            return ", printing nothing".to_string();
        }
        let lines: String = self.tail.iter().map(|l| format!("\n    | {l}")).collect();
        format!("; its last output:{lines}")
    }
}

impl Shell<'_> {
    /// The line `sh -c` runs: each `{key}` as the variable that carries its
    /// value. Fails unless the command was approved.
    fn line(&self, what: &str) -> std::io::Result<String> {
        // Values travel as environment variables, never as shell text: a
        // branch name may hold `$(…)`, and a path quotes or spaces.
        let line = template::to_shell(self.template, self.values).map_err(|e| {
            std::io::Error::other(format!("cannot expand `{}`: {e}", self.template))
        })?;
        // The last line of defence: `new` and `apply` check the whole
        // recipe first, but nothing reaches `sh` unapproved.
        let main = self.values.get("main").map_or("", String::as_str);
        trust::require(main, what, self.template).map_err(std::io::Error::other)?;
        Ok(line)
    }

    /// `sh` in the folder, with the overrides and `PROVISION_*` values.
    fn sh(&self) -> Command {
        let mut command = Command::new("sh");
        command
            .current_dir(self.cwd)
            .envs(self.env)
            .envs(self.values.iter().map(|(k, v)| (template::variable(k), v)))
            .env("PROVISION_WORKTREE", self.worktree)
            .envs(self.extra_env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::null());
        command
    }

    /// Starts the command in the background and leaves it running: in a
    /// process group of its own, its output (stdout and stderr) appended
    /// to `log`. A wrapping shell waits for it and then writes its exit
    /// status to `exit_file` (through a temporary file beside it, renamed
    /// into place), so that how it ended is known after provision is gone.
    pub fn start(
        &self,
        what: &str,
        log: std::fs::File,
        exit_file: &Path,
    ) -> std::io::Result<std::process::Child> {
        use std::os::unix::process::CommandExt;
        const WRAPPER: &str =
            r#"sh -c "$1"; status=$?; printf '%s\n' "$status" > "$2.tmp" && mv -f "$2.tmp" "$2""#;
        let line = self.line(what)?;
        crate::output::command("sh -c", [&line]);
        let err = log.try_clone()?;
        self.sh()
            .arg("-c")
            .arg(WRAPPER)
            .arg("sh")
            .arg(&line)
            .arg(exit_file)
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot run sh -c {line}: {e}")))
    }

    pub fn run(&self) -> std::io::Result<Ran> {
        let line = self.line("command")?;
        crate::output::command("sh -c", [&line]);
        // `--quiet` holds the output back too; a failure still shows its tail.
        let quiet = self.quiet || crate::output::verbosity() == crate::output::Verbosity::Quiet;
        let mut child = self
            .sh()
            .arg("-c")
            .arg(&line)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot run sh -c {line}: {e}")))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (done, finished) = mpsc::channel();
        pump(child.stdout.take().expect("piped"), &tail, quiet, &done);
        pump(child.stderr.take().expect("piped"), &tail, quiet, &done);
        let status = child.wait()?;
        // A reader ends when every process holding the pipe has closed it. A
        // process the command leaves running (`npm run dev &`) holds it for
        // as long as it runs: so after the command ends, its last output
        // gets a short grace, then provision stops waiting and leaves the
        // reader behind (it echoes on until provision exits).
        let deadline = Instant::now() + OUTPUT_GRACE;
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            if finished.recv_timeout(left).is_err() {
                break;
            }
        }
        let tail = std::mem::take(&mut *tail.lock().expect("no reader panics holding it"));
        let status_text = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => format!("was stopped ({status})"),
        };
        Ok(Ran {
            code: status.code(),
            status: status_text,
            tail: tail.into(),
        })
    }
}

/// Copies a child's stream line by line to stderr, keeping the last lines;
/// says `done` at the end of the stream.
fn pump(
    stream: impl Read + Send + 'static,
    tail: &Arc<Mutex<VecDeque<String>>>,
    quiet: bool,
    done: &mpsc::Sender<()>,
) {
    let (tail, done) = (tail.clone(), done.clone());
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        while reader.read_until(b'\n', &mut buf).unwrap_or(0) > 0 {
            if !quiet {
                let _ = std::io::stderr().write_all(&buf);
            }
            let line = String::from_utf8_lossy(&buf).trim_end().to_string();
            let mut tail = tail.lock().expect("no reader panics holding it");
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
            buf.clear();
        }
        let _ = done.send(());
    });
}

/// `args` as one line a shell reads back as those words: each quoted where
/// a shell would split or expand it, so the line can be pasted into one.
pub fn words(args: impl IntoIterator<Item = impl std::fmt::Display>) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    args.into_iter()
        .map(|a| {
            let a = a.to_string();
            if !a.is_empty() && a.chars().all(plain) {
                a
            } else {
                posix_quote(&a)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Single quotes keep everything literal in sh, bash and zsh (newlines,
/// `$`, backslashes, backticks); a single quote itself ends the quoting,
/// is escaped, and reopens it.
pub fn posix_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// In fish's single quotes only `\\` and `\'` are escapes.
pub fn fish_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_every_character() {
        let value = "it's $HOME `x` \\ \"q\"\nline 2";
        assert_eq!(posix_quote(value), "'it'\\''s $HOME `x` \\ \"q\"\nline 2'");
        assert_eq!(fish_quote(value), "'it\\'s $HOME `x` \\\\ \"q\"\nline 2'");
    }
}
