//! The creator of a key record, shared between the records of the same creator.
//!
//! Nearly every record of a server names the same creator (the identity of the admin, or of
//! the MinIO deployment that creates its keys): a 64-character hex string that would cost a
//! separate 80-byte heap block in each of, say, 100,000 cached records. [`Creator::new`] hands
//! out shared copies instead, from a small table of the identities seen most recently.
//!
//! The table is bounded: it has [`SLOTS`] slots, a slot is chosen by a hash of the identity,
//! and a new identity replaces the one in its slot (the records holding the old one keep
//! their copy). Identities longer than [`MAX_SHARED_LEN`] are never put into the table. So the
//! table holds at most a few kilobytes, whatever the records contain; a creator that shares a
//! slot with another one still in use only loses some sharing. Identities are public (hashes
//! of certificates' public keys), so sharing them leaks nothing.

use std::sync::{Arc, Mutex, PoisonError};

/// The number of slots of the table.
const SLOTS: usize = 64;

/// Identities longer than this are not shared (an identity is 64 hex characters).
const MAX_SHARED_LEN: usize = 128;

/// The identity that created a key. A thin pointer (8 bytes), so that it adds little to a
/// record; `Box<str>` inside, because an `Arc<str>` would be a 16-byte pointer.
#[derive(Clone)]
pub(crate) struct Creator(Arc<Box<str>>);

/// The table of the identities seen most recently, by slot.
type Table = Mutex<[Option<Creator>; SLOTS]>;

/// The process-wide table.
static RECENT: Table = Mutex::new([const { None }; SLOTS]);

impl Creator {
    /// The creator `identity`: a shared copy when the same identity was seen recently.
    pub(crate) fn new(identity: &str) -> Creator {
        Self::from_table(&RECENT, identity)
    }

    fn from_table(table: &Table, identity: &str) -> Creator {
        if identity.len() > MAX_SHARED_LEN {
            return Creator(Arc::new(Box::from(identity)));
        }
        // A poisoned lock only means that another thread panicked while holding it; the table
        // is always in a usable state.
        let mut recent = table.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = recent.get_mut(slot_of(identity)) else {
            return Creator(Arc::new(Box::from(identity)));
        };
        match slot {
            Some(known) if known.as_str() == identity => known.clone(),
            _ => slot.insert(Creator(Arc::new(Box::from(identity)))).clone(),
        }
    }

    /// The identity.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// The slot of `identity`: FNV-1a of its bytes, reduced modulo the number of slots.
fn slot_of(identity: &str) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in identity.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % SLOTS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22";

    fn table() -> Table {
        Mutex::new([const { None }; SLOTS])
    }

    #[test]
    fn same_identity_is_shared() {
        let table = table();
        let a = Creator::from_table(&table, ID);
        // Another copy of the text, as a record parsed later would hold.
        let copy: String = ID.chars().collect();
        let b = Creator::from_table(&table, &copy);
        assert_eq!(a.as_str(), ID);
        assert!(Arc::ptr_eq(&a.0, &b.0), "one copy for both");
        assert_eq!(Creator::from_table(&table, "").as_str(), "");
        // The process-wide table gives the same text.
        assert_eq!(Creator::new(ID).as_str(), ID);
    }

    #[test]
    fn the_table_is_bounded_and_every_creator_keeps_its_text() {
        let table = table();
        // More identities than slots: each creator still reads back its own identity, whatever
        // it replaced in the table, and the table keeps at most one identity per slot.
        let ids: Vec<String> = (0..4 * SLOTS).map(|i| format!("{i:064x}")).collect();
        let creators: Vec<Creator> = ids
            .iter()
            .map(|id| Creator::from_table(&table, id))
            .collect();
        for (id, creator) in ids.iter().zip(&creators) {
            assert_eq!(creator.as_str(), id);
        }
        let kept: Vec<String> = table
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .map(|c| c.as_str().to_owned())
            .collect();
        assert!(kept.len() > 1, "the identities spread over the slots");
        // The last identity of each slot is the one kept, and shared on its next use.
        let last = ids.last().unwrap();
        assert!(kept.contains(last));
        let again = Creator::from_table(&table, last);
        assert!(Arc::ptr_eq(&again.0, &creators.last().unwrap().0));
        // Long identities are never kept.
        let long = "x".repeat(MAX_SHARED_LEN + 1);
        let (a, b) = (
            Creator::from_table(&table, &long),
            Creator::from_table(&table, &long),
        );
        assert_eq!(a.as_str(), long);
        assert!(!Arc::ptr_eq(&a.0, &b.0), "long identities are not kept");
        assert!(
            table
                .lock()
                .unwrap()
                .iter()
                .flatten()
                .all(|c| c.as_str() != long)
        );
    }
}
