//! The one hashed index: items (rows of the file, users of the directory)
//! found by the normalized value of one of their fields, without a string
//! allocated per item or per lookup.
//!
//! An index is one `u64` per item: the top 32 bits of the value's hash
//! (under the matching policy, [`crate::matching::key_hash`]) above the
//! item's number, sorted. Equal hashes are always confirmed by comparing
//! the values under the matching policy, so 32 bits are enough (even in a
//! large file few pairs of items share one), and an item costs 8 bytes
//! whatever the length of its value. A directory of where each run of
//! hashes with the same top bits starts (one `u32` per four items) turns a
//! lookup into one or two cache lines, where a binary search of a large
//! index misses the cache at nearly every step.

use crate::matching::{key_hash, normalize, same};

/// The seed of every hash the crate's lookups compare.
const SEED: u64 = 0x005e_ed0f;

/// The hash of a value's normalized form: equal for values the matching
/// policy calls the same. Compared within one process only, never stored.
pub(crate) fn hash(value: &str) -> u64 {
    key_hash(SEED, value)
}

/// The part of a hash an index keeps.
fn short(value: &str) -> u64 {
    hash(value) >> 32
}

/// The directory bucket of a short hash: its top `bits` bits (`bits` ≥ 1).
fn bucket(short: u64, bits: u32) -> u64 {
    short >> (32 - bits)
}

/// The item an entry stands for.
fn item(entry: u64) -> usize {
    entry as u32 as usize
}

/// The first place in `s` where `pred` (true, then false along `s`) is
/// false, searched from the front in steps that double: the place is
/// usually a step or two ahead, where a binary search of the whole slice
/// would read it all over.
pub(crate) fn gallop(s: &[u64], pred: impl Fn(u64) -> bool) -> usize {
    let mut hi = 1;
    while hi < s.len() && pred(s[hi]) {
        hi *= 2;
    }
    let lo = hi / 2;
    lo + s[lo..hi.min(s.len())].partition_point(|&e| pred(e))
}

/// Items indexed by the normalized value of one of their fields (see the
/// module's documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HashIndex {
    entries: Vec<u64>,
    /// The directory's bits: bucket `b` holds the hashes whose top `bits`
    /// bits are `b`, at `entries[starts[b]..starts[b + 1]]`.
    bits: u32,
    starts: Vec<u32>,
}

