//! The registry of events the admission loop steps through.

use super::keys::{EVENTS, KEY_TTL_SECS};
use super::{Store, StoreError};

impl Store {
    /// Event ids known to the admission loop; renews the list's lifetime.
    pub async fn events(&self) -> Result<Vec<String>, StoreError> {
        let mut c = self.link.get();
        self.bounded(async move {
            let (events, _renewed): (Vec<String>, bool) = redis::pipe()
                .smembers(EVENTS)
                .expire(EVENTS, KEY_TTL_SECS as i64)
                .query_async(&mut c)
                .await?;
            Ok(events)
        })
        .await
    }

    /// Forgets an event whose keys have expired.
    pub async fn unregister(&self, event: &str) -> Result<(), StoreError> {
        let mut c = self.link.get();
        let event = event.to_owned();
        self.bounded(async move {
            redis::cmd("SREM")
                .arg(EVENTS)
                .arg(event)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }
}
