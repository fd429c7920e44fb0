//! The one thread helper: scoped fork-join, and the table of sizes from
//! which work is worth a second thread.
//!
//! The library starts no thread unless the caller asks for more than one
//! ([`crate::Importer::threads`]); every thread it starts is scoped and
//! ends before the call that started it returns. A panic on a helper thread
//! is resumed on the calling thread, as if the work had run there.

/// From these sizes up, with more than one thread allowed, work is split:
/// below them a thread costs more than it saves.
pub(crate) mod from {
    /// Bytes of a file's body read and checked in pieces.
    pub const READ_BYTES: usize = 1 << 20;
    /// Rows indexed by the file-wide checks (keys, emails, cycles).
    pub const FILE_CHECK_ROWS: usize = 50_000;
    /// Rows whose catalog references are checked in two halves.
    pub const REFERENCE_ROWS: usize = 50_000;
    /// Rows in a part of the plan made in two halves.
    pub const BUILD_ROWS: usize = 4_096;
    /// Ops put in key order on two threads.
    pub const KEY_ORDER_OPS: usize = 50_000;
    /// The batch size from which a chunk is planned on other threads while
    /// the next chunk's users are fetched (threads are started per chunk).
    pub const OVERLAP_BATCH: usize = 64;
    /// The fewest rows in a block of a chunk planned on several threads.
    pub const CHUNK_BLOCK_ROWS: usize = 32;
}

/// Runs `a` on a new scoped thread and `b` on this one, and returns both
/// results.
pub(crate) fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB,
    RA: Send,
{
    std::thread::scope(|scope| {
        let a = scope.spawn(a);
        let rb = b();
        let ra = a
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (ra, rb)
    })
}

/// Runs `f` on each of `jobs`, all but the last on new scoped threads and
/// the last on this one, and returns the results in the jobs' order.
pub(crate) fn map<T, R, F>(jobs: Vec<T>, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    let mut jobs = jobs;
    let Some(last) = jobs.pop() else {
        return Vec::new();
    };
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|job| scope.spawn(move || f(job)))
            .collect();
        let last = f(last);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .chain(std::iter::once(last))
            .collect()
    })
}

/// Runs `work` on `helpers` new scoped threads while this thread runs
/// `here`, then `work` too; returns what `here` gave and every `work`
/// result, this thread's first. (`work` shares out its own pieces: each
/// call takes pieces until none are left.)
pub(crate) fn beside<R, H, W>(helpers: usize, work: W, here: impl FnOnce() -> H) -> (H, Vec<R>)
where
    R: Send,
    W: Fn() -> R + Sync,
{
    let work = &work;
    std::thread::scope(|scope| {
        let crew: Vec<_> = (0..helpers).map(|_| scope.spawn(work)).collect();
        let first = here();
        let mut results = vec![work()];
        results.extend(crew.into_iter().map(|h| {
            h.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }));
        (first, results)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_gives_both_results_and_map_keeps_the_order() {
        let (a, b) = join(|| 1 + 1, || "b");
        assert_eq!((a, b), (2, "b"));
        let squares = map((0..9).collect(), |i: u64| i * i);
        assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49, 64]);
        assert_eq!(map(Vec::<u8>::new(), |i| i), Vec::<u8>::new());
        let left = std::sync::atomic::AtomicUsize::new(100);
        let take = || {
            let mut taken = 0;
            while left
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok()
            {
                taken += 1;
            }
            taken
        };
        let (here, taken) = beside(3, take, || "fetched");
        assert_eq!(here, "fetched");
        assert_eq!(taken.len(), 4);
        assert_eq!(taken.iter().sum::<usize>(), 100);
    }

    #[test]
    fn a_panic_on_the_helper_thread_is_resumed_here() {
        let caught = std::panic::catch_unwind(|| join(|| panic!("helper"), || 1));
        assert!(caught.is_err());
        let caught = std::panic::catch_unwind(|| {
            map(
                vec![1, 2, 3],
                |i: i32| if i == 1 { panic!("first") } else { i },
            )
        });
        assert!(caught.is_err());
    }
}
