//! What became of each process a stop chose, and how a person reads it.

use serde::Serialize;

use super::stop::{Target, Why};

/// How a process was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum How {
    /// It ended after SIGTERM.
    Terminated,
    /// It was still running after its grace period: SIGKILL.
    Killed,
    /// `--dry-run`: it would be stopped.
    WouldStop,
    /// Spared: provision runs under it.
    Spared,
    /// It survived SIGKILL (stuck in the kernel), or could not be signalled.
    Failed,
}

/// One process stopped (or not), for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Stopped {
    pub pid: i32,
    pub command: String,
    pub why: Why,
    pub how: How,
}

impl Stopped {
    pub fn of(target: &Target, how: How) -> Self {
        Stopped {
            pid: target.id.pid,
            command: target.command.clone(),
            why: target.why.clone(),
            how,
        }
    }
}

/// Lines for a person: a service's processes stopped alike on one line
/// (`stopped service web: pids 41, 42`); each process killed, spared or
/// left running on a line of its own, with its command, as is each
/// process found working in the worktree.
pub fn describe(stopped: &[Stopped]) -> Vec<String> {
    // A service's pids stopped (or to stop) alike gather on the line the
    // first of them opened.
    type Group<'a> = Option<(&'a str, How)>;
    let mut lines: Vec<(Group, Vec<i32>, String)> = Vec::new();
    for s in stopped {
        let process = format!("pid {} ({})", s.pid, s.command);
        let what = match &s.why {
            Why::Service(name) if matches!(s.how, How::Terminated | How::WouldStop) => {
                let group = Some((name.as_str(), s.how));
                match lines.iter_mut().find(|(g, ..)| *g == group) {
                    Some((_, pids, _)) => pids.push(s.pid),
                    None => lines.push((group, vec![s.pid], String::new())),
                }
                continue;
            }
            Why::Service(name) => format!("service {name}"),
            Why::Folder(dir) => format!("a process working in {dir}"),
        };
        let line = match s.how {
            How::Terminated => format!("stopped {what}: {process}"),
            How::Killed => format!("killed {what} after its grace period: {process}"),
            How::WouldStop => format!("would stop {what}: {process}"),
            How::Spared => format!("left {what} running, since provision runs under it: {process}"),
            How::Failed => format!("could not stop {what}: {process}"),
        };
        lines.push((None, Vec::new(), line));
    }
    lines
        .into_iter()
        .map(|(group, pids, line)| match group {
            None => line,
            Some((name, how)) => {
                let verb = if how == How::WouldStop {
                    "would stop"
                } else {
                    "stopped"
                };
                let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
                let word = if pids.len() == 1 { "pid" } else { "pids" };
                format!("{verb} service {name}: {word} {}", list.join(", "))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_services_processes_read_as_one_line() {
        let stopped = |pid, why: &Why, how| Stopped {
            pid,
            command: format!("cmd{pid}"),
            why: why.clone(),
            how,
        };
        let web = Why::Service("web".into());
        let api = Why::Service("api".into());
        let stray = Why::Folder("/w/wt".into());
        let lines = describe(&[
            stopped(1, &web, How::Terminated),
            stopped(2, &api, How::Terminated),
            stopped(3, &web, How::Terminated),
            stopped(4, &web, How::Killed),
            stopped(5, &stray, How::Terminated),
            stopped(6, &stray, How::WouldStop),
            stopped(7, &api, How::WouldStop),
            stopped(8, &api, How::WouldStop),
        ]);
        assert_eq!(
            lines,
            [
                "stopped service web: pids 1, 3",
                "stopped service api: pid 2",
                "killed service web after its grace period: pid 4 (cmd4)",
                "stopped a process working in /w/wt: pid 5 (cmd5)",
                "would stop a process working in /w/wt: pid 6 (cmd6)",
                "would stop service api: pids 7, 8",
            ]
        );
    }
}
