//! A counting allocator: current and peak bytes in use. A bench that
//! measures the heap installs it:
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: common::alloc::Counting = common::alloc::Counting;
//! ```
//!
//! Each thread keeps its own tally and adds it to the shared counter once it
//! passes 16 KiB either way: one shared counter touched by every allocation
//! cost 5% of a one-thread run and made two threads wait on each other's
//! cache line. A thread's tally is also added when the thread ends (the
//! planner starts threads per chunk: a thousand or more at a million rows,
//! whose leftover tallies would otherwise be lost). Bytes in use are therefore
//! known to within 16 KiB per running thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

const TALLY: isize = 16 << 10;

/// A thread's tally, added to the shared counter when the thread ends.
struct Local(std::cell::Cell<isize>);

impl Drop for Local {
    fn drop(&mut self) {
        apply(self.0.replace(0));
    }
}

thread_local!(static LOCAL: Local = const { Local(std::cell::Cell::new(0)) });

/// Adds `delta` to this thread's tally, and the tally to the shared
/// counter when it passes `TALLY` (straight to the counter once the
/// thread's tally is gone, as the thread ends).
fn tally(delta: isize) {
    let pending = LOCAL
        .try_with(|l| {
            let v = l.0.get() + delta;
            if v.abs() >= TALLY {
                l.0.set(0);
                v
            } else {
                l.0.set(v);
                0
            }
        })
        .unwrap_or(delta);
    apply(pending);
}

/// Adds `pending` bytes (taken away if negative) to the shared counter.
fn apply(pending: isize) {
    if pending > 0 {
        grew(pending.unsigned_abs());
    } else if pending < 0 {
        CURRENT.fetch_sub(pending.unsigned_abs(), Ordering::Relaxed);
    }
}

// With tracing on (`trace_peaks`), the stack of the allocation that last
// raised the peak (by a MiB or more) is kept, and printed by
// `print_peak_trace`: where the peak heap is reached.
static TRACE: AtomicBool = AtomicBool::new(false);
static TRACED: AtomicUsize = AtomicUsize::new(0);
type Traced = Option<(usize, std::backtrace::Backtrace)>;
static TRACE_AT: std::sync::Mutex<Traced> = std::sync::Mutex::new(None);
thread_local!(static IN_TRACE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });

/// Keeps the stack of this allocation (never from inside itself).
fn trace_peak(now: usize) {
    if now > TRACED.load(Ordering::Relaxed) + (1 << 20) && !IN_TRACE.with(|c| c.replace(true)) {
        TRACED.store(now, Ordering::Relaxed);
        // Captured unresolved: resolving reads debug info (tens of MB).
        let bt = std::backtrace::Backtrace::force_capture();
        if let Ok(mut at) = TRACE_AT.lock() {
            *at = Some((now, bt));
        }
        IN_TRACE.with(|c| c.set(false));
    }
}

/// With `on`, keeps the stack of each allocation that raises the peak by a
/// MiB or more above what is in use now; without, stops keeping them.
pub fn trace_peaks(on: bool) {
    if on {
        TRACED.store(CURRENT.load(Ordering::Relaxed), Ordering::Relaxed);
    }
    TRACE.store(on, Ordering::Relaxed);
}

/// Prints the last kept stack's frames in this crate and the bench; `what`
/// names the window it was kept in.
pub fn print_peak_trace(what: &str) {
    let Some((bytes, bt)) = TRACE_AT.lock().ok().and_then(|mut t| t.take()) else {
        return;
    };
    eprintln!("{what}'s peak heap reached near {bytes} bytes in use, at:");
    // Frames from the allocator up, to `main`; source lines in the crate
    // and the bench only.
    let text = bt.to_string();
    let mut frames = text
        .lines()
        .skip_while(|l| !l.contains("__rust_alloc") && !l.contains("__rust_realloc"));
    for line in frames.by_ref() {
        if line.trim_start().starts_with("at ") {
            if line.contains("/src/") || line.contains("benches/") {
                eprintln!("{line}");
            }
        } else {
            eprintln!("{line}");
            if line.ends_with(": main") || line.ends_with("::main") {
                break;
            }
        }
    }
}

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
    if now > PEAK.load(Ordering::Relaxed) {
        PEAK.fetch_max(now, Ordering::Relaxed);
        if TRACE.load(Ordering::Relaxed) {
            trace_peak(now);
        }
    }
}

// SAFETY: every method forwards to `System` with the same arguments and only
// adds bookkeeping on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            tally(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            tally(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        tally(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` is checked by the caller.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                tally((new_size - layout.size()) as isize);
            } else {
                tally(-((layout.size() - new_size) as isize));
            }
        }
        p
    }
}

/// Starts a heap window: the peak is reset to what is in use now.
pub fn heap_mark() -> usize {
    let now = CURRENT.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// Peak bytes in use since `mark` above what was in use at `mark`, and the
/// bytes still held now above `mark`.
pub fn heap_since(mark: usize) -> (usize, isize) {
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(mark);
    let held = CURRENT.load(Ordering::Relaxed) as isize - mark as isize;
    (peak, held)
}

/// Makes the system allocator settle the small blocks freed before a step
/// (the generator's data, the previous step's result) before the step's
/// clock starts. glibc keeps freed small blocks in "fast bins" and merges
/// them all at the next request of 1 KiB or more: without this, whichever
/// step happens to make the first large request pays for every free that
/// came before it (up to a third of `validate`'s time at 300k rows, in
/// `Vec::with_capacity`). Each step still pays for the frees it makes itself.
pub fn settle_allocator() {
    // 64 KiB: above the fast-bin sizes, below the mmap threshold, so it is
    // served from the heap and triggers the merge.
    drop(black_box(Vec::<u8>::with_capacity(64 * 1024)));
}
