//! Progress of long operations on stderr: a bar with throughput and ETA when stderr is a
//! terminal, plain log lines when it is not (a log file, CI), nothing with `--quiet`; and
//! in every case the way an interrupt reaches the library (the observer cancels).

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use compressed_image::Progress;
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::interrupt::Interrupt;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// A progress bar, redrawn in place (stderr is a terminal).
    Bar,
    /// A line when an operation starts, one at most every [`LINE_INTERVAL`] while it runs,
    /// and one with its throughput when it completes.
    Lines,
    /// Nothing (`--quiet`).
    Off,
}

impl Display {
    /// The display for this process: `quiet`, or whatever stderr can show.
    pub fn choose(quiet: bool) -> Display {
        if quiet {
            Display::Off
        } else if std::io::stderr().is_terminal() {
            Display::Bar
        } else {
            Display::Lines
        }
    }
}

/// Time between two progress lines of a running operation.
const LINE_INTERVAL: Duration = Duration::from_secs(5);

/// The bar: what, how far, how fast, how long still.
const BAR_TEMPLATE: &str =
    "{prefix} [{bar:32}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}";

/// Reports one operation of the library on one file; cancels once an interrupt arrives.
pub struct Reporter<'a> {
    /// What the operation is about, e.g. `compact scan.cimg`.
    label: String,
    display: Display,
    interrupt: &'a Interrupt,
    bar: OnceLock<ProgressBar>,
    lines: Mutex<Lines>,
}

/// The state of [`Display::Lines`].
struct Lines {
    started: Instant,
    last_line: Instant,
    done: u64,
    total: u64,
}

impl<'a> Reporter<'a> {
    /// A reporter for the operation `label`.
    pub fn new(label: String, display: Display, interrupt: &'a Interrupt) -> Reporter<'a> {
        let now = Instant::now();
        Reporter {
            label,
            display,
            interrupt,
            bar: OnceLock::new(),
            lines: Mutex::new(Lines {
                started: now,
                last_line: now,
                done: 0,
                total: 0,
            }),
        }
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, Lines> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Progress for Reporter<'_> {
    fn start(&self, _what: &str, total: u64) {
        match self.display {
            Display::Bar => {
                let style = ProgressStyle::with_template(BAR_TEMPLATE)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                    .with_style(style)
                    .with_prefix(self.label.clone());
                bar.tick(); // drawn at once, also for an operation shorter than a redraw
                let _ = self.bar.set(bar);
            }
            Display::Lines => {
                let mut lines = self.lines();
                (lines.started, lines.last_line, lines.total) =
                    (Instant::now(), Instant::now(), total);
                eprintln!("{}: {} to process", self.label, HumanBytes(total));
            }
            Display::Off => {}
        }
    }

    fn advance(&self, n: u64) -> ControlFlow<()> {
        match self.display {
            Display::Bar => {
                if let Some(bar) = self.bar.get() {
                    bar.inc(n);
                }
            }
            Display::Lines => {
                let mut lines = self.lines();
                lines.done += n;
                if lines.last_line.elapsed() >= LINE_INTERVAL {
                    lines.last_line = Instant::now();
                    eprintln!(
                        "{}: {} of {}",
                        self.label,
                        HumanBytes(lines.done),
                        HumanBytes(lines.total)
                    );
                }
            }
            Display::Off => {}
        }
        if self.interrupt.requested() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn finish(&self) {
        match self.display {
            // The bar stays as last drawn: full once done, where it stopped otherwise.
            Display::Bar => {
                if let Some(bar) = self.bar.get() {
                    bar.abandon();
                }
            }
            Display::Lines => {
                let lines = self.lines();
                if lines.done == lines.total && !self.interrupt.requested() {
                    let seconds = lines.started.elapsed().as_secs_f64();
                    eprintln!(
                        "{}: {} in {seconds:.1} s ({}/s)",
                        self.label,
                        HumanBytes(lines.total),
                        HumanBytes((lines.total as f64 / seconds.max(1e-3)) as u64)
                    );
                }
            }
            Display::Off => {}
        }
    }
}
