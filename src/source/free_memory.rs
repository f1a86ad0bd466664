//! Giving a source thread's freed heap memory back to the OS.
//!
//! mimalloc keeps the pages a thread allocated in that thread's heap. What
//! other threads free there (the status writer dropping the `Desired` the
//! world thread built, 100k conditions at start) sits on the page until the
//! owning thread next looks at it, and pages it has marked full are looked
//! at only by a forced collection. A source thread that then waits for the
//! next change keeps those pages resident for good.

use std::sync::mpsc::{Receiver, RecvError, RecvTimeoutError};
use std::time::Duration;

/// Forces a collection of the calling thread's heap: empty pages go back to
/// the OS (purging is immediate, see `main.rs`). A few ms with 100k
/// credentials loaded. Harmless when mimalloc is not the global allocator.
pub fn return_free_memory() {
    // SAFETY: mi_collect takes no pointers and may be called at any time
    // from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// A receiving loop that gives freed memory back once it goes quiet after
/// work: not after every message, where a collection would delay the next
/// change, and not never, where a thread that sleeps until the next change
/// keeps what a burst freed.
pub struct QuietCollector {
    quiet: Duration,
    worked: bool,
}

impl QuietCollector {
    pub fn new(quiet: Duration) -> Self {
        Self { quiet, worked: false }
    }

    /// Call after handling a batch: the next quiet spell gives memory back.
    pub fn worked(&mut self) {
        self.worked = true;
    }

    /// The next message. If work was done since the last collection and
    /// nothing arrives for `quiet`, `give_back` runs first (once).
    pub fn recv<T>(&mut self, rx: &Receiver<T>, give_back: impl FnOnce()) -> Result<T, RecvError> {
        if self.worked {
            match rx.recv_timeout(self.quiet) {
                Ok(msg) => return Ok(msg),
                Err(RecvTimeoutError::Disconnected) => return Err(RecvError),
                Err(RecvTimeoutError::Timeout) => {
                    self.worked = false;
                    give_back();
                }
            }
        }
        rx.recv()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::mpsc;

    use super::*;

    const QUIET: Duration = Duration::from_millis(20);

    #[test]
    fn gives_back_once_after_work_when_quiet() {
        let (tx, rx) = mpsc::channel();
        let mut c = QuietCollector::new(QUIET);
        let given = Cell::new(0);
        let count = || given.set(given.get() + 1);

        // Nothing done yet: waits without collecting.
        tx.send(1).unwrap();
        assert_eq!(c.recv(&rx, count).unwrap(), 1);
        assert_eq!(given.get(), 0);

        // Work, then a message that is already waiting: no collection.
        c.worked();
        tx.send(2).unwrap();
        assert_eq!(c.recv(&rx, count).unwrap(), 2);
        assert_eq!(given.get(), 0);

        // Work, then quiet: one collection before the next message.
        c.worked();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(QUIET * 5);
            tx.send(3).unwrap();
            tx
        });
        assert_eq!(c.recv(&rx, count).unwrap(), 3);
        assert_eq!(given.get(), 1);
        let tx = sender.join().unwrap();

        // No work since: quiet again does not collect again.
        let sender = std::thread::spawn(move || {
            std::thread::sleep(QUIET * 3);
            tx.send(4).unwrap();
        });
        assert_eq!(c.recv(&rx, count).unwrap(), 4);
        assert_eq!(given.get(), 1);
        sender.join().unwrap();
    }

    #[test]
    fn stops_when_the_senders_are_gone() {
        let (tx, rx) = mpsc::channel::<()>();
        let mut c = QuietCollector::new(QUIET);
        c.worked();
        drop(tx);
        assert!(c.recv(&rx, || panic!("no collection on the way out")).is_err());
    }
}