impl HashIndex {
    /// Indexes `items`: (item number, its value). A blank value is indexed
    /// as any other: callers leave blanks out where a blank must match
    /// nothing. Numbers beyond `u32` are left out.
    pub(crate) fn new<'a>(items: impl Iterator<Item = (usize, &'a str)>) -> HashIndex {
        let mut entries: Vec<u64> = items
            .filter_map(|(i, v)| Some(short(v) << 32 | u64::from(u32::try_from(i).ok()?)))
            .collect();
        entries.sort_unstable();
        HashIndex::from_sorted(entries)
    }

    fn from_sorted(entries: Vec<u64>) -> HashIndex {
        // About four entries a bucket; none for a small index.
        let bits = (entries.len() / 4).max(1).ilog2().min(30);
        let mut starts = Vec::new();
        if bits > 0 {
            starts.reserve_exact((1 << bits) + 1);
            let mut at = 0usize;
            for b in 0..1u64 << bits {
                while at < entries.len() && bucket(entries[at] >> 32, bits) < b {
                    at += 1;
                }
                starts.push(at as u32);
            }
            starts.push(entries.len() as u32);
        }
        HashIndex {
            entries,
            bits,
            starts,
        }
    }

    /// The entries that may hold short hash `h`: its bucket.
    fn candidates(&self, h: u64) -> &[u64] {
        if self.bits == 0 {
            return &self.entries;
        }
        let b = bucket(h, self.bits) as usize;
        match (self.starts.get(b), self.starts.get(b + 1)) {
            (Some(&from), Some(&to)) => &self.entries[from as usize..to as usize],
            _ => &[],
        }
    }

    /// The entries whose hash equals `value`'s: every item with that value,
    /// and rarely others.
    fn same_hash(&self, value: &str) -> &[u64] {
        let h = short(value);
        let candidates = self.candidates(h);
        let start = candidates.partition_point(|&e| e >> 32 < h);
        let len = candidates[start..].partition_point(|&e| e >> 32 == h);
        &candidates[start..start + len]
    }

    /// The items sharing `value`'s hash, as [`HashIndex::join`] gives them.
    #[cfg(test)]
    pub(crate) fn candidates_of(&self, value: &str) -> Candidates<'_> {
        Candidates(self.same_hash(value))
    }

    /// The items whose value (`value_of`) is the same as `value` under the
    /// matching policy, in item order.
    pub(crate) fn find<'s, 'r: 's, V>(
        &'s self,
        value: &'s str,
        value_of: V,
    ) -> impl Iterator<Item = usize> + 's
    where
        V: Fn(usize) -> Option<&'r str> + 's,
    {
        self.same_hash(value)
            .iter()
            .map(|&e| item(e))
            .filter(move |&i| value_of(i).is_some_and(|v| same(v, value)))
    }

    /// The one item whose value is `value`; `None` when no item or several
    /// have it. Looks at two matches at most, so a value repeated on a
    /// million items costs no more than a unique one.
    pub(crate) fn unique<'r>(
        &self,
        value: &str,
        value_of: impl Fn(usize) -> Option<&'r str>,
    ) -> Option<usize> {
        let mut found = self.find(value, value_of);
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }

    /// Groups of two or more items with the same value (each group sorted).
    pub(crate) fn duplicates<'a>(
        &self,
        value_of: impl Fn(usize) -> Option<&'a str>,
    ) -> Vec<Vec<usize>> {
        let mut groups = Vec::new();
        for run in self.entries.chunk_by(|a, b| a >> 32 == b >> 32) {
            if run.len() < 2 {
                continue;
            }
            // Same hash: split by actual value (collisions are rare).
            let mut run: Vec<(String, usize)> = run
                .iter()
                .map(|&e| (normalize(value_of(item(e)).unwrap_or("")), item(e)))
                .collect();
            run.sort();
            for group in run.chunk_by(|a, b| a.0 == b.0) {
                if group.len() > 1 {
                    groups.push(group.iter().map(|x| x.1).collect());
                }
            }
        }
        groups
    }

    /// The values of items `0..n` that `include` accepts, as the index
    /// keeps them (the short hash above the item), sorted: what
    /// [`HashIndex::join`] takes. With `threads` > 1, from
    /// [`crate::par::from::FILE_CHECK_ROWS`] items, the hashes are worked
    /// out and sorted on two threads.
    pub(crate) fn wanted<'a>(
        n: usize,
        value_of: impl Fn(usize) -> Option<&'a str> + Sync,
        include: impl Fn(usize) -> bool + Sync,
        threads: usize,
    ) -> Vec<u64> {
        let hashed = |items: std::ops::Range<usize>| -> Vec<u64> {
            items
                .filter(|&i| include(i))
                .filter_map(|i| {
                    let v = value_of(i)?;
                    Some(short(v) << 32 | u64::from(u32::try_from(i).ok()?))
                })
                .collect()
        };
        if threads < 2 || n < crate::par::from::FILE_CHECK_ROWS {
            let mut wants = hashed(0..n);
            wants.sort_unstable();
            return wants;
        }
        let mid = n / 2;
        let (high, mut wants) = crate::par::join(|| hashed(mid..n), || hashed(0..mid));
        wants.extend(high);
        // Split at the median, each side sorted on its own thread.
        let at = wants.len() / 2;
        if at > 0 {
            wants.select_nth_unstable(at);
            let (low, high) = wants.split_at_mut(at);
            crate::par::join(|| high.sort_unstable(), || low.sort_unstable());
        }
        wants
    }

    /// For each of `n` items, what `link` makes of the item and the items
    /// sharing its wanted value's hash, for the items in `wants` (sorted,
    /// as [`HashIndex::wanted`] makes them; `None` for the others). `link`
    /// sees exactly the entries a lookup of the value would read: a merge
    /// of two sorted lists, where a lookup per item reads the index all
    /// over memory.
    pub(crate) fn join(
        &self,
        wants: &[u64],
        n: usize,
        mut link: impl FnMut(usize, Candidates<'_>) -> Option<u32>,
    ) -> Vec<Option<u32>> {
        let mut next = vec![None; n];
        let entries = &self.entries[..];
        let mut at = 0;
        for run in wants.chunk_by(|a, b| a >> 32 == b >> 32) {
            let h = run[0] >> 32;
            at += gallop(&entries[at..], |e| e >> 32 < h);
            let len = gallop(&entries[at..], |e| e >> 32 == h);
            let same = Candidates(&entries[at..at + len]);
            for &w in run {
                let i = item(w);
                if let Some(slot) = next.get_mut(i) {
                    *slot = link(i, same);
                }
            }
        }
        next
    }
}

/// The items that share a value's hash, as [`HashIndex::join`] gives them:
/// every item with the value, and rarely others.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidates<'a>(&'a [u64]);

