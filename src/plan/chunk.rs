//! Planning in chunks: what one chunk's planning decides, kept apart from
//! the planner so a chunk can be planned on other threads while the next
//! chunk's users are fetched.

use crate::error::Error;
use crate::issue::Issue;
use crate::matching::key_hash;
use crate::record::User;
use crate::store::{ExistingUser, Fetch};

use super::*;

/// Answers a chunk's request, given the rows planned so far.
pub(crate) type FetchFn<'a> = dyn FnMut(&Fetch, u64) -> Result<Vec<ExistingUser>, Error> + 'a;

/// The smallest batch planned on other threads (threads are started per
/// chunk: for smaller chunks that costs more than it saves).
pub(super) const OVERLAP_MIN_BATCH: usize = 64;

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
}

impl ChunkOut {
    pub(super) fn set(&mut self, row: usize, disp: Disp) {
        self.disp.push((row as u32, disp));
    }

    /// Row `row` resolved to the directory user `user_id`.
    pub(super) fn note_target(&mut self, row: usize, user_id: &str) {
        self.targets
            .push((key_hash(TARGET_SEED, user_id), row as u32));
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
    /// The blocks of a chunk: a sixteenth of it, but no fewer than
    /// `MIN_BLOCK` rows.
    pub(super) const MIN_BLOCK: usize = 32;

    pub(super) fn new(
        planner: &Planner,
        start: usize,
        end: usize,
        users: &'a [ExistingUser],
    ) -> SharedChunk<'a> {
        SharedChunk {
            start,
            end,
            block: (end - start).div_ceil(16).max(SharedChunk::MIN_BLOCK),
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

impl Planner {
    /// Whether [`Planner::plan_rows_overlapped`] applies now: the rows are
    /// next, nothing is asked, the profile allows more than one thread and
    /// the file has more than one chunk of rows (large enough that starting
    /// threads per chunk pays).
    pub(crate) fn overlap_ready(&self) -> bool {
        let batch = self.profile.batch_size.max(1);
        self.stage == Stage::Rows
            && self.asked.is_none()
            && self.pending_reports.is_empty()
            && self.threads > 1
            && batch >= OVERLAP_MIN_BATCH
            && self.v.rows.len() - self.cursor > batch
    }

    /// Plans the remaining rows, chunk by chunk, planning each chunk on
    /// other threads while this one builds the next chunk's request and
    /// has `fetch` answer it (`fetch` is given the rows planned so far);
    /// then this thread plans what is left of the chunk beside them (see
    /// `SharedChunk`).
    /// The plan is the one the request-by-request protocol makes: a chunk
    /// reads only the rows, the indexes and its own users, and what it
    /// decides is merged in file order. Only the order of the store's
    /// calls differs (the next chunk's users are asked for before the
    /// reports of this chunk's deletes found by email).
    pub(crate) fn plan_rows_overlapped(&mut self, fetch: &mut FetchFn<'_>) -> Result<(), Error> {
        let n = self.v.rows.len();
        let batch = self.profile.batch_size.max(1);
        let mut spare = self.spare.take();
        // The chunk in hand: its rows and its users.
        let mut next: Option<(usize, usize, Vec<ExistingUser>)> = None;
        // The row values the last chunk let go: dropped on another thread.
        let mut old: Vec<User> = Vec::new();
        // The users fetched for the last chunk: dropped there too.
        let mut spent: Vec<ExistingUser> = Vec::new();
        // Threads beside this one, planning the chunk in hand.
        let helpers = self.threads.clamp(2, 16) - 1;
        while self.cursor < n {
            let (start, end, users) = match next.take() {
                Some(chunk) => chunk,
                None => {
                    let end = (self.cursor + batch).min(n);
                    let done = self.cursor as u64;
                    let users = self.fetch_chunk(self.cursor, end, &mut spare, fetch, done)?;
                    (self.cursor, end, users)
                }
            };
            let after = (end < n).then(|| (end, (end + batch).min(n)));
            let this = &*self;
            let let_go = (std::mem::take(&mut old), std::mem::take(&mut spent));
            let shared = SharedChunk::new(this, start, end, &users);
            // What the last chunk let go of is dropped by whichever thread
            // starts working first (a helper, as a rule), not between chunks.
            let let_go = std::sync::Mutex::new(Some(let_go));
            let work = || {
                drop(let_go.lock().ok().and_then(|mut l| l.take()));
                shared.work(this)
            };
            // The helpers plan blocks while this thread fetches the next
            // chunk's users; then this thread plans the blocks still left.
            let (ahead, outs) = crate::par::beside(helpers.min(shared.blocks()), work, || {
                after.map(|(s, e)| {
                    this.fetch_chunk(s, e, &mut spare, fetch, start as u64)
                        .map(|u| (s, e, u))
                })
            });
            let mut outs: Vec<_> = outs.into_iter().flatten().collect();
            drop(shared);
            spent = users;
            // In row order, as one thread makes them (the reports asked for
            // next list their managers in that order).
            outs.sort_unstable_by_key(|o| o.0);
            for (_, out) in outs {
                self.merge(out, &mut old);
            }
            self.cursor = end;
            self.chunk_end = end;
            // A cancel or a store error on the next chunk's request stops
            // here: `fetch` is not called again once it has failed.
            let ahead = ahead.transpose()?;
            if !self.pending_reports.is_empty() {
                let f = self.reports_fetch();
                let users = fetch(&f, end as u64)?;
                self.fill_reports(&users);
            }
            next = ahead;
        }
        self.spare = spare;
        Ok(())
    }

    /// The users of rows `start..end`, asked of `fetch` (with `done` rows
    /// planned) unless the rows need no lookup; the request is written over
    /// `spare` and kept there.
    pub(super) fn fetch_chunk(
        &self,
        start: usize,
        end: usize,
        spare: &mut Option<Fetch>,
        fetch: &mut FetchFn<'_>,
        done: u64,
    ) -> Result<Vec<ExistingUser>, Error> {
        let f = self.fetch_for(start, end, spare.take());
        let users = if f.is_empty() {
            Ok(Vec::new())
        } else {
            fetch(&f, done)
        };
        *spare = Some(f);
        users
    }
}
