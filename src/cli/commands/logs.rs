//! `provision logs SERVICE [-f]`: a service's output, as its log under the
//! git common dir holds it; `-f` follows it while the service runs.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use serde::Serialize;

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::output::{self, Report};
use crate::services::{Here, ServiceError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service whose log to print.
    #[arg(value_name = "SERVICE")]
    pub service: String,

    /// Keep printing what the service writes until it stops (or Ctrl-C).
    #[arg(short, long, conflicts_with = "json")]
    pub follow: bool,
}

#[derive(Serialize)]
struct LogReport {
    service: String,
    path: String,
    log: String,
}

impl Report for LogReport {
    fn text(&self) -> String {
        self.log.clone()
    }
}

/// How often `-f` looks for more output.
const POLL: Duration = Duration::from_millis(100);

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let here = Here::discover(&globals.cwd)?;
    let name = &args.service;
    let path = here.dir.log(name);
    let declared = here
        .workspace
        .settings
        .services
        .iter()
        .any(|s| s.name == *name);
    let mut file = match fs_err::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && declared => {
            return Err(ServiceError::NoLog(name.clone()).into());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(crate::services::unknown(name, &here.workspace.settings.services).into());
        }
        Err(e) => return Err(e.into()),
    };
    if !args.follow {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let report = LogReport {
            service: name.clone(),
            path: path.display().to_string(),
            log: String::from_utf8_lossy(&bytes).into_owned(),
        };
        if globals.json {
            output::emit(&report, true);
        } else {
            // The log's own bytes, not a re-encoding of them.
            output::stdout(&bytes);
        }
        return Ok(Exit::Clean);
    }
    follow(&here, name, &mut file)?;
    Ok(Exit::Clean)
}

/// Prints the log and what is appended to it while the service runs; once
/// it has stopped, what is left, then ends.
fn follow(here: &Here, name: &str, file: &mut fs_err::File) -> Result<(), BoxError> {
    let mut buf = vec![0; 64 * 1024];
    loop {
        // Asked before reading, so the last output is read after it ended.
        let running = here
            .dir
            .read(name)
            .ok()
            .flatten()
            .is_some_and(|r| r.leader().is_some());
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            output::stdout(&buf[..n]);
        }
        if !running {
            return Ok(());
        }
        // A restart truncates the log: read it again from the start.
        let position = file.stream_position()?;
        if fs_err::metadata(here.dir.log(name)).map_or(0, |m| m.len()) < position {
            file.seek(SeekFrom::Start(0))?;
        }
        std::thread::sleep(POLL);
    }
}
