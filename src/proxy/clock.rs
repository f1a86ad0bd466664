//! The time as a connection's task sees it: read at most once per poll, as
//! nginx reads it once per turn of its event loop.
//!
//! Why: a proxied request asked the clock eight times (the head-read
//! deadline, the request's start, the key's expiry, the pooled
//! connection's age, the upstream's start and deadline, its latency, the
//! connection's return to the pool), about 0.2 µs of vDSO calls per
//! request, most of them within the same poll. Within one poll the answers
//! differ by microseconds, below what any of their uses can tell apart
//! (deadlines are seconds, latencies are reported in milliseconds).
//!
//! Outside a `Ticked` poll (other tasks, tests, the control plane) every
//! call reads the clock, so nothing can see a time older than the poll it
//! runs in.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

/// One clock's reading within the current poll.
#[derive(Clone, Copy)]
enum Reading<T> {
    /// Not inside a `Ticked` poll: read the clock every time.
    Outside,
    /// Inside one, not read yet.
    Unread,
    Read(T),
}

thread_local! {
    static MONOTONIC: Cell<Reading<Instant>> = const { Cell::new(Reading::Outside) };
    static WALL: Cell<Reading<SystemTime>> = const { Cell::new(Reading::Outside) };
}

fn read<T: Copy>(cell: &'static std::thread::LocalKey<Cell<Reading<T>>>, clock: fn() -> T) -> T {
    cell.with(|c| match c.get() {
        Reading::Read(t) => t,
        Reading::Unread => {
            let t = clock();
            c.set(Reading::Read(t));
            t
        }
        Reading::Outside => clock(),
    })
}

/// Monotonic time, as of the current poll.
pub fn now() -> Instant {
    read(&MONOTONIC, Instant::now)
}

/// Wall-clock time, as of the current poll (key expiry).
pub fn wall() -> SystemTime {
    read(&WALL, SystemTime::now)
}

/// `now()` for tokio's timers.
pub fn tokio_now() -> tokio::time::Instant {
    tokio::time::Instant::from_std(now())
}

pin_project_lite::pin_project! {
    /// Wraps a task's future so the clock is read at most once per poll.
    pub struct Ticked<F> {
        #[pin]
        task: F,
    }
}

impl<F> Ticked<F> {
    pub fn new(task: F) -> Self {
        Ticked { task }
    }
}

impl<F: Future> Future for Ticked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // The previous state comes back afterwards, also on a panic, so a
        // nested or unwound poll never leaves a stale reading behind.
        struct Restore(Reading<Instant>, Reading<SystemTime>);
        impl Drop for Restore {
            fn drop(&mut self) {
                MONOTONIC.with(|c| c.set(self.0));
                WALL.with(|c| c.set(self.1));
            }
        }
        let _restore =
            Restore(MONOTONIC.with(|c| c.replace(Reading::Unread)), WALL.with(|c| c.replace(Reading::Unread)));
        self.project().task.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn outside_a_poll_every_call_reads_the_clock() {
        let a = now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(now() >= a + Duration::from_millis(2));
    }

    #[test]
    fn within_a_poll_the_clock_is_read_once_and_each_poll_reads_it_again() {
        let mut polls = Vec::new();
        let mut task = std::pin::pin!(Ticked::new(std::future::poll_fn(|cx| {
            let first = (now(), wall());
            std::thread::sleep(Duration::from_millis(2));
            assert_eq!((now(), wall()), first, "one reading per poll");
            polls.push(first);
            if polls.len() < 2 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(task.as_mut().poll(&mut cx).is_pending());
        assert!(task.as_mut().poll(&mut cx).is_ready());
        assert!(polls[1].0 >= polls[0].0 + Duration::from_millis(2), "a new poll reads the clock again");
        assert!(polls[1].1 >= polls[0].1 + Duration::from_millis(2));
        // After the poll the thread reads the clock again at every call.
        let after = now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(now() >= after + Duration::from_millis(2));
    }
}
