//! Two independent pieces of work on the two cores a small node has: a
//! full consumer translation (~0.25 s at 100k credentials) and a routes
//! pass (~0.05 s at 10k Ingresses) read the World only and share nothing;
//! the two halves of a large manifest file parse apart. Plain scoped
//! threads: no pool to keep, and nothing here runs on the async runtime.

use std::sync::{Mutex, OnceLock};

/// Whether this process may run on two cores or more (its CPU affinity and
/// cgroup quota say; read once). With one, a second thread only adds
/// switching: measured ~4 % slower at startup pinned to one core.
fn two_cores() -> bool {
    static TWO: OnceLock<bool> = OnceLock::new();
    *TWO.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2))
}

/// Runs `a` on a second thread while `b` runs on this one, and returns
/// both results. With one core, or should no thread start (the process is
/// out of threads), `a` runs here after `b`. A panic in `a` resumes on
/// this thread.
pub fn at_once<A: Send, B>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    if !two_cores() {
        let b = b();
        return (a(), b);
    }
    // Taken by whichever thread runs it, exactly once.
    let task = Mutex::new(Some(a));
    let run = || {
        let a = task.lock().ok()?.take()?;
        Some(a())
    };
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new().name("translate".into()).spawn_scoped(s, run);
        let b = b();
        let a = match handle {
            Ok(h) => h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => None,
        };
        match a.or_else(run) {
            Some(a) => (a, b),
            // Not reached: `a` ran on the thread or runs here, and a panic
            // in it resumed above (a poisoned lock means it panicked).
            None => unreachable!("the task ran"),
        }
    })
}

/// `f` of every item, in order, the two halves of `items` mapped at once.
/// Fewer than `MIN_SPLIT` items are mapped here: a thread costs tens of
/// microseconds to start.
pub fn map_halves<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const MIN_SPLIT: usize = 4096;
    if items.len() < MIN_SPLIT {
        return items.iter().map(f).collect();
    }
    let (first, second) = items.split_at(items.len() / 2);
    let f = &f;
    let (mut second, first) =
        at_once(|| second.iter().map(f).collect::<Vec<R>>(), || first.iter().map(f).collect::<Vec<R>>());
    let mut all = first;
    all.reserve_exact(second.len());
    all.append(&mut second);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_run_and_each_result_comes_back() {
        let here = std::thread::current().id();
        let (a, b) = at_once(|| (std::thread::current().id(), 2), || (std::thread::current().id(), "b"));
        assert_eq!((a.1, b.1), (2, "b"));
        assert_eq!(b.0, here, "b runs on the caller's thread");
        assert_eq!(a.0 != here, two_cores(), "a runs on a second thread when there are two cores");
    }

    #[test]
    fn halves_come_back_in_order() {
        for n in [0, 1, 4095, 4096, 10_001] {
            let items: Vec<usize> = (0..n).collect();
            assert_eq!(map_halves(&items, |&i| i * 3), items.iter().map(|&i| i * 3).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_panic_in_the_second_thread_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| at_once(|| panic!("boom"), || 1));
        assert!(caught.is_err());
    }
}
