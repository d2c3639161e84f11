//! A fault-injecting [`Backend`]: it delegates to the production backend and fails the
//! calls a [`Fault`] picks — the k-th write, `set_len` or fsync, counted over every backend
//! the fault wraps (the file's, after reopens, and compaction copies'). A failing call
//! returns a marked error or an OS error (EIO, ENOSPC), may first write part of its buffer
//! (a torn write), and may keep failing every later mutating call. Reads never fail.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use compressed_image::{Backend, Error};

/// The message of a [`Failure::Marked`] error.
pub const INJECTED: &str = "injected fault";
/// The raw OS error numbers injected as [`Failure::Errno`] (Linux values).
pub const EIO: i32 = 5;
pub const ENOSPC: i32 = 28;

/// A mutating backend call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Write = 0,
    SetLen = 1,
    Sync = 2,
}

/// The error a failing call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `io::Error::other(INJECTED)`, recognisable by its message.
    Marked,
    /// An OS error with this number.
    Errno(i32),
}

/// What a failing write writes before it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Torn {
    /// Nothing.
    Nothing,
    /// The first half of its buffer (buffers of 2 bytes and more).
    Half,
    /// The first `n` bytes of its buffer (all of it when shorter).
    Prefix(usize),
}

/// Call `k` (counted from 0) of `op` fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub op: Op,
    pub k: usize,
    pub failure: Failure,
    pub torn: Torn,
    /// Once this target fired, every later mutating call fails the same way.
    pub forever: bool,
}

impl Target {
    /// Call `k` of `op` fails once, writing nothing, with the marked error.
    pub fn new(op: Op, k: usize) -> Target {
        Target {
            op,
            k,
            failure: Failure::Marked,
            torn: Torn::Nothing,
            forever: false,
        }
    }

    fn error(&self) -> io::Error {
        match self.failure {
            Failure::Marked => io::Error::other(INJECTED),
            Failure::Errno(errno) => io::Error::from_raw_os_error(errno),
        }
    }

    /// Whether `e` is the error this target injects, as the library surfaces it.
    pub fn check(&self, e: &Error) -> Result<(), String> {
        let ok = match (e, self.failure) {
            (Error::Io(io), Failure::Marked) => io.to_string().contains(INJECTED),
            (Error::Io(io), Failure::Errno(errno)) => io.raw_os_error() == Some(errno),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "expected the injected {:?}, got {e:?}",
                self.failure
            ))
        }
    }
}

/// The faults of one run, shared by every backend it wraps.
pub struct Fault {
    targets: Vec<Target>,
    armed: AtomicBool,
    counts: [AtomicUsize; 3],
    /// Targets reached.
    hits: AtomicUsize,
    /// Calls failed (targets, and the calls after a `forever` one).
    failed_calls: AtomicUsize,
    /// Wrapped backends so far; the first hit's backend number.
    instances: AtomicUsize,
    first_instance: AtomicUsize,
    /// A target that wrote part of its buffer fired since the last [`Fault::take_torn`].
    torn: AtomicBool,
    /// The `forever` target that fired, if any.
    forever: Mutex<Option<Target>>,
}

impl Fault {
    /// A fault that counts calls from the start.
    pub fn new(targets: impl IntoIterator<Item = Target>) -> Arc<Fault> {
        let fault = Fault::disarmed(targets);
        fault.arm();
        fault
    }

    /// A fault that neither counts nor fails calls until [`Fault::arm`].
    pub fn disarmed(targets: impl IntoIterator<Item = Target>) -> Arc<Fault> {
        Arc::new(Fault {
            targets: targets.into_iter().collect(),
            armed: AtomicBool::new(false),
            counts: Default::default(),
            hits: AtomicUsize::new(0),
            failed_calls: AtomicUsize::new(0),
            instances: AtomicUsize::new(0),
            first_instance: AtomicUsize::new(usize::MAX),
            torn: AtomicBool::new(false),
            forever: Mutex::new(None),
        })
    }

    pub fn arm(&self) {
        self.armed.store(true, SeqCst);
    }

