//! Storage of `Idempotency-Key` records: `p:<fingerprint>` while the first request
//! runs, then `d:<fingerprint>:<answer>`, under the event's hash tag, for
//! [`IDEMPOTENCY_TTL_SECS`].

use redis::AsyncCommands;

use super::keys;
use super::{Store, StoreError};

/// How long a key is remembered.
pub const IDEMPOTENCY_TTL_SECS: u64 = 300;

/// Outcome of claiming an `Idempotency-Key`.
#[derive(Debug, PartialEq)]
pub enum IdemBegin {
    /// First use: run the request, then record its answer.
    New,
    /// Seen with the same request: the recorded answer (JSON).
    Replay(String),
    /// The first request with this key is still running.
    InProgress,
    /// Seen with a different request.
    Conflict,
}

impl Store {
    /// Claims `key` for the request fingerprinted `fp` (SET NX, so exactly one wins).
    pub async fn idem_begin(
        &self,
        event: &str,
        key: &str,
        fp: &str,
    ) -> Result<IdemBegin, StoreError> {
        let k = keys::idempotency(event, key);
        let mut c = self.link.get();
        let fp = fp.to_owned();
        self.bounded(async move {
            let won: Option<String> = redis::cmd("SET")
                .arg(&k)
                .arg(format!("p:{fp}"))
                .arg("NX")
                .arg("EX")
                .arg(IDEMPOTENCY_TTL_SECS)
                .query_async(&mut c)
                .await?;
            if won.is_some() {
                return Ok(IdemBegin::New);
            }
            let current: Option<String> = c.get(&k).await?;
            let Some(current) = current else {
                return Ok(IdemBegin::InProgress);
            };
            let (state, rest) = current.split_at(current.len().min(2));
            let (stored_fp, answer) = rest.split_once(':').unwrap_or((rest, ""));
            Ok(match (state, stored_fp == fp) {
                (_, false) => IdemBegin::Conflict,
                ("d:", true) => IdemBegin::Replay(answer.to_owned()),
                _ => IdemBegin::InProgress,
            })
        })
        .await
    }

    /// Records the answer for a claimed key.
    pub async fn idem_finish(
        &self,
        event: &str,
        key: &str,
        fp: &str,
        answer: &str,
    ) -> Result<(), StoreError> {
        let k = keys::idempotency(event, key);
        let mut c = self.link.get();
        let value = format!("d:{fp}:{answer}");
        self.bounded(async move { c.set_ex::<_, _, ()>(&k, value, IDEMPOTENCY_TTL_SECS).await })
            .await
    }

    /// Releases a claimed key after a failed request, so that a retry runs again.
    pub async fn idem_release(&self, event: &str, key: &str) -> Result<(), StoreError> {
        let k = keys::idempotency(event, key);
        let mut c = self.link.get();
        self.bounded(async move { c.del::<_, ()>(&k).await }).await
    }
}
