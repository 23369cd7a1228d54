//! Group commit for Redis `WAIT`: one `WAIT` confirms every join written before it.
//!
//! `WAIT` blocks the connection it is sent on until replicas acknowledge, and all
//! calls share one multiplexed connection per master, so a `WAIT` per join put every
//! call behind a chain of replication round trips (at 50 concurrent joins some waited
//! past the Redis timeout). `WAIT` covers every earlier write of the connection, so
//! joins that finished writing may share one: at most one `WAIT` per slot is in
//! flight, and a join whose write finished before that `WAIT` was sent is confirmed by
//! it. A join waits for at most two `WAIT`s: the one in flight and the next.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

/// The writes of one slot's master and how far `WAIT` has confirmed them.
#[derive(Default)]
pub struct GroupWait {
    /// Writes whose reply has arrived.
    written: AtomicU64,
    /// The `written` count the last successful `WAIT` covered; held while one runs.
    confirmed: Mutex<u64>,
}

impl GroupWait {
    /// Call after a write's reply has arrived: returns once a `WAIT` sent after that
    /// reply has succeeded, running `wait` (one `WAIT`) if none has. A failed `wait`
    /// confirms nothing; the next caller sends its own.
    pub async fn confirm<E, F, Fut>(&self, wait: F) -> Result<(), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let mine = self.written.fetch_add(1, Ordering::SeqCst) + 1;
        let mut confirmed = self.confirmed.lock().await;
        if *confirmed >= mine {
            return Ok(());
        }
        // Every write counted here had its reply before this WAIT is sent.
        let upto = self.written.load(Ordering::SeqCst);
        wait().await?;
        *confirmed = upto;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_waits() {
        let group = Arc::new(GroupWait::default());
        let waits = Arc::new(AtomicUsize::new(0));
        let joins: Vec<_> = (0..100)
            .map(|_| {
                let (group, waits) = (group.clone(), waits.clone());
                tokio::spawn(async move {
                    group
                        .confirm(|| async {
                            waits.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<(), ()>(())
                        })
                        .await
                })
            })
            .collect();
        for join in joins {
            assert_eq!(join.await.unwrap(), Ok(()));
        }
        let waits = waits.load(Ordering::SeqCst);
        assert!((1..50).contains(&waits), "{waits} WAITs for 100 writes");
    }

    #[tokio::test]
    async fn a_failed_wait_confirms_nothing() {
        let group = GroupWait::default();
        assert_eq!(
            group.confirm(|| async { Err("no replica") }).await,
            Err("no replica")
        );
        // The next write is not confirmed by the failed WAIT: it runs its own.
        let ran = AtomicUsize::new(0);
        let r = group
            .confirm(|| async {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<(), &str>(())
            })
            .await;
        assert_eq!((r, ran.load(Ordering::SeqCst)), (Ok(()), 1));
    }
}
