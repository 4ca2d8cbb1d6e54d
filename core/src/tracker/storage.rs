//! The page view's storage as consent allows it, and a storage that
//! refuses writes left alone a few seconds between tries.

use crate::config::Consent;
use crate::error::Error;
use crate::store::{MemoryStore, Store};

/// Every key segmint writes starts with this.
pub const KEY_PREFIX: &str = "sgm_";
/// A storage that refused a write is retried after this long.
const RETRY_MS: f64 = 5000.0;

/// `localStorage` (the adapter's [`Store`]) once consent is granted, a
/// memory store standing in for it otherwise.
pub struct Storage<S: Store> {
    /// The browser's storage.
    pub store: S,
    /// Stands in for `store` while consent is not granted.
    memory: MemoryStore,
    /// The latest write was refused.
    failing: bool,
    /// When a refused write was last retried: a failing storage is tried
    /// again every few seconds, not on every event.
    last_failed_write: f64,
}

impl<S: Store> Storage<S> {
    pub fn new(store: S) -> Storage<S> {
        Storage {
            store,
            memory: MemoryStore::default(),
            failing: false,
            last_failed_write: f64::NEG_INFINITY,
        }
    }

    /// Where writes go: real storage only with consent.
    pub fn writable(&mut self, consent: Consent) -> &mut dyn Store {
        if consent == Consent::Granted {
            &mut self.store
        } else {
            &mut self.memory
        }
    }

    /// Where reads come from: reading is allowed while consent is pending
    /// (nothing is written).
    pub fn readable(&self, consent: Consent) -> &dyn Store {
        if consent == Consent::Denied {
            &self.memory
        } else {
            &self.store
        }
    }

    /// Writes `key`; the first refusal of a run is the error to report.
    pub fn write(&mut self, consent: Consent, key: &str, value: &str) -> Option<Error> {
        let result = self.writable(consent).set(key, value);
        self.note(result)
    }

    /// Notes whether a write was taken; the first refusal of a run is the
    /// error to report.
    pub fn note(&mut self, result: Result<(), String>) -> Option<Error> {
        match result {
            Ok(()) => {
                self.failing = false;
                None
            }
            Err(reason) => {
                let first = !self.failing;
                self.failing = true;
                first.then_some(Error::StorageUnavailable { reason })
            }
        }
    }

    /// A write of the queue was refused at `now`: the next try waits.
    pub fn refused_at(&mut self, now: f64) {
        self.last_failed_write = now;
    }

    /// The next try may come at once (the page is going).
    pub fn unpause(&mut self) {
        self.last_failed_write = f64::NEG_INFINITY;
    }

    /// Whether writes wait for now.
    pub fn paused(&self, now: f64) -> bool {
        // Not before the failure either: a clock put back would pause
        // storage for as long as it was put back.
        self.failing && (0.0..RETRY_MS).contains(&(now - self.last_failed_write))
    }

    /// Whether the latest write was refused.
    pub fn failing(&self) -> bool {
        self.failing
    }

    /// When a refused write is tried again.
    pub fn retry_at(&self) -> f64 {
        self.last_failed_write + RETRY_MS
    }

    /// Deletes every `sgm_*` key of the browser's storage, and what the
    /// memory store held.
    pub fn wipe(&mut self) {
        for key in self.store.keys() {
            if key.starts_with(KEY_PREFIX) {
                self.store.remove(&key);
            }
        }
        self.memory = MemoryStore::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_decides_where_writes_and_reads_go() {
        let mut s = Storage::new(MemoryStore::default());
        assert!(s.write(Consent::Pending, "sgm_a", "1").is_none());
        assert_eq!(s.store.get("sgm_a"), None, "pending writes to memory only");
        s.store.set("sgm_b", "2").unwrap();
        assert_eq!(
            s.readable(Consent::Pending).get("sgm_b").as_deref(),
            Some("2")
        );
        assert_eq!(s.readable(Consent::Denied).get("sgm_b"), None);
        s.write(Consent::Granted, "sgm_c", "3");
        s.store.set("other", "4").unwrap();
        s.wipe();
        assert_eq!(s.store.keys(), vec!["other"], "only segmint's keys go");
    }

    #[test]
    fn a_refusing_storage_is_reported_once_and_paused_a_few_seconds() {
        let mut refusing = MemoryStore::default();
        refusing.refuse_writes = true;
        let mut s = Storage::new(refusing);
        assert!(s.write(Consent::Granted, "sgm_a", "1").is_some());
        assert!(
            s.write(Consent::Granted, "sgm_a", "1").is_none(),
            "said once"
        );
        s.refused_at(10_000.0);
        assert!(s.paused(12_000.0));
        assert!(!s.paused(15_000.0));
        assert!(
            !s.paused(5_000.0),
            "a clock put back does not pause it longer"
        );
        s.store.refuse_writes = false;
        assert!(s.write(Consent::Granted, "sgm_a", "1").is_none());
        assert!(!s.failing());
    }
}
