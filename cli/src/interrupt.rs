//! Ctrl-C and SIGTERM: the first asks the running operation to stop at its next safe
//! point (the progress observer reports it to the library, which returns
//! `Error::Cancelled`); a second one ends the program at once.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

/// Whether the user asked to stop. The flag is set inside the signal handler itself, so
/// it is set before the interrupted thread runs on.
#[derive(Clone)]
pub struct Interrupt {
    requested: Arc<AtomicBool>,
}

impl Interrupt {
    /// Install the handlers for SIGINT and SIGTERM.
    pub fn install() -> io::Result<Interrupt> {
        let requested = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // Registered first, so it sees the flag as the previous signal left it: a
            // second signal exits with the status of an interrupted program.
            signal_hook::flag::register_conditional_shutdown(signal, 130, requested.clone())?;
            signal_hook::flag::register(signal, requested.clone())?;
        }
        Ok(Interrupt { requested })
    }

    /// Whether a signal asked to stop.
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}
