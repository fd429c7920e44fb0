//! Planning in chunks: what one chunk's planning decides, kept apart from
//! the planner so a chunk can be planned on other threads while the next
//! chunk's users are fetched.

use crate::issue::Issue;
use crate::record::User;
use crate::store::ExistingUser;

use super::*;

/// What planning one chunk of rows decided, kept apart from the planner
/// so a chunk can be planned while the next one's users are fetched.
#[derive(Default)]
pub(super) struct ChunkOut {
    /// (row, its disposition).
    pub(super) disp: Vec<(u32, Disp)>,
    pub(super) issues: Vec<Issue>,
    pub(super) targets: Vec<(u64, u32)>,
    pub(super) pending_reports: Vec<(usize, String)>,
    /// What the rows the chunk does not create keep (see `release_rows`).
    pub(super) slim: Vec<(u32, User)>,
    /// The directory users the chunk deletes, whole.
    pub(super) removed: Vec<ExistingUser>,
}

impl ChunkOut {
    pub(super) fn set(&mut self, row: usize, disp: Disp) {
        self.disp.push((row as u32, disp));
    }

    /// Row `row` resolved to the directory user `user_id`.
    pub(super) fn note_target(&mut self, row: usize, user_id: &str) {
        self.targets.push((crate::index::hash(user_id), row as u32));
    }
}

/// One chunk's rows, planned in blocks by whichever thread is free: the
/// threads beside the caller start at once, and the caller joins in once it
/// has fetched the next chunk's users, so neither idles while the other
/// works (the store may answer in a moment or take longer than the
/// planning). Each block's result is kept with its number, and the blocks
/// are merged in row order: the plan is the one a single thread makes.
pub(super) struct SharedChunk<'a> {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) block: usize,
    pub(super) users: &'a [ExistingUser],
    pub(super) deletes: bool,
    /// The chunk's users, indexed once by the first thread to need them
    /// (the others wait for it).
    pub(super) dir: std::sync::OnceLock<Dir<'a>>,
    /// The next block to plan.
    pub(super) next: std::sync::atomic::AtomicUsize,
}

impl<'a> SharedChunk<'a> {
    pub(super) fn new(
        planner: &Planner,
        start: usize,
        end: usize,
        users: &'a [ExistingUser],
    ) -> SharedChunk<'a> {
        SharedChunk {
            start,
            end,
            // A sixteenth of the chunk, but no fewer rows than the table says.
            block: (end - start)
                .div_ceil(16)
                .max(crate::par::from::CHUNK_BLOCK_ROWS),
            users,
            deletes: planner.has_deletes(start, end),
            dir: std::sync::OnceLock::new(),
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// How many blocks the chunk is cut into.
    pub(super) fn blocks(&self) -> usize {
        (self.end - self.start).div_ceil(self.block)
    }

    /// Plans blocks until none is left: (block number, what it came to).
    pub(super) fn work(&self, planner: &Planner) -> Vec<(usize, ChunkOut)> {
        let mut done = Vec::new();
        loop {
            let b = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let from = b.saturating_mul(self.block).saturating_add(self.start);
            if from >= self.end {
                return done;
            }
            let dir = self.dir.get_or_init(|| Dir::new(self.users, self.deletes));
            let to = from.saturating_add(self.block).min(self.end);
            done.push((b, planner.plan_rows(from, to, dir)));
        }
    }
}

/// Writes normalized values over a vector's strings in order, reusing
/// their buffers; `finish` drops the strings left over.
pub(super) struct Refill<'a> {
    pub(super) values: &'a mut Vec<String>,
    pub(super) used: usize,
}

impl<'a> Refill<'a> {
    pub(super) fn new(values: &'a mut Vec<String>) -> Refill<'a> {
        Refill { values, used: 0 }
    }

    pub(super) fn push(&mut self, value: &str) {
        match self.values.get_mut(self.used) {
            Some(s) => crate::matching::normalize_into(value, s),
            None => {
                // Room for most ids and emails, so that the next chunks'
                // values rarely need to grow the buffer.
                let mut s = String::with_capacity(value.len().max(48));
                crate::matching::normalize_into(value, &mut s);
                self.values.push(s);
            }
        }
        self.used += 1;
    }

    pub(super) fn finish(self) {
        self.values.truncate(self.used);
    }
}

/// A chunk whose users have come and whose planning waits: it is planned
/// while the next chunk's users are asked for (see [`Ahead`]), or by the
/// planner itself when nothing is asked beside it.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) users: Vec<ExistingUser>,
    /// What planning it came to, once done beside a request.
    pub(super) planned: Option<Planned>,
}

