//! Revoked token ids in certgate's own shape (16 bytes), in one flat open-addressing table of
//! 20-byte slots (the id and its token's expiry, Unix seconds as a `u32`) beside one tag byte
//! per slot (0: empty; else 7 bits of the id's hash). No allocation per id, no pointer per
//! id: 21 bytes a slot, 1,000,000 ids take 30–45 bytes each.
//!
//! - **Home slot**: a keyed hash of the id (SipHash-1-3 through std's `RandomState`, keys
//!   drawn at random per process), mapped onto the table by multiply-shift. certgate mints its
//!   ids from the system's random generator, so their own bytes would spread well; but ids
//!   also come in from elsewhere (`certgate revoke --jti` with whatever an operator pastes, the
//!   store another process writes, an id in a token handed in), and with an unkeyed hash
//!   chosen ids could be piled into one run of slots, making every insert and every lookup
//!   that lands there walk it (and an attacker who knows a few ids would know where they
//!   sit). With a secret key nobody can aim an id at a slot, so runs stay as short as for
//!   random ids whoever chose them. SipHash costs ~20 ns per check, small beside the rest of
//!   a check; a cheaper keyed mix would do for random ids but is not meant to hold against
//!   chosen ones.
//! - **Probing**: linear over the tags; a lookup stops at the id or at the first empty slot,
//!   and reads a slot only where its tag matches. The load stays at most 0.7 (on average
//!   about 2.2 tags read for an id held, 6 for one not held, contiguous), growing by half
//!   when it would pass that: between two growths the load is 0.47–0.7, 21 / load bytes per
//!   id.
//! - **Deletion** (pruning expired ids) shifts the rest of the run back (Knuth's algorithm R),
//!   so there are no tombstones and lookups never slow down with age.

use std::hash::{BuildHasher, Hasher, RandomState};

/// One slot: an id and when its token expires. `until == 0` marks an empty slot; a stored
/// expiry is at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    id: [u8; 16],
    until: u32,
}

const EMPTY: Slot = Slot {
    id: [0; 16],
    until: 0,
};

/// The load is kept at or under `MAX_LOAD_NUM / MAX_LOAD_DEN`.
const MAX_LOAD_NUM: usize = 7;
const MAX_LOAD_DEN: usize = 10;
const MIN_SLOTS: usize = 16;

/// An expiry as stored: Unix seconds up to 2106, clamped. Later ones are kept until 2106
/// (longer, never shorter); earlier than 1970 ones are already long expired.
fn stored(until: i64) -> u32 {
    u32::try_from(until.clamp(1, i64::from(u32::MAX))).unwrap_or(u32::MAX)
}

pub(super) struct IdTable {
    slots: Box<[Slot]>,
    /// One byte per slot: 0 for an empty slot, else the top bit and 7 bits of its id's hash.
    /// A lookup reads these (1 MB or two for a million ids, mostly in the cache) and a slot
    /// only where they match: an id not held, what nearly every check asks about, costs no
    /// miss in the slots at all.
    tags: Box<[u8]>,
    len: usize,
    keys: RandomState,
}

