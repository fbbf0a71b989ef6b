//! Progress lines on stderr while the comparison runs.

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    label: String,
    started: Instant,
    tty: bool,
}

impl Progress {
    pub fn new(label: impl Into<String>) -> Progress {
        Progress {
            label: label.into(),
            started: Instant::now(),
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// A line that stays.
    pub fn say(&self, what: &str) {
        eprintln!(
            "[{:>6.1}s] {:<28} {what}",
            self.started.elapsed().as_secs_f64(),
            self.label
        );
    }

    /// A line that the next tick overwrites on a terminal.
    pub fn tick(&self, what: &str) {
        if self.tty {
            eprint!(
                "\r[{:>6.1}s] {:<28} {what}\x1b[K",
                self.started.elapsed().as_secs_f64(),
                self.label
            );
            let _ = std::io::stderr().flush();
        } else {
            self.say(what);
        }
    }

    /// Ends a run of ticks.
    pub fn done_ticking(&self) {
        if self.tty {
            eprintln!();
        }
    }

    pub fn with_label(&self, label: impl Into<String>) -> Progress {
        Progress {
            label: label.into(),
            started: self.started,
            tty: self.tty,
        }
    }
}
