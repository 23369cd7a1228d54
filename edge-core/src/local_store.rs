//! A [`SharedStore`] in the memory of one instance, for runtimes whose host keeps no
//! state across requests for us (a JavaScript isolate, a WASI component instance).
//!
//! What rate limiting then means: each instance limits on its own. A runtime that runs
//! N instances side by side (isolates on many machines, one component instance per
//! request) lets a client through up to N times the configured rate, and an instance
//! that is recycled forgets its buckets. Where that is not good enough, use the
//! runtime's own limiter in front of the decision (see each runtime's README).
//!
//! The key space is bounded by the limiters themselves (`rate_limit_slots` keys per
//! namespace), so the map cannot grow with the number of clients.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::rate_limit::{SharedStore, StoreError};

/// Key → (value, CAS token), with the host's compare-and-swap semantics: tokens increase
/// on every write, and a write with a stale token fails.
#[derive(Default)]
pub struct LocalStore {
    data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: Cell<u32>,
    /// Writes to fail with a CAS mismatch before succeeding (simulates races in tests).
    failing_writes: Cell<usize>,
}

impl LocalStore {
    /// Keys stored.
    pub fn len(&self) -> usize {
        self.data.borrow().len()
    }

    /// True if nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes the next `n` writes fail with [`StoreError::CasMismatch`], as if another
    /// writer had won each time (for tests of the retry loop).
    pub fn fail_next_writes(&self, n: usize) {
        self.failing_writes.set(n);
    }
}

impl SharedStore for LocalStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.data.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        if self.failing_writes.get() > 0 {
            self.failing_writes.set(self.failing_writes.get() - 1);
            return Err(StoreError::CasMismatch);
        }
        let mut data = self.data.borrow_mut();
        if let Some((_, current)) = data.get(key) {
            if cas != 0 && cas != *current {
                return Err(StoreError::CasMismatch);
            }
        }
        let next = self.next_cas.get().wrapping_add(1).max(1);
        self.next_cas.set(next);
        data.insert(key.to_owned(), (value.to_vec(), next));
        Ok(())
    }
}