    /// Calls of `op` counted so far.
    pub fn count(&self, op: Op) -> usize {
        self.counts[op as usize].load(SeqCst)
    }

    /// Calls counted so far: writes, `set_len`, fsyncs.
    pub fn counts(&self) -> [usize; 3] {
        [Op::Write, Op::SetLen, Op::Sync].map(|op| self.count(op))
    }

    /// Whether a target was reached.
    pub fn fired(&self) -> bool {
        self.hits() > 0
    }

    /// Targets reached so far.
    pub fn hits(&self) -> usize {
        self.hits.load(SeqCst)
    }

    /// Calls failed so far.
    pub fn failed_calls(&self) -> usize {
        self.failed_calls.load(SeqCst)
    }

    /// Which wrapped backend (0 is the first) the first target was reached through.
    pub fn first_instance(&self) -> Option<usize> {
        Some(self.first_instance.load(SeqCst)).filter(|&i| i != usize::MAX)
    }

    /// Whether a torn write fired since the last call; clears the flag.
    pub fn take_torn(&self) -> bool {
        self.torn.swap(false, SeqCst)
    }

    /// Count a call through backend `instance`; the target it fails, if any.
    fn hit(&self, op: Op, instance: usize) -> Option<Target> {
        if !self.armed.load(SeqCst) {
            return None;
        }
        let n = self.counts[op as usize].fetch_add(1, SeqCst);
        let forever = *self.forever.lock().expect("fault state");
        let target = forever.or_else(|| {
            let target = *self.targets.iter().find(|t| t.op == op && t.k == n)?;
            if self.hits.fetch_add(1, SeqCst) == 0 {
                self.first_instance.store(instance, SeqCst);
            }
            if target.torn != Torn::Nothing {
                self.torn.store(true, SeqCst);
            }
            if target.forever {
                *self.forever.lock().expect("fault state") = Some(target);
            }
            Some(target)
        })?;
        self.failed_calls.fetch_add(1, SeqCst);
        Some(target)
    }
}

/// Delegates to the production backend, failing the calls its [`Fault`] picks.
struct Faulty {
    inner: Box<dyn Backend>,
    instance: usize,
    fault: Arc<Fault>,
}

impl Backend for Faulty {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let Some(target) = self.fault.hit(Op::Write, self.instance) else {
            return self.inner.write_all_at(buf, offset);
        };
        let written = match target.torn {
            Torn::Nothing => 0,
            Torn::Half if buf.len() > 1 => buf.len() / 2,
            Torn::Half => 0,
            Torn::Prefix(n) => n.min(buf.len()),
        };
        if written > 0 {
            self.inner.write_all_at(&buf[..written], offset)?;
        }
        Err(target.error())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        match self.fault.hit(Op::SetLen, self.instance) {
            Some(target) => Err(target.error()),
            None => self.inner.set_len(len),
        }
    }
    fn sync(&self) -> io::Result<()> {
        match self.fault.hit(Op::Sync, self.instance) {
            Some(target) => Err(target.error()),
            None => self.inner.sync(),
        }
    }
}

/// The backend wrapper for `open_with_backend`: every backend it makes fails as `fault`
/// says.
pub fn wrap(
    fault: &Arc<Fault>,
) -> impl Fn(Box<dyn Backend>) -> Box<dyn Backend> + Send + Sync + 'static {
    let fault = fault.clone();
    move |inner| -> Box<dyn Backend> {
        Box::new(Faulty {
            inner,
            instance: fault.instances.fetch_add(1, SeqCst),
            fault: fault.clone(),
        })
    }
}

/// `e` is the marked injected error, surfaced as `Error::Io` with the message intact.
pub fn assert_injected(e: &Error, what: &str) {
    match e {
        Error::Io(io) => {
            assert_eq!(io.kind(), io::ErrorKind::Other, "{what}");
            assert!(io.to_string().contains(INJECTED), "{what}: {io}");
        }
        other => panic!("{what}: expected the injected I/O error, got {other:?}"),
    }
    assert!(e.to_string().contains(INJECTED), "{what}: {e}");
}
