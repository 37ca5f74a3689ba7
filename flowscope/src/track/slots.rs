//! Where the flows live: a slab of entries and an open-addressed index.
//!
//! A packet of an existing flow costs one probe of the index (8-byte
//! buckets, linear probing, at most half full, so the probe almost always
//! ends in the first cache line) and one visit to the flow's slot, which
//! holds key and state together. Nothing moves on a hit: no list to relink,
//! no node to allocate, which is what made the `lru` crate's boxed nodes and
//! their neighbours the tracker's main cost (three to four cache misses per
//! packet on 30 k flows). Which flow to evict is decided elsewhere (the
//! timeout queues know who has been idle longest).
//!
//! Slots are reused through a free list and carry a generation number, so a
//! timer entry can name a flow by `(slot, generation)` without holding its
//! key. The slab and the index only grow (doubling, amortised over flow
//! creations), up to the table's capacity.

use super::TrackedKey;

/// A slot's position in the slab.
pub(crate) type SlotId = u32;

/// One slot: the flow (key and state) while in use, and its generation.
#[derive(Debug)]
struct Slot<K, V> {
    /// Bumped every time the slot is given to a new flow.
    gen: u32,
    entry: Option<(K, V)>,
}

/// An index bucket: the low 32 bits of the key's hash and the slot + 1
/// (0 = empty bucket).
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    hash: u32,
    slot_plus_one: u32,
}

/// The slab and its index.
#[derive(Debug)]
pub(crate) struct FlowSlots<K, V> {
    slots: Vec<Slot<K, V>>,
    free: Vec<SlotId>,
    buckets: Vec<Bucket>,
    /// `buckets.len() - 1` (a power of two minus one).
    mask: usize,
    len: usize,
    /// Seeds the index hash ([`TrackedKey::table_hash`]).
    seed: u64,
}

/// Index buckets to start with (grows by doubling).
const MIN_BUCKETS: usize = 64;

impl<K: TrackedKey, V> FlowSlots<K, V> {
    /// An empty table. `seed` seeds the index hash; a random seed keeps an
    /// attacker from choosing keys that collide (the output does not depend
    /// on it: flows are ended by time, never in bucket order).
    pub(crate) fn new(seed: u64) -> Self {
        FlowSlots {
            slots: Vec::new(),
            free: Vec::new(),
            buckets: vec![Bucket::default(); MIN_BUCKETS],
            mask: MIN_BUCKETS - 1,
            len: 0,
            seed,
        }
    }

