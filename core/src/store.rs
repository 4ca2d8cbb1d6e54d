//! Key-value storage behind a small trait: `localStorage` in the browser,
//! a map in tests and wherever storage is refused.

use std::cell::RefCell;
use std::rc::Rc;

/// Synchronous string storage, shaped like `localStorage`.
pub trait Store {
    /// The value at `key`.
    fn get(&self, key: &str) -> Option<String>;
    /// Writes `value` at `key`; `Err` carries the browser's reason (quota,
    /// private mode, storage disabled).
    fn set(&mut self, key: &str, value: &str) -> Result<(), String>;
    /// Removes `key` (nothing if absent).
    fn remove(&mut self, key: &str);
    /// Every key in the store.
    fn keys(&self) -> Vec<String>;
}

/// An in-memory store, with an optional quota in bytes of keys + values
/// so tests can make writes fail as a full `localStorage` does.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    map: Vec<(String, String)>,
    /// Total bytes allowed; `None` is unlimited.
    pub quota: Option<usize>,
    /// When true every write fails (storage disabled).
    pub refuse_writes: bool,
}

impl MemoryStore {
    /// Bytes used by keys and values.
    pub fn used(&self) -> usize {
        self.map.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Option<String> {
        self.map
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        if self.refuse_writes {
            return Err("storage disabled".into());
        }
        if let Some(quota) = self.quota {
            let old = self.get(key).map_or(0, |v| key.len() + v.len());
            if self.used() - old + key.len() + value.len() > quota {
                return Err("QuotaExceededError".into());
            }
        }
        match self.map.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.map.push((key.to_string(), value.to_string())),
        }
        Ok(())
    }

    fn remove(&mut self, key: &str) {
        self.map.retain(|(k, _)| k != key);
    }

    fn keys(&self) -> Vec<String> {
        self.map.iter().map(|(k, _)| k.clone()).collect()
    }
}

/// Several tabs of one origin share one storage: tests model that with a
/// shared, reference-counted store.
impl<S: Store> Store for Rc<RefCell<S>> {
    fn get(&self, key: &str) -> Option<String> {
        self.borrow().get(key)
    }
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        self.borrow_mut().set(key, value)
    }
    fn remove(&mut self, key: &str) {
        self.borrow_mut().remove(key)
    }
    fn keys(&self) -> Vec<String> {
        self.borrow().keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_refuses_writes_that_do_not_fit() {
        let mut s = MemoryStore {
            quota: Some(10),
            ..MemoryStore::default()
        };
        assert!(s.set("a", "12345").is_ok());
        assert!(s.set("a", "123456789").is_ok());
        assert!(s.set("b", "12").is_err());
        s.remove("a");
        assert!(s.set("b", "12").is_ok());
        assert_eq!(s.keys(), vec!["b"]);
    }
}
