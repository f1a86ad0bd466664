//! The proxy's stop signal as its connections see it: a flag to check, and
//! a wake-up for the connections waiting idle.
//!
//! Why not tokio-util's `CancellationToken`: its check takes a mutex, and
//! so does every poll of its wait, and an idle keep-alive connection does
//! both between any two requests (~1 % of a 401's CPU time by samples).
//! Here a check is an atomic load, and a connection's wait takes the lock
//! once, when the connection starts.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

/// Set once, on shutdown; clones share it.
#[derive(Clone, Default)]
pub struct Stop(Arc<Shared>);

#[derive(Default)]
struct Shared {
    stopped: AtomicBool,
    /// Where each connection that may wait registers its waker; entries of
    /// ended connections are dropped as the list grows.
    waiters: Mutex<Vec<Weak<AtomicWaker>>>,
}

/// One connection's view of the signal.
pub struct Waiter {
    stop: Stop,
    waker: Arc<AtomicWaker>,
}

impl Stop {
    pub fn new() -> Self {
        Self::default()
    }

    /// Signals every connection, including those waiting now.
    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::Release);
        let waiters = std::mem::take(&mut *self.0.waiters.lock().unwrap_or_else(PoisonError::into_inner));
        for waker in waiters.iter().filter_map(Weak::upgrade) {
            waker.wake();
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::Acquire)
    }

    /// A connection's waiter: registered now, so a later `stop` wakes it.
    pub fn waiter(&self) -> Waiter {
        let waker = Arc::new(AtomicWaker::new());
        let mut waiters = self.0.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        // Ended connections' entries are dropped whenever the list is full,
        // and room is made so that at least as many connections start
        // before the next pass: within about twice the most connections
        // ever live, at a constant cost per connection.
        if waiters.len() == waiters.capacity() {
            waiters.retain(|w| w.strong_count() > 0);
            let live = waiters.len();
            waiters.reserve(live.max(8));
        }
        waiters.push(Arc::downgrade(&waker));
        Waiter { stop: self.clone(), waker }
    }
}

impl Waiter {
    pub fn is_stopped(&self) -> bool {
        self.stop.is_stopped()
    }

    /// Ready once stopped. The flag is read again after the waker is
    /// registered, so a `stop` between the two is not missed.
    pub fn poll_stopped(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_stopped() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        if self.is_stopped() { Poll::Ready(()) } else { Poll::Pending }
    }

    pub async fn stopped(&self) {
        poll_fn(|cx| self.poll_stopped(cx)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waiting_connections_wake_on_stop_and_later_ones_see_it_at_once() {
        let stop = Stop::new();
        let waiting: Vec<_> = (0..3)
            .map(|_| {
                let waiter = stop.waiter();
                tokio::spawn(async move { waiter.stopped().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(waiting.iter().all(|w| !w.is_finished()), "nothing wakes before the stop");
        stop.stop();
        for w in waiting {
            tokio::time::timeout(Duration::from_secs(5), w).await.expect("woken").expect("no panic");
        }
        let late = stop.waiter();
        assert!(late.is_stopped());
        tokio::time::timeout(Duration::from_secs(5), late.stopped()).await.expect("ready at once");
    }

    #[test]
    fn ended_connections_do_not_pile_up() {
        let stop = Stop::new();
        let live: Vec<Waiter> = (0..10).map(|_| stop.waiter()).collect();
        for _ in 0..10_000 {
            drop(stop.waiter());
        }
        let kept = stop.0.waiters.lock().map(|w| w.len()).unwrap_or(usize::MAX);
        assert!(kept <= 4 * live.len(), "{kept} entries for {} live waiters", live.len());
    }
}
