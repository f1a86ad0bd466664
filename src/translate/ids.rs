//! A short list of numbers (contest entrants, claimants, holders of a key)
//! in 8 bytes and no allocation while it has at most one entry, which is
//! nearly always. A longer list lives in a `Lists` kept beside the `Ids`
//! (by `State`, by `KeyContests`), through which it is read and changed.
//! There is an `Ids` in three places per credential (the username and key
//! contest tables, a listed Secret's claimants): 8 bytes where a list that
//! boxed its own longer lists took 16 is 29 bytes less per credential at
//! 100k, with the tables' spare room.

use super::consumer_state::Slab;

/// At most one number inline, else the number of its list in a `Lists`.
/// Neither `Clone` nor `Copy`: two copies would share one list, and a
/// change through one would free or move it under the other.
#[derive(Debug, Default)]
pub enum Ids {
    #[default]
    Empty,
    One(u32),
    /// Two or more (rare): list `.0` of the `Lists` kept beside it.
    Many(u32),
}

impl Ids {
    /// Readable without the `Lists`: a `Many` has two or more.
    pub fn is_empty(&self) -> bool {
        matches!(self, Ids::Empty)
    }
}

/// The lists of the `Ids` that have two or more numbers, by number. A
/// list's number is reused once its `Ids` is down to one.
#[derive(Default)]
pub struct Lists(Slab<Vec<u32>>);

impl Lists {
    /// The numbers of `ids`, in order.
    pub fn get<'a>(&'a self, ids: &'a Ids) -> &'a [u32] {
        match ids {
            Ids::Empty => &[],
            Ids::One(id) => std::slice::from_ref(id),
            Ids::Many(list) => self.0.get(*list).map_or(&[], Vec::as_slice),
        }
    }

    pub fn first(&self, ids: &Ids) -> Option<u32> {
        self.get(ids).first().copied()
    }

    pub fn insert(&mut self, ids: &mut Ids, at: usize, id: u32) {
        match *ids {
            Ids::Empty => *ids = Ids::One(id),
            Ids::One(old) => *ids = Ids::Many(self.0.add(if at == 0 { vec![id, old] } else { vec![old, id] })),
            Ids::Many(list) => {
                if let Some(list) = self.0.get_mut(list) {
                    list.insert(at, id);
                }
            }
        }
    }

    pub fn push(&mut self, ids: &mut Ids, id: u32) {
        let len = self.get(ids).len();
        self.insert(ids, len, id);
    }

    /// Sorts the numbers of `ids` by `key` (stable).
    pub fn sort_by_key<K: Ord>(&mut self, ids: &Ids, key: impl FnMut(&u32) -> K) {
        if let Ids::Many(list) = ids
            && let Some(list) = self.0.get_mut(*list)
        {
            list.sort_by_key(key);
        }
    }

    /// Removes `id` from `ids` (every time it occurs); returns where it was.
    /// A list down to one number is freed.
    pub fn remove(&mut self, ids: &mut Ids, id: u32) -> Option<usize> {
        let at = self.get(ids).iter().position(|&x| x == id)?;
        let Ids::Many(n) = *ids else {
            *ids = Ids::Empty;
            return Some(at);
        };
        let list = self.0.get_mut(n)?;
        list.retain(|&x| x != id);
        *ids = match *list.as_slice() {
            [] => Ids::Empty,
            [one] => Ids::One(one),
            _ => return Some(at),
        };
        self.0.take(n);
        Some(at)
    }

    /// How many lists are kept (tests check that none is lost).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.iter().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_through_inserts_and_removals() {
        let mut lists = Lists::default();
        let mut ids = Ids::default();
        assert!(ids.is_empty());
        lists.push(&mut ids, 5);
        assert!(matches!(ids, Ids::One(5)));
        lists.insert(&mut ids, 0, 3);
        lists.push(&mut ids, 9);
        lists.insert(&mut ids, 2, 7);
        assert_eq!(lists.get(&ids), [3, 5, 7, 9]);
        lists.sort_by_key(&ids, |&id| std::cmp::Reverse(id));
        assert_eq!(lists.get(&ids), [9, 7, 5, 3]);
        lists.sort_by_key(&ids, |&id| id);
        assert_eq!(lists.remove(&mut ids, 5), Some(1));
        assert_eq!(lists.remove(&mut ids, 5), None);
        assert_eq!(lists.remove(&mut ids, 3), Some(0));
        assert_eq!(lists.len(), 1);
        assert_eq!(lists.remove(&mut ids, 9), Some(1));
        // Down to one: inline again, and the list freed.
        assert!(matches!(ids, Ids::One(7)));
        assert_eq!(lists.len(), 0);
        assert_eq!(lists.first(&ids), Some(7));
        assert_eq!(lists.remove(&mut ids, 7), Some(0));
        assert!(ids.is_empty());
        assert_eq!(lists.first(&ids), None);
        assert_eq!(std::mem::size_of::<Ids>(), 8);
    }

    #[test]
    fn lists_of_different_ids_stay_apart_and_numbers_are_reused() {
        let mut lists = Lists::default();
        let (mut a, mut b) = (Ids::default(), Ids::default());
        for id in [1, 2, 3] {
            lists.push(&mut a, id);
            lists.push(&mut b, id * 10);
        }
        lists.insert(&mut a, 0, 0);
        assert_eq!((lists.get(&a), lists.get(&b)), (&[0, 1, 2, 3][..], &[10, 20, 30][..]));
        for id in [1, 2, 3] {
            lists.remove(&mut a, id);
        }
        assert!(matches!(a, Ids::One(0)));
        lists.push(&mut a, 4);
        assert_eq!((lists.get(&a), lists.get(&b)), (&[0, 4][..], &[10, 20, 30][..]));
        assert_eq!(lists.len(), 2);
        // Only ever one: no list at all.
        let mut one = Ids::default();
        lists.insert(&mut one, 0, 8);
        lists.remove(&mut one, 8);
        assert_eq!(lists.len(), 2);
    }
}