/// What a held chunk's blocks came to: (block number, its planning).
#[derive(Debug, Default)]
pub(crate) struct Planned(Vec<(usize, ChunkOut)>);

impl std::fmt::Debug for ChunkOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkOut")
            .field("rows", &self.disp.len())
            .finish_non_exhaustive()
    }
}

/// The planning a driver can do while it answers the planner's request:
/// the held chunk's rows, planned by the threads beside the caller while
/// the caller answers, then by the caller too. The planner does no I/O: a
/// driver that answers requests one by one never needs this (answering
/// plans the chunk), and one with threads to spare overlaps the two.
pub(crate) struct Ahead<'a> {
    planner: &'a Planner,
    shared: SharedChunk<'a>,
}

impl Ahead<'_> {
    /// Runs `answer` on this thread while the chunk is planned beside it,
    /// then helps to plan what is left: `answer`'s result and the chunk's
    /// planning, for [`Planner::planned`].
    pub(crate) fn beside<T>(self, answer: impl FnOnce() -> T) -> (T, Planned) {
        let helpers = self.planner.threads.clamp(2, 16) - 1;
        let (planner, shared) = (self.planner, &self.shared);
        let work = || shared.work(planner);
        let (answer, outs) = crate::par::beside(helpers.min(shared.blocks()), work, answer);
        (answer, Planned(outs.into_iter().flatten().collect()))
    }
}

impl Planner {
    /// Whether chunks are planned while the next chunk's users are asked
    /// for: the caller allows more than one thread and the file has more
    /// than one chunk of rows, each large enough that starting threads per
    /// chunk pays.
    /// Only a driver that plans ahead ([`Planner::plan_ahead`]) gets held
    /// chunks: any other answers requests one by one, as it always has.
    pub(super) fn overlaps(&self) -> bool {
        let batch = self.profile.batch_size.max(1);
        self.ahead_driver
            && self.threads > 1
            && batch >= crate::par::from::OVERLAP_BATCH
            && self.v.rows.len() > batch
    }

    /// The driver will plan held chunks beside its requests ([`Planner::ahead`]).
    pub(crate) fn plan_ahead(&mut self) {
        self.ahead_driver = true;
    }

    /// The planning to do while the request just polled is answered (a
    /// held chunk not yet planned), if any.
    ///
    /// The plan is the one the request-by-request protocol makes: a chunk
    /// reads only the rows, the indexes and its own users, and what it
    /// decides is merged in file order. Only the order of the store's
    /// calls differs (the next chunk's users are asked for before the
    /// reports of this chunk's deletes found by email).
    pub(crate) fn ahead(&self) -> Option<Ahead<'_>> {
        let held = self.held.as_ref().filter(|h| h.planned.is_none())?;
        Some(Ahead {
            planner: self,
            shared: SharedChunk::new(self, held.start, held.end, &held.users),
        })
    }

    /// Records what [`Ahead::beside`] planned, before the answer is given.
    pub(crate) fn planned(&mut self, planned: Planned) {
        if let Some(held) = &mut self.held {
            held.planned = Some(planned);
        }
    }

    /// A chunk's users have come: planned now, or held to be planned
    /// beside the next chunk's request (the chunk held before is merged
    /// first).
    pub(super) fn received(&mut self, rows: std::ops::Range<usize>, users: Vec<ExistingUser>) {
        let (start, end) = (rows.start, rows.end);
        if !self.overlaps() {
            let out = self.plan_chunk(start, end, &users);
            self.merge(out, &mut Vec::new());
            self.cursor = end;
            return;
        }
        self.settle();
        self.held = Some(Held {
            start,
            end,
            users,
            planned: None,
        });
    }

    /// Merges the held chunk, planning it first (on the threads allowed)
    /// if nothing planned it beside a request.
    pub(super) fn settle(&mut self) {
        if let Some(planned) = self.ahead().map(|a| a.beside(|| ()).1) {
            self.planned(planned);
        }
        let Some(held) = self.held.take() else {
            return;
        };
        // In row order, as one thread makes them (the reports asked for
        // next list their managers in that order).
        let Planned(mut outs) = held.planned.unwrap_or_default();
        outs.sort_unstable_by_key(|o| o.0);
        let mut old = Vec::new();
        for (_, out) in outs {
            self.merge(out, &mut old);
        }
        self.cursor = held.end;
        // The chunk's users (read in by this thread) and the row values the
        // plan no longer needs are dropped here, while no thread plans
        // beside this one, rather than by a planning thread while this one
        // reads the next chunk's users: memory freed by one thread while
        // another allocates from the same allocator arena makes both wait
        // on its lock.
        drop(old);
        drop(held.users);
    }
}
