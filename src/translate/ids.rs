//! A short list of numbers (contest entrants, claimants, holders of a key)
//! in 16 bytes and no allocation while it has at most one entry, which is
//! nearly always: at 100k credentials a `Vec` apiece cost ~40 bytes and an
//! allocation, three times per credential.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Many(Vec<u32>);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Ids {
    #[default]
    Empty,
    One(u32),
    /// Two or more (rare). Behind a thin pointer: a boxed slice would make
    /// every `Ids` 24 bytes.
    Many(Box<Many>),
}

impl Ids {
    pub fn as_slice(&self) -> &[u32] {
        match self {
            Ids::Empty => &[],
            Ids::One(id) => std::slice::from_ref(id),
            Ids::Many(ids) => &ids.0,
        }
    }

    pub fn first(&self) -> Option<u32> {
        self.as_slice().first().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn insert(&mut self, at: usize, id: u32) {
        *self = match std::mem::take(self) {
            Ids::Empty => Ids::One(id),
            Ids::One(old) => Ids::Many(Box::new(Many(if at == 0 { vec![id, old] } else { vec![old, id] }))),
            Ids::Many(mut ids) => {
                ids.0.insert(at, id);
                Ids::Many(ids)
            }
        }
    }

    pub fn push(&mut self, id: u32) {
        self.insert(self.len(), id);
    }

    /// Sorts the entries by `key` (stable).
    pub fn sort_by_key<K: Ord>(&mut self, key: impl FnMut(&u32) -> K) {
        if let Ids::Many(ids) = self {
            ids.0.sort_by_key(key);
        }
    }

    /// Removes `id` (every time it occurs); returns where it was.
    pub fn remove(&mut self, id: u32) -> Option<usize> {
        let at = self.as_slice().iter().position(|&x| x == id)?;
        *self = match std::mem::take(self) {
            Ids::Many(mut ids) => {
                ids.0.retain(|&x| x != id);
                match ids.0.as_slice() {
                    [] => Ids::Empty,
                    [one] => Ids::One(*one),
                    _ => Ids::Many(ids),
                }
            }
            _ => Ids::Empty,
        };
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_through_inserts_and_removals() {
        let mut ids = Ids::default();
        assert!(ids.is_empty());
        ids.push(5);
        assert_eq!(ids, Ids::One(5));
        ids.insert(0, 3);
        ids.push(9);
        ids.insert(2, 7);
        assert_eq!(ids.as_slice(), [3, 5, 7, 9]);
        let mut sorted = ids.clone();
        sorted.sort_by_key(|&id| std::cmp::Reverse(id));
        assert_eq!(sorted.as_slice(), [9, 7, 5, 3]);
        assert_eq!(ids.remove(5), Some(1));
        assert_eq!(ids.remove(5), None);
        assert_eq!(ids.remove(3), Some(0));
        assert_eq!(ids.remove(9), Some(1));
        assert_eq!(ids, Ids::One(7));
        assert_eq!(ids.first(), Some(7));
        assert_eq!(ids.remove(7), Some(0));
        assert_eq!(ids, Ids::Empty);
        assert_eq!(std::mem::size_of::<Ids>(), 16);
    }
}
