//! The operators' page templates as the page route reads them: from Redis, through a
//! short in-process cache, so that a crowd loading the page costs Redis one read per
//! event every few seconds, not one per page.
//!
//! Redis trouble must not cost a visitor the page (the page is how they wait, and it
//! retries by itself): a failed read serves the template read last, if this process has
//! one, or else the built-in page. Each failed read is counted
//! ([`failed_reads`]) and logged (at most once a second); a stored template that no
//! longer passes the check (the rules grew stricter since it was stored) is served as
//! the built-in page, counted and logged the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::template::Template;
use crate::gates::log_throttle::LogThrottle;
use crate::store::{Store, StoreError};

/// How long a template read stays fresh.
pub const FRESH_FOR: Duration = Duration::from_secs(5);
/// Most events cached at once (beyond it, reads of events not cached go uncached).
const MAX_EVENTS: usize = 4096;

static FAILED_READS: AtomicU64 = AtomicU64::new(0);

/// Template reads that failed (Redis trouble, or a stored template refused by the
/// check) since the process started: each served the last template read or the
/// built-in page instead.
pub fn failed_reads() -> u64 {
    FAILED_READS.load(Ordering::Relaxed)
}

/// One event's cached read.
#[derive(Default)]
struct Entry {
    template: Option<Arc<Template>>,
    read_at: Option<Instant>,
}

/// The templates of every event, read through the cache.
pub struct PageTemplates {
    store: Store,
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Entry>>>>,
    /// When a full cache was last swept of stale entries (at most once a second).
    swept_at: Mutex<Option<Instant>>,
}

impl PageTemplates {
    /// Reads from `store`.
    pub fn new(store: Store) -> PageTemplates {
        PageTemplates {
            store,
            entries: Mutex::new(HashMap::new()),
            swept_at: Mutex::new(None),
        }
    }

    /// `event`'s template, or `None` for the built-in page. One read at a time per
    /// event: the requests that arrive while it runs wait for it and share its answer.
    /// With the cache full (a flood of made-up event ids), an event not in it gets the
    /// built-in page with no Redis read, and the fallback is counted.
    pub async fn of(&self, event: &str) -> Option<Arc<Template>> {
        let Some(slot) = self.slot(event) else {
            failed(
                event,
                "too many events asked for at once: the built-in page",
            );
            return None;
        };
        let mut entry = slot.lock().await;
        if entry.read_at.is_none_or(|at| at.elapsed() >= FRESH_FOR) {
            self.refresh(event, &mut entry).await;
        }
        entry.template.clone()
    }

    /// The cache slot of `event`, made if need be; `None` when the cache is full of
    /// fresh or busy entries.
    fn slot(&self, event: &str) -> Option<Arc<tokio::sync::Mutex<Entry>>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = entries.get(event) {
            return Some(slot.clone());
        }
        if entries.len() >= MAX_EVENTS {
            let mut swept_at = self.swept_at.lock().unwrap_or_else(|p| p.into_inner());
            if swept_at.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
                return None;
            }
            *swept_at = Some(Instant::now());
            entries.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot.try_lock().map_or(true, |e| {
                        e.template.is_some() || e.read_at.is_some_and(|at| at.elapsed() < FRESH_FOR)
                    })
            });
            if entries.len() >= MAX_EVENTS {
                return None;
            }
        }
        let slot = Arc::new(tokio::sync::Mutex::new(Entry::default()));
        entries.insert(event.to_owned(), slot.clone());
        Some(slot)
    }

    /// Reads `event`'s template into `entry`; on Redis trouble keeps what it held.
    async fn refresh(&self, event: &str, entry: &mut Entry) {
        entry.read_at = Some(Instant::now());
        match self.store.page_template(event).await {
            Ok(None) => entry.template = None,
            Ok(Some(html)) => match Template::parse(&html) {
                Ok(template) => entry.template = Some(Arc::new(template)),
                Err(problems) => {
                    entry.template = None;
                    failed(
                        event,
                        &format!("stored template refused: {}", problems.join("; ")),
                    );
                }
            },
            Err(StoreError::Unavailable(why)) | Err(StoreError::BadReply(why)) => {
                failed(event, &why);
            }
        }
    }
}

/// Counts a failed read, and logs it at most once a second with the failures since the
/// last line.
fn failed(event: &str, why: &str) {
    static THROTTLE: LogThrottle = LogThrottle::new();
    FAILED_READS.fetch_add(1, Ordering::Relaxed);
    if let Some(failures) = THROTTLE.failure(crate::clock::now_ms()) {
        tracing::warn!(
            event,
            error = %why,
            failures,
            "page template not read: serving the last one read, or the built-in page"
        );
    }
}