impl std::fmt::Debug for IdTable {
    /// Its size, not its million ids (nor its hash keys).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTable")
            .field("len", &self.len)
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Default for IdTable {
    fn default() -> Self {
        Self {
            slots: Box::default(),
            tags: Box::default(),
            len: 0,
            keys: RandomState::new(),
        }
    }
}

impl IdTable {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the table holds (its slots), whatever it holds in them.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots) + std::mem::size_of_val(&*self.tags)
    }

    /// The slot where a search for `id` starts (`slots` is not empty), and its tag.
    fn place(&self, id: &[u8; 16]) -> (usize, u8) {
        let mut h = self.keys.build_hasher();
        h.write(id);
        let h = h.finish();
        // Multiply-shift onto 0..len: the high bits of a 64×64 product (any table size).
        let n = self.slots.len() as u128;
        let home = ((u128::from(h) * n) >> 64) as usize;
        // The low 7 bits (the home took the high ones), and the top bit: never 0 (empty).
        (home, 0x80 | (h as u8 & 0x7f))
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    /// The slot holding `id`, or the empty slot that ends its run.
    fn find(&self, id: &[u8; 16]) -> (usize, bool) {
        let (home, tag) = self.place(id);
        self.find_from(home, tag, id)
    }

    /// [`Self::find`] from `id`'s home slot and tag, already known. Reads the tags, and a
    /// slot only where the tag matches (1 in 128 of the others).
    fn find_from(&self, mut i: usize, tag: u8, id: &[u8; 16]) -> (usize, bool) {
        loop {
            let Some(&t) = self.tags.get(i) else {
                // Unreachable: `i` stays below the length. Answer "not here" at slot 0.
                return (0, false);
            };
            if t == 0 {
                return (i, false);
            }
            if t == tag && self.slots.get(i).is_some_and(|s| s.id == *id) {
                return (i, true);
            }
            i = self.next(i);
        }
    }

    /// Whether `id` is held. Allocates nothing; reads a few contiguous slots.
    pub(super) fn contains(&self, id: &[u8; 16]) -> bool {
        !self.is_empty() && self.find(id).1
    }

    /// Holds `id` until `until` (the later of the two, if it was held already).
    pub(super) fn insert(&mut self, id: [u8; 16], until: i64) {
        if (self.len + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
            let grown = (self.slots.len() + self.slots.len() / 2).max(MIN_SLOTS);
            self.resize(grown);
        }
        let (home, tag) = self.place(&id);
        self.insert_from(home, tag, id, until);
    }

    /// [`Self::insert`] from `id`'s home slot and tag, in a table with room for one more.
    fn insert_from(&mut self, home: usize, tag: u8, id: [u8; 16], until: i64) {
        let until = stored(until);
        let (i, held) = self.find_from(home, tag, &id);
        let (Some(slot), Some(t)) = (self.slots.get_mut(i), self.tags.get_mut(i)) else {
            return;
        };
        if held {
            slot.until = slot.until.max(until);
        } else {
            *slot = Slot { id, until };
            *t = tag;
            self.len += 1;
        }
    }

    /// [`Self::insert`] for many ids (a read from the store). Each id's slot is a cache miss
    /// (a million ids are 20 MB or more, in no order); here the home slots of a group of ids
    /// are read first, one after another without waiting, so that their misses overlap, and
    /// the ids are then placed in slots already in the cache. A start with a million
    /// revocations spent most of its time on those misses one at a time.
    pub(super) fn insert_all(&mut self, ids: &[([u8; 16], i64)]) {
        const GROUP: usize = 32;
        for group in ids.chunks(GROUP) {
            // Room for the group (ids held already may be among them), by half as `insert`.
            self.reserve(group.len());
            let mut places = [(0usize, 0u8); GROUP];
            let mut touched = 0u32;
            for (place, (id, _)) in places.iter_mut().zip(group) {
                *place = self.place(id);
                touched ^= self.slots.get(place.0).map_or(0, |s| s.until);
                touched ^= self.tags.get(place.0).copied().map_or(0, u32::from);
            }
            std::hint::black_box(touched);
            for (&(home, tag), &(id, until)) in places.iter().zip(group) {
                self.insert_from(home, tag, id, until);
            }
        }
    }

    /// Makes room for `more` ids without growing in between (a load of many at once).
    pub(super) fn reserve(&mut self, more: usize) {
        let want = self.len.saturating_add(more).max(1);
        if want.saturating_mul(MAX_LOAD_DEN) > self.slots.len().saturating_mul(MAX_LOAD_NUM) {
            // Room for `want` at the maximum load, and at least as much as growing by half
            // gives (a few more ids at a time never resize the table each time).
            let slots = want.saturating_mul(MAX_LOAD_DEN) / MAX_LOAD_NUM + 1;
            let grown = self.slots.len() + self.slots.len() / 2;
            self.resize(slots.max(grown).max(MIN_SLOTS));
        }
    }

    /// Moves every id into a table of `slots` slots (more than the ids).
    fn resize(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; slots].into_boxed_slice());
        self.tags = vec![0; slots].into_boxed_slice();
        self.len = 0;
        for slot in old.iter().filter(|s| s.until != 0) {
            let (home, tag) = self.place(&slot.id);
            let (i, _) = self.find_from(home, tag, &slot.id);
            if let (Some(free), Some(t)) = (self.slots.get_mut(i), self.tags.get_mut(i)) {
                *free = *slot;
                *t = tag;
                self.len += 1;
            }
        }
    }

    /// Forgets every id for which `dead(until)`; returns how many. Shrinks the table when that
    /// left it under a third full (a table made room for ids about to come stays).
    pub(super) fn retain_live(&mut self, dead: impl Fn(i64) -> bool) -> usize {
        let before = self.len;
        let mut i = 0;
        while i < self.slots.len() {
            match self.slots.get(i).copied() {
                Some(slot) if slot.until != 0 && dead(i64::from(slot.until)) => self.remove_at(i),
                // The slot now holds the next of its run (or nothing): look at it again.
                _ => i += 1,
            }
        }
        if before > self.len && self.len * MAX_LOAD_DEN * 9 < self.slots.len() * MAX_LOAD_NUM * 4 {
            // Back to the load growing leaves (0.47).
            let slots = (self.len * MAX_LOAD_DEN * 3 / (MAX_LOAD_NUM * 2)).max(MIN_SLOTS);
            if slots < self.slots.len() {
                self.resize(slots);
            }
        }
        before - self.len
    }

    /// Empties slot `hole` and shifts back the ids after it in its run that may move there
    /// (each one whose home is not between the hole and where it is), repeating for the slot
    /// each one leaves: every id stays reachable from its home without a gap.
    fn remove_at(&mut self, mut hole: usize) {
        let mut j = hole;
        loop {
            j = self.next(j);
            let (Some(&slot), Some(&tag)) = (self.slots.get(j), self.tags.get(j)) else {
                break;
            };
            if tag == 0 {
                break;
            }
            let (home, _) = self.place(&slot.id);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                if let (Some(h), Some(t)) = (self.slots.get_mut(hole), self.tags.get_mut(hole)) {
                    *h = slot;
                    *t = tag;
                }
                hole = j;
            }
        }
        if let (Some(h), Some(t)) = (self.slots.get_mut(hole), self.tags.get_mut(hole)) {
            *h = EMPTY;
            *t = 0;
            self.len -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic stand-ins for random ids (splitmix64).
    fn ids(seed: u64) -> impl Iterator<Item = [u8; 16]> {
        let mut s = seed;
        std::iter::from_fn(move || {
            let mut half = || {
                s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            };
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&half().to_le_bytes());
            id[8..].copy_from_slice(&half().to_le_bytes());
            Some(id)
        })
    }

    #[test]
    fn a_million_ids_take_at_most_48_bytes_each_and_are_all_found() {
        const N: usize = 1_000_000;
        let mut t = IdTable::default();
        for id in ids(1).take(N) {
            t.insert(id, 2_000_000_000);
        }
        assert_eq!(t.len(), N);
        let per_id = t.bytes() as f64 / N as f64;
        assert!(per_id <= 48.0, "{per_id:.1} bytes per id");
        eprintln!(
            "{N} ids: {} slots of {} bytes and a tag byte, {per_id:.1} bytes per id",
            t.slots.len(),
            std::mem::size_of::<Slot>()
        );
        assert!(ids(1).take(N).all(|id| t.contains(&id)));
        assert!(
            ids(2).take(100_000).all(|id| !t.contains(&id)),
            "others are not"
        );
    }

    #[test]
    fn bytes_per_id_stay_under_48_at_every_size_past_a_few() {
        let mut t = IdTable::default();
        for (n, id) in ids(3).take(200_000).enumerate() {
            t.insert(id, 5);
            let n = n + 1;
            if n >= 64 {
                assert!(t.bytes() <= 48 * n, "{} bytes for {n} ids", t.bytes());
            }
        }
    }

    #[test]
    fn the_later_expiry_is_kept_and_expired_ids_are_pruned_without_losing_the_rest() {
        let mut t = IdTable::default();
        let all: Vec<[u8; 16]> = ids(4).take(50_000).collect();
        for (n, id) in all.iter().enumerate() {
            t.insert(*id, if n % 3 == 0 { 100 } else { 200 });
        }
        // Inserting again keeps the later of the two expiries.
        t.insert(all[0], 300);
        t.insert(all[1], 50);
        assert_eq!(t.len(), all.len());
        let dropped = t.retain_live(|until| until <= 100);
        assert_eq!(
            dropped,
            all.len().div_ceil(3) - 1,
            "all[0] now lives to 300"
        );
        for (n, id) in all.iter().enumerate() {
            assert_eq!(t.contains(id), n == 0 || n % 3 != 0, "id {n}");
        }
        // Everything but all[0] goes; the table shrinks and still finds it.
        let big = t.bytes();
        t.retain_live(|until| until <= 200);
        assert_eq!(t.len(), 1);
        assert!(t.contains(&all[0]) && !t.contains(&all[1]));
        assert!(t.bytes() < big, "shrunk from {big} bytes");
        t.retain_live(|_| true);
        assert!(t.is_empty() && !t.contains(&all[0]));
    }

    #[test]
    fn pruning_keeps_runs_that_wrap_past_the_end_reachable() {
        // A small table, nearly full, pruned again and again: runs wrap around its end.
        for round in 0..200u64 {
            let mut t = IdTable::default();
            let all: Vec<[u8; 16]> = ids(1000 + round).take(11).collect();
            for (n, id) in all.iter().enumerate() {
                t.insert(*id, 1 + (n as i64 % 4));
            }
            assert_eq!(t.slots.len(), MIN_SLOTS);
            for gone in 1..=4 {
                t.retain_live(|until| until <= gone);
                for (n, id) in all.iter().enumerate() {
                    assert_eq!(t.contains(id), (n as i64 % 4) + 1 > gone, "round {round}");
                }
            }
        }
    }

    #[test]
    fn room_made_for_a_load_is_kept_until_it_is_used() {
        let mut t = IdTable::default();
        t.reserve(1_000);
        let slots = t.slots.len();
        assert!(
            slots * MAX_LOAD_NUM >= 1_000 * MAX_LOAD_DEN,
            "{slots} slots"
        );
        assert_eq!(t.retain_live(|_| true), 0);
        assert_eq!(t.slots.len(), slots, "pruning nothing does not shrink it");
        for id in ids(5).take(1_000) {
            t.insert(id, 10);
        }
        assert_eq!(t.slots.len(), slots, "no growing on the way");
        assert!(ids(5).take(1_000).all(|id| t.contains(&id)));
    }

    #[test]
    fn ids_inserted_in_groups_are_found_and_the_table_grows_by_half_not_by_the_group() {
        let all: Vec<([u8; 16], i64)> = ids(6).take(100_000).map(|id| (id, 7)).collect();
        let mut t = IdTable::default();
        let mut resizes = 0;
        for group in all.chunks(3) {
            let before = t.slots.len();
            t.insert_all(group);
            resizes += usize::from(t.slots.len() != before);
        }
        // Again, with later expiries: nothing new.
        t.insert_all(&all.iter().map(|&(id, _)| (id, 9)).collect::<Vec<_>>());
        assert_eq!(t.len(), all.len());
        assert!(resizes < 30, "{resizes} resizes");
        assert!(all.iter().all(|(id, _)| t.contains(id)));
        assert_eq!(t.retain_live(|until| until <= 7), 0, "all kept to 9");
        assert!(t.bytes() <= 48 * all.len());
    }

    #[test]
    fn expiries_outside_u32_are_clamped_to_keep_longer() {
        assert_eq!(stored(-5), 1);
        assert_eq!(stored(0), 1);
        assert_eq!(stored(1_900_000_000), 1_900_000_000);
        assert_eq!(stored(i64::MAX), u32::MAX);
    }
}
