//! Crash points for exactly-once tests: `STREAMCTL_CRASH_AT=NAME[:N]` kills the process with
//! SIGKILL the N-th time (default the first) it reaches the point named NAME, such as between
//! writing a checkpoint and making it visible, or between publishing two files. Tests use it
//! to hit the narrow moments random kills rarely reach. Unset, a point costs one relaxed load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Armed {
    name: String,
    at: u64,
    hits: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("STREAMCTL_CRASH_AT").ok()?;
            let (name, at) = match spec.split_once(':') {
                Some((name, n)) => (name.to_string(), n.parse().ok()?),
                None => (spec, 1),
            };
            Some(Armed {
                name,
                at,
                hits: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// A named crash point.
pub fn point(name: &str) {
    if let Some(a) = armed()
        && a.name == name
        && a.hits.fetch_add(1, Ordering::Relaxed) + 1 == a.at
    {
        // SIGKILL, not a panic or exit: nothing is flushed, no destructor runs.
        // SAFETY: kill(2) with our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