impl Candidates<'_> {
    /// How many there are.
    pub(crate) fn len(self) -> usize {
        self.0.len()
    }

    /// The only one, if there is exactly one.
    pub(crate) fn only(self) -> Option<usize> {
        match self.0 {
            [one] => Some(item(*one)),
            _ => None,
        }
    }

    /// The items, in order.
    #[cfg(test)]
    pub(crate) fn items(self) -> impl Iterator<Item = usize> {
        self.0.iter().map(|&e| item(e))
    }
}

/// An index whose entries are `(value, item)` with the hashes given
/// (to make collisions).
#[cfg(test)]
pub(crate) fn colliding(entries: &[(&str, usize)]) -> HashIndex {
    let mut entries: Vec<u64> = entries
        .iter()
        .map(|&(v, i)| short(v) << 32 | i as u64)
        .collect();
    entries.sort_unstable();
    HashIndex::from_sorted(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_found_at_every_size() {
        for n in [0usize, 1, 3, 4, 7, 8, 9, 100, 1000, 5000] {
            let ids: Vec<String> = (0..n).map(|i| format!("User{i}")).collect();
            let value_of = |i: usize| ids.get(i).map(String::as_str);
            let index = HashIndex::new(ids.iter().map(String::as_str).enumerate());
            if n >= 8 {
                assert!(index.bits > 0, "{n} items get a directory");
            }
            for i in 0..n {
                let want = format!("user{i}");
                let found: Vec<usize> = index.find(&want, value_of).collect();
                assert_eq!(found, [i], "{n} items, looking for user{i}");
            }
            assert_eq!(index.find("nobody", value_of).count(), 0);
        }
    }

    #[test]
    fn items_with_one_value_come_in_item_order() {
        let values = ["a", "b", "A", "c", " a ", "B"];
        let value_of = |i: usize| values.get(i).copied();
        let index = HashIndex::new(values.iter().copied().enumerate());
        assert_eq!(index.find("a", value_of).collect::<Vec<_>>(), [0, 2, 4]);
        assert_eq!(index.find("B", value_of).collect::<Vec<_>>(), [1, 5]);
        assert_eq!(index.unique("c", value_of), Some(3));
        assert_eq!(index.unique("a", value_of), None, "several");
        // Groups come in the order of their hashes.
        let mut groups = index.duplicates(value_of);
        groups.sort();
        assert_eq!(groups, [vec![0, 2, 4], vec![1, 5]]);
    }

    /// Values that often match each other under the matching policy (case,
    /// white space, composed and decomposed accents).
    fn value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(
            prop::sample::select(vec!["a", "A", "b", " ", "e\u{301}", "\u{e9}", "\u{c9}"]),
            0..4,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        /// The index finds what comparing every item by the matching
        /// policy finds, in item order; its duplicate groups are the
        /// groups of equal values.
        #[test]
        fn the_index_agrees_with_a_scan_of_every_item(
            values in proptest::collection::vec(value(), 0..40),
            query in value(),
        ) {
            let value_of = |i: usize| values.get(i).map(String::as_str);
            let index = HashIndex::new(
                values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !v.trim().is_empty())
                    .map(|(i, v)| (i, v.as_str())),
            );
            let scan = |q: &str| -> Vec<usize> {
                (0..values.len())
                    .filter(|&i| !values[i].trim().is_empty() && same(&values[i], q))
                    .collect()
            };
            for q in values.iter().chain([&query]) {
                proptest::prop_assert_eq!(index.find(q, value_of).collect::<Vec<_>>(), scan(q));
            }
            let mut groups = index.duplicates(value_of);
            groups.sort();
            let mut want: Vec<Vec<usize>> = Vec::new();
            for (i, v) in values.iter().enumerate() {
                let group = scan(v);
                if group.len() > 1 && group[0] == i {
                    want.push(group);
                }
            }
            want.sort();
            proptest::prop_assert_eq!(groups, want);
        }
    }

    #[test]
    fn a_gallop_finds_what_a_binary_search_finds() {
        let s: Vec<u64> = (0..300u64).map(|k| k / 3 * 2).collect();
        for len in 0..s.len() {
            let s = &s[..len];
            for x in 0..205u64 {
                assert_eq!(
                    gallop(s, |e| e < x),
                    s.partition_point(|&e| e < x),
                    "{len} entries, below {x}"
                );
            }
        }
    }

    #[test]
    fn two_values_that_share_the_kept_bits() {
        // Used by the file checks' tests to make a collision.
        assert_eq!(short("m19307"), short("k18435"));
        assert_ne!(hash("m19307"), hash("k18435"));
        let index = colliding(&[("m19307", 0), ("k18435", 1)]);
        assert_eq!(index.same_hash("m19307").len(), 2);
    }
}