    /// Flows held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn hash(&self, key: &K) -> u32 {
        // The low bits pick the bucket; folding the high half in keeps
        // them well mixed.
        let h = key.table_hash(self.seed);
        (h ^ (h >> 32)) as u32
    }

    /// The bucket holding `key`, if any.
    #[inline]
    fn find_bucket(&self, key: &K, hash: u32) -> Option<(usize, SlotId)> {
        let mut i = hash as usize & self.mask;
        // At most half the buckets are full, so an empty bucket ends every
        // probe; the countdown only guards against a broken invariant.
        let mut left = self.buckets.len();
        loop {
            let b = self.buckets.get(i)?;
            if b.slot_plus_one == 0 {
                return None;
            }
            if b.hash == hash {
                let slot = b.slot_plus_one - 1;
                if let Some(Slot {
                    entry: Some((k, _)),
                    ..
                }) = self.slots.get(slot as usize)
                {
                    if k == key {
                        return Some((i, slot));
                    }
                }
            }
            left -= 1;
            if left == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The slot of `key`'s flow.
    #[inline]
    pub(crate) fn find(&self, key: &K) -> Option<SlotId> {
        self.find_bucket(key, self.hash(key)).map(|(_, s)| s)
    }

    /// Takes out the value stored under `key`.
    pub(crate) fn remove_key(&mut self, key: &K) -> Option<V> {
        let slot = self.find(key)?;
        self.remove(slot).map(|(_, v)| v)
    }

    /// Stores `value` under a `key` that is not in the table and returns it,
    /// mutably; `None` (the value dropped) only when the slot space is
    /// exhausted.
    pub(crate) fn insert_new(&mut self, key: K, value: V) -> Option<&mut V> {
        let slot = self.insert(key, value).ok()?;
        self.get_mut(slot).map(|(_, v)| v)
    }

    /// The flow in `slot`.
    #[inline]
    pub(crate) fn get(&self, slot: SlotId) -> Option<(&K, &V)> {
        match self.slots.get(slot as usize) {
            Some(Slot {
                entry: Some((k, v)),
                ..
            }) => Some((k, v)),
            _ => None,
        }
    }

    /// The flow in `slot`, mutably (the key cannot change).
    #[inline]
    pub(crate) fn get_mut(&mut self, slot: SlotId) -> Option<(&K, &mut V)> {
        match self.slots.get_mut(slot as usize) {
            Some(Slot {
                entry: Some((k, v)),
                ..
            }) => Some((&*k, v)),
            _ => None,
        }
    }

    /// The flow in `slot` if the slot still holds generation `gen`.
    #[inline]
    pub(crate) fn get_gen_mut(&mut self, slot: SlotId, gen: u32) -> Option<&mut V> {
        match self.slots.get_mut(slot as usize) {
            Some(Slot {
                gen: g,
                entry: Some((_, v)),
            }) if *g == gen => Some(v),
            _ => None,
        }
    }

    /// The generation of `slot`.
    pub(crate) fn gen(&self, slot: SlotId) -> u32 {
        self.slots.get(slot as usize).map_or(0, |s| s.gen)
    }

    /// Stores a flow whose key is not in the table; returns its slot, or
    /// gives the flow back when the slot space (2^32 - 1) is exhausted.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Result<SlotId, (K, V)> {
        if (self.len + 1) * 2 > self.buckets.len() {
            self.grow_index();
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => match u32::try_from(self.slots.len()) {
                Ok(s) if s < u32::MAX => {
                    self.slots.push(Slot {
                        gen: 0,
                        entry: None,
                    });
                    s
                }
                _ => return Err((key, value)),
            },
        };
        let hash = self.hash(&key);
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return Err((key, value));
        };
        s.gen = s.gen.wrapping_add(1);
        s.entry = Some((key, value));
        self.place(hash, slot);
        self.len += 1;
        Ok(slot)
    }

    /// Puts `slot` into the first empty bucket of `hash`'s probe sequence.
    fn place(&mut self, hash: u32, slot: SlotId) {
        let mut i = hash as usize & self.mask;
        for _ in 0..self.buckets.len() {
            if let Some(b) = self.buckets.get_mut(i) {
                if b.slot_plus_one == 0 {
                    *b = Bucket {
                        hash,
                        slot_plus_one: slot + 1,
                    };
                    return;
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Takes the flow out of `slot` (its slot goes back to the free list).
    pub(crate) fn remove(&mut self, slot: SlotId) -> Option<(K, V)> {
        let hash = {
            let (k, _) = self.get(slot)?;
            self.hash(k)
        };
        let (bucket, found) = self.bucket_of_slot(hash, slot)?;
        debug_assert_eq!(found, slot);
        self.delete_bucket(bucket);
        let entry = self.slots.get_mut(slot as usize)?.entry.take();
        self.free.push(slot);
        self.len -= 1;
        entry
    }

    /// The bucket pointing at `slot` in `hash`'s probe sequence.
    fn bucket_of_slot(&self, hash: u32, slot: SlotId) -> Option<(usize, SlotId)> {
        let mut i = hash as usize & self.mask;
        for _ in 0..self.buckets.len() {
            let b = self.buckets.get(i)?;
            if b.slot_plus_one == 0 {
                return None;
            }
            if b.slot_plus_one == slot + 1 {
                return Some((i, slot));
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Empties bucket `i` and shifts later buckets of the same run back so
    /// every probe still finds its key (deletion without tombstones, Knuth's
    /// Algorithm R for linear probing).
    fn delete_bucket(&mut self, mut i: usize) {
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let Some(&b) = self.buckets.get(j) else { break };
            if b.slot_plus_one == 0 {
                break;
            }
            let home = b.hash as usize & self.mask;
            // `b` may move back to `i` unless its home lies cyclically in (i, j].
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                if let Some(dst) = self.buckets.get_mut(i) {
                    *dst = b;
                }
                i = j;
            }
        }
        if let Some(dst) = self.buckets.get_mut(i) {
            *dst = Bucket::default();
        }
    }

    /// Doubles the index and re-places every flow.
    fn grow_index(&mut self) {
        let n = self.buckets.len().saturating_mul(2);
        let old = core::mem::replace(&mut self.buckets, vec![Bucket::default(); n]);
        self.mask = n - 1;
        for b in old {
            if b.slot_plus_one != 0 {
                self.place(b.hash, b.slot_plus_one - 1);
            }
        }
    }

    /// Every flow's slot, in slot order.
    pub(crate) fn occupied(&self) -> impl Iterator<Item = SlotId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.entry.is_some())
            .map(|(i, _)| i as SlotId)
    }

    /// Every flow, mutably, in slot order (for rare whole-table passes,
    /// such as shedding memory; never per packet).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> + '_ {
        self.slots
            .iter_mut()
            .filter_map(|s| s.entry.as_mut().map(|(k, v)| (&*k, v)))
    }

    /// Bytes the index spends per bucket.
    pub(crate) const fn bucket_bytes() -> usize {
        core::mem::size_of::<Bucket>()
    }

    /// Bytes one slot takes.
    pub(crate) const fn slot_bytes() -> usize {
        core::mem::size_of::<Slot<K, V>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    impl TrackedKey for u64 {}

    fn table() -> FlowSlots<u64, u64> {
        FlowSlots::new(0x1234_5678)
    }

    #[test]
    fn insert_find_remove() {
        let mut t = table();
        let a = t.insert(10, 100).expect("room");
        let b = t.insert(20, 200).expect("room");
        assert_eq!(t.find(&10), Some(a));
        assert_eq!(t.find(&20), Some(b));
        assert_eq!(t.find(&30), None);
        assert_eq!(t.remove(a), Some((10, 100)));
        assert_eq!(t.find(&10), None);
        assert_eq!(t.find(&20), Some(b));
        // The freed slot is reused with a new generation.
        let g = t.gen(a);
        let c = t.insert(30, 300).expect("room");
        assert_eq!(c, a);
        assert_eq!(t.gen(c), g.wrapping_add(1));
        assert!(t.get_gen_mut(c, g).is_none());
        assert_eq!(t.get_gen_mut(c, g.wrapping_add(1)), Some(&mut 300));
        assert_eq!(t.len(), 2);
    }

    /// A key whose every value hashes alike: all of them share one probe run.
    #[derive(Clone, Debug, Hash, PartialEq, Eq)]
    struct Colliding(u64);
    impl TrackedKey for Colliding {
        fn table_hash(&self, _seed: u64) -> u64 {
            7
        }
    }

    #[test]
    fn colliding_hashes_survive_deletion_in_the_middle_of_a_run() {
        let mut t: FlowSlots<Colliding, u64> = FlowSlots::new(99);
        let slots: Vec<_> = (0..100u64)
            .map(|k| t.insert(Colliding(k), k * 2).expect("room"))
            .collect();
        // Deleting every third key shifts later run members back over it.
        for (k, s) in slots.iter().enumerate().step_by(3) {
            assert_eq!(
                t.remove(*s).map(|(c, v)| (c.0, v)),
                Some((k as u64, k as u64 * 2))
            );
        }
        for (k, s) in slots.iter().enumerate() {
            let expect = (k % 3 != 0).then_some(*s);
            assert_eq!(t.find(&Colliding(k as u64)), expect, "key {k}");
        }
        assert_eq!(t.len(), 66);
    }

    proptest! {
        /// Any sequence of inserts and removals agrees with a HashMap model,
        /// and the index never fills beyond half.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((any::<bool>(), 0u64..200), 0..2000)) {
            let mut t = table();
            let mut model: HashMap<u64, SlotId> = HashMap::new();
            for (insert, k) in ops {
                if insert {
                    if let std::collections::hash_map::Entry::Vacant(e) = model.entry(k) {
                        e.insert(t.insert(k, k + 1).expect("room"));
                    }
                } else if let Some(s) = model.remove(&k) {
                    prop_assert_eq!(t.remove(s), Some((k, k + 1)));
                }
                prop_assert!(t.len() * 2 <= t.buckets.len());
            }
            prop_assert_eq!(t.len(), model.len());
            for k in 0..200u64 {
                prop_assert_eq!(t.find(&k), model.get(&k).copied());
            }
            let mut occ: Vec<_> = t.occupied().collect();
            occ.sort_unstable();
            let mut want: Vec<_> = model.values().copied().collect();
            want.sort_unstable();
            prop_assert_eq!(occ, want);
        }
    }
}
