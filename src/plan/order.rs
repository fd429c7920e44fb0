//! The order of operations: the edges between rows (`checks`) sort the ops
//! topologically (j's op before i's) with a deterministic tie-break — kind
//! (roles, creates, updates, deletes), then normalized user id — so the plan
//! does not depend on the order of unrelated rows.

use super::Notice;
use crate::matching::{cmp_ids, id_prefix};
use crate::store::Op;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The ops of a plan before they are ordered, each with its kind (0 roles,
/// 1 creates, 2 updates, 3 deletes), the first part of its sort key; the
/// second is its normalized user id. Kept as two arrays so the ops can be
/// put in order in place (no second array of a million ops).
#[derive(Default)]
pub(super) struct Pending {
    pub(super) ranks: Vec<u8>,
    pub(super) ops: Vec<Op>,
}

impl Pending {
    pub(super) fn reserve_exact(&mut self, more: usize) {
        self.ranks.reserve_exact(more);
        self.ops.reserve_exact(more);
    }

    pub(super) fn push(&mut self, rank: u8, op: Op) {
        self.ranks.push(rank);
        self.ops.push(op);
    }

    pub(super) fn len(&self) -> usize {
        self.ops.len()
    }

    pub(super) fn id(&self, k: usize) -> &str {
        self.ops[k].user_id().unwrap_or("")
    }

    /// The ops in `order` (a permutation of their indexes), rearranged in
    /// place by following its cycles.
    pub(super) fn into_ordered(self, order: &[u32]) -> Vec<Op> {
        let mut ops = self.ops;
        permute(&mut ops, order);
        ops
    }
}

/// Puts `items[order[p]]` at `p` for every `p` (`order` is a permutation of
/// the indexes), in place, by following its cycles: one swap per item.
pub(super) fn permute<T>(items: &mut [T], order: &[u32]) {
    debug_assert_eq!(order.len(), items.len());
    let mut done = vec![false; order.len()];
    for start in 0..order.len() {
        if done[start] {
            continue;
        }
        let mut p = start;
        done[p] = true;
        loop {
            let from = order[p] as usize;
            if from == start || done[from] {
                break;
            }
            items.swap(p, from);
            done[from] = true;
            p = from;
        }
    }
}

/// Welcome notices by normalized user id; notices about one id keep their
/// file order.
pub(crate) fn sort_notices(notices: &mut [Notice]) {
    let mut keyed: Vec<((u64, u64), u32)> = notices
        .iter()
        .enumerate()
        .map(|(i, n)| (id_prefix(0, &n.user_id), i as u32))
        .collect();
    keyed.sort_unstable_by(|&(pa, a), &(pb, b)| {
        pa.cmp(&pb)
            .then_with(|| cmp_ids(&notices[a as usize].user_id, &notices[b as usize].user_id))
            .then(a.cmp(&b))
    });
    let order: Vec<u32> = keyed.into_iter().map(|(_, i)| i).collect();
    permute(notices, &order);
}

/// The ops `range` in key order: (rank, normalized id), then place.
///
/// Sorted by (rank, the first 15 bytes of the normalized id) first, as two
/// integers: ids that share a surname and an initial ("jgarcia…") still
/// differ there, and only ties compare whole ids. The prefix is taken from
/// the normalized id, zero-padded, so that it orders exactly as `cmp_ids`
/// does (a shorter id sorts first; equal prefixes fall through).
pub(super) fn key_order(
    items: &Pending,
    range: std::ops::Range<usize>,
    threads: usize,
    parallel_from: usize,
) -> Vec<u32> {
    // The prefix as four 4-byte words beside the place: 20 bytes, not 24,
    // and the sorted array becomes the places where it lies (same
    // alignment), with no second array beside it.
    type Keyed = ([u32; 4], u32);
    let prefix = |k: usize| {
        let (hi, lo) = id_prefix(items.ranks[k], items.id(k));
        [(hi >> 32) as u32, hi as u32, (lo >> 32) as u32, lo as u32]
    };
    // The words, most significant first, compare as the two integers do.
    let cmp = |(pa, a): &Keyed, (pb, b): &Keyed| {
        pa.cmp(pb)
            .then_with(|| cmp_ids(items.id(*a as usize), items.id(*b as usize)))
            .then(a.cmp(b))
    };
    if threads < 2 || range.len() < parallel_from.max(2) {
        let mut v: Vec<Keyed> = range.map(|k| (prefix(k), k as u32)).collect();
        v.sort_unstable_by(cmp);
        return places(v);
    }
    // Two threads work out the keys of half the ops each (in op order: the
    // ops and their ids are read front to back); the keys are split at
    // their median (every key is distinct: the place breaks ties), and each
    // thread sorts one side. The lower side sorted, then the upper, is the
    // order one sort gives. (Merging two sorted halves instead would read
    // the ops again in key order, jumping all over memory.)
    let len = range.len();
    let mut v: Vec<Keyed> = vec![([0; 4], 0); len];
    let (low, high) = v.split_at_mut(len / 2);
    let fill = |part: &mut [Keyed], from: usize| {
        for (i, slot) in part.iter_mut().enumerate() {
            let k = from + i;
            *slot = (prefix(k), k as u32);
        }
    };
    let high_from = range.start + low.len();
    crate::par::join(|| fill(high, high_from), || fill(low, range.start));
    let mid = len / 2;
    v.select_nth_unstable_by(mid, cmp);
    let (low, high) = v.split_at_mut(mid);
    crate::par::join(|| high.sort_unstable_by(cmp), || low.sort_unstable_by(cmp));
    places(v)
}

/// The places of sorted keys, in the keys' array (trimmed to size).
pub(super) fn places<K>(keyed: Vec<(K, u32)>) -> Vec<u32> {
    let mut places: Vec<u32> = keyed.into_iter().map(|(_, k)| k).collect();
    places.shrink_to_fit();
    places
}

/// Kahn's algorithm: `before → after` edges respected, ties broken by
/// (rank, normalized id). Ops left in a cycle (which the checks rule out)
/// follow in key order.
pub(super) fn topological(items: &Pending, edges: Vec<(u32, u32)>, threads: usize) -> Vec<u32> {
    let n = items.len();
    let by_key = key_order(items, 0..n, threads, crate::par::from::KEY_ORDER_OPS);
    if edges.is_empty() {
        return by_key;
    }
    let mut place = vec![0u32; n];
    for (p, &k) in by_key.iter().enumerate() {
        place[k as usize] = p as u32;
    }
    // The edges as one array grouped by source (`out[start[a]..start[a + 1]]`
    // are a's successors): two allocations instead of one per op.
    let mut indegree = vec![0u32; n];
    let mut start = vec![0u32; n + 1];
    for &(a, b) in &edges {
        if a != b {
            start[a as usize + 1] += 1;
            indegree[b as usize] += 1;
        }
    }
    for k in 0..n {
        start[k + 1] += start[k];
    }
    let mut fill = start.clone();
    let mut out = vec![0u32; start[n] as usize];
    for &(a, b) in &edges {
        if a != b {
            let a = a as usize;
            out[fill[a] as usize] = b;
            fill[a] += 1;
        }
    }
    drop(fill);
    drop(edges);
    // The ready op that comes first in key order goes next. Ops that wait
    // for none are taken in key order straight from `by_key`; only those
    // freed by an edge go through a heap (by their place in key order), so
    // the heap holds a few, not every op.
    let waits: Vec<bool> = indegree.iter().map(|&d| d > 0).collect();
    let mut freed: BinaryHeap<Reverse<u32>> = BinaryHeap::new();
    let mut cursor = 0usize;
    let mut order = Vec::with_capacity(n);
    let mut placed = vec![false; n];
    loop {
        while cursor < n && waits[by_key[cursor] as usize] {
            cursor += 1;
        }
        let p = match freed.peek() {
            Some(&Reverse(f)) if cursor >= n || (f as usize) < cursor => {
                freed.pop();
                f as usize
            }
            _ if cursor < n => {
                cursor += 1;
                cursor - 1
            }
            _ => break,
        };
        let k = by_key[p];
        order.push(k);
        let k = k as usize;
        placed[k] = true;
        for &m in &out[start[k] as usize..start[k + 1] as usize] {
            let m = m as usize;
            indegree[m] -= 1;
            if indegree[m] == 0 {
                freed.push(Reverse(place[m]));
            }
        }
    }
    if order.len() < n {
        order.extend(by_key.iter().copied().filter(|&k| !placed[k as usize]));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::normalize;
    use crate::text::Text;

    fn items(list: &[(u8, &str)]) -> Pending {
        let mut p = Pending::default();
        for &(rank, id) in list {
            p.push(
                rank,
                Op::Delete {
                    line: None,
                    user_id: id.into(),
                    version: 0,
                },
            );
        }
        p
    }

    #[test]
    fn topological_order_breaks_ties_by_rank_then_id() {
        let items = items(&[(3, "a"), (1, "z"), (1, "b"), (2, "c")]);
        // z must come before b; a (a delete) before c (an update).
        let order = topological(&items, vec![(1, 2), (0, 3)], 1);
        assert_eq!(order, [1, 2, 0, 3]);
    }

    #[test]
    fn non_ascii_ids_order_as_normalized() {
        let items = items(&[(1, "Émile"), (1, "élise"), (1, "zed"), (1, "ÉMILE2")]);
        let order = topological(&items, Vec::new(), 1);
        let ids: Vec<&str> = order.iter().map(|&k| items.id(k as usize)).collect();
        assert_eq!(ids, ["zed", "élise", "Émile", "ÉMILE2"]);
    }

    #[test]
    fn the_order_is_rank_then_normalized_id_whatever_the_prefixes() {
        // Ids that share long prefixes, differ in case, are prefixes of
        // each other, are not ASCII, or are padded: the integer prefix must
        // never decide differently from a comparison of normalized ids.
        let stems = [
            "jgarcia",
            "jgarciamartinezlopez",
            "JGarciaMartinezLopez",
            "é",
            "É",
        ];
        let tails = ["", "1", "10", "2", "a", "B", " ", "\u{e9}", "\0"];
        let mut list: Vec<(u8, String)> = Vec::new();
        for (i, stem) in stems.iter().enumerate() {
            for (j, tail) in tails.iter().enumerate() {
                list.push((((i + j) % 3) as u8 + 1, format!(" {stem}{tail}")));
            }
        }
        let refs: Vec<(u8, &str)> = list.iter().map(|(r, id)| (*r, id.as_str())).collect();
        let items = items(&refs);
        let order = topological(&items, Vec::new(), 1);
        let mut want: Vec<u32> = (0..list.len() as u32).collect();
        want.sort_by_key(|&k| {
            let k = k as usize;
            (list[k].0, normalize(&list[k].1), k)
        });
        assert_eq!(order, want);
    }

    #[test]
    fn keys_split_at_their_median_and_sorted_apart_give_the_order_one_sort_gives() {
        // Ties on every level: equal ids (place decides), ids equal but for
        // case or padding, long shared prefixes, non-ASCII ids, all ranks.
        let stems = [
            "jgarcia",
            "JGarcia",
            "jgarciamartinezlopez",
            "é",
            "É",
            "zed",
        ];
        let tails = ["", "1", "10", " ", "\u{e9}", "a"];
        let mut list: Vec<(u8, String)> = Vec::new();
        for round in 0..4 {
            for (i, stem) in stems.iter().enumerate() {
                for (j, tail) in tails.iter().enumerate() {
                    list.push((((i + j + round) % 3) as u8 + 1, format!("{stem}{tail}")));
                }
            }
        }
        let refs: Vec<(u8, &str)> = list.iter().map(|(r, id)| (*r, id.as_str())).collect();
        let items = items(&refs);
        for end in [2, 3, 17, 64, list.len()] {
            let one = key_order(&items, 0..end, 1, 2);
            assert_eq!(key_order(&items, 0..end, 2, 2), one, "{end} ops");
            assert_eq!(one.len(), end);
        }
    }

    #[test]
    fn notices_are_ordered_by_normalized_id_and_keep_file_order_on_ties() {
        let ids = [
            "bob",
            "Bob",
            " bob",
            "ann",
            "Émile",
            "émile",
            "zed",
            "b",
            "bobby",
            "jgarciamartinezlopez2",
            "JGarciaMartinezLopez1",
            "ann",
            "",
        ];
        let notices: Vec<Notice> = ids
            .iter()
            .enumerate()
            .map(|(line, id)| Notice {
                line: line as u64,
                user_id: Text::from(*id),
                email: None,
                first_name: None,
                last_name: None,
            })
            .collect();
        let mut want = notices.clone();
        want.sort_by_cached_key(|n| normalize(&n.user_id));
        let mut got = notices;
        sort_notices(&mut got);
        let lines = |v: &[Notice]| v.iter().map(|n| n.line).collect::<Vec<_>>();
        assert_eq!(lines(&got), lines(&want));
    }

    #[test]
    fn a_long_chain_is_ordered_without_recursion() {
        let ids: Vec<String> = (0..100_000)
            .map(|i| format!("{:06}", 100_000 - i))
            .collect();
        let list: Vec<(u8, &str)> = ids.iter().map(|id| (1, id.as_str())).collect();
        let items = items(&list);
        let edges: Vec<(u32, u32)> = (1..items.len() as u32).map(|i| (i - 1, i)).collect();
        let order = topological(&items, edges, 1);
        assert!(order.iter().copied().eq(0..items.len() as u32));
    }

    #[test]
    fn the_next_op_is_always_the_first_ready_one_in_key_order() {
        // Against the definition, on small random graphs (some with cycles):
        // repeatedly take, among the ops whose prerequisites are all placed,
        // the first by (rank, normalized id); ops left on a cycle follow in
        // key order.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..500 {
            let n = 1 + next(24) as usize;
            let ids: Vec<String> = (0..n).map(|_| format!("u{}", next(40))).collect();
            let list: Vec<(u8, &str)> = ids
                .iter()
                .map(|id| (1 + next(3) as u8, id.as_str()))
                .collect();
            let items = items(&list);
            let edges: Vec<(u32, u32)> = (0..next(2 * n as u64))
                .map(|_| (next(n as u64) as u32, next(n as u64) as u32))
                .collect();
            let key = |k: usize| (list[k].0, normalize(list[k].1), k);
            let mut want = Vec::new();
            let mut placed = vec![false; n];
            loop {
                let ready = (0..n)
                    .filter(|&k| !placed[k])
                    .filter(|&k| {
                        edges
                            .iter()
                            .all(|&(a, b)| b as usize != k || a == b || placed[a as usize])
                    })
                    .min_by_key(|&k| key(k));
                let Some(k) = ready else { break };
                placed[k] = true;
                want.push(k);
            }
            let mut rest: Vec<usize> = (0..n).filter(|&k| !placed[k]).collect();
            rest.sort_by_key(|&k| key(k));
            want.extend(rest);
            let want: Vec<u32> = want.into_iter().map(|k| k as u32).collect();
            assert_eq!(
                topological(&items, edges.clone(), 1),
                want,
                "{list:?} {edges:?}"
            );
        }
    }

    #[test]
    fn ops_are_put_in_order_in_place() {
        // Every permutation of five ops (cycles of every length).
        let ids = ["a", "b", "c", "d", "e"];
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        let mut seen = 0;
        permutations(&mut order, 0, &mut |order| {
            seen += 1;
            let list: Vec<(u8, &str)> = ids.iter().map(|&id| (1, id)).collect();
            let ops = items(&list).into_ordered(order);
            let got: Vec<&str> = ops.iter().filter_map(Op::user_id).collect();
            let want: Vec<&str> = order.iter().map(|&k| ids[k as usize]).collect();
            assert_eq!(got, want, "order {order:?}");
        });
        assert_eq!(seen, 120);
    }

    fn permutations(v: &mut Vec<u32>, k: usize, f: &mut dyn FnMut(&[u32])) {
        if k == v.len() {
            f(v);
            return;
        }
        for i in k..v.len() {
            v.swap(k, i);
            permutations(v, k + 1, f);
            v.swap(k, i);
        }
    }
}
