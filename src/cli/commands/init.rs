//! `provision init`: a commented recipe fitted to the checkout (the work
//! is `recipe::init`; its report reads as text here).

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::output::{self, BOLD, DIM, GREEN, Report, YELLOW, paint};
use crate::recipe::init::{self, InitReport};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_: Args, globals: &Globals) -> Result<Exit, BoxError> {
    output::emit(&init::init(&globals.cwd)?, globals.json);
    Ok(Exit::Clean)
}

impl Report for InitReport {
    fn text(&self) -> String {
        let mut out = String::new();
        if self.found.is_empty() {
            out.push_str(&format!(
                "{}\n",
                paint(DIM, "found no known tool: defaults")
            ));
        } else {
            out.push_str(&format!("found {}\n", self.found.join(", ")));
        }
        for file in &self.wrote {
            out.push_str(&format!("{} {file}\n", paint(GREEN, "wrote  ")));
        }
        for file in &self.skipped {
            out.push_str(&format!(
                "{} {file} (it exists; not overwritten)\n",
                paint(YELLOW, "skipped")
            ));
        }
        if !self.wrote.is_empty() {
            out.push_str(&format!(
                "{}\n",
                paint(BOLD, "review them, commit them, then: provision new NAME")
            ));
        }
        out
    }
}
