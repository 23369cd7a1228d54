//! Coalesces concurrent status polls into one Redis script call per event.
//!
//! Every poll needs the same shared reads (the event's configuration, the ETA windows,
//! the line length, the poll ring) and a round trip to the event's master. At tens of
//! thousands of polls a second those dominated Redis's time, and one event lives on one
//! master by design. So polls go through a bounded channel: a worker takes every poll
//! waiting (up to [`MAX_BATCH`]), groups them by event and runs one status script per
//! event. There is no timer: a lone poll goes out at once, so batching adds no latency
//! when the service is quiet, and batches grow only while earlier ones are in flight.
//!
//! Overload is shed, not queued: when the channel is full a poll is answered
//! [`StoreError::Unavailable`] (503 + `Retry-After`) at once, and no poll waits longer
//! than twice the Redis timeout for its answer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};

use crate::clock::now_ms;
use crate::eta::Observed;
use crate::store::{Standing, Store, StoreError};

/// Most polls one script call answers.
pub const MAX_BATCH: usize = 256;
/// Script calls in flight at once (each on its own worker).
/// Two measured as well as four or eight and kept batches larger (BENCHMARKS.md); more
/// than one, so that one slow event's batch does not hold up every other event's polls.
const WORKERS: usize = 2;
/// Polls that may wait for a worker before new ones are shed.
const CAPACITY: usize = 4096;

/// What a status poll found.
#[derive(Debug)]
pub struct Answer {
    /// Where the visitor stands.
    pub standing: Standing,
    /// In line, for the whole event.
    pub waiting: u64,
    /// The ETA inputs.
    pub observed: Observed,
}

struct Poll {
    event: String,
    visitor: String,
    reply: oneshot::Sender<Result<Option<Answer>, StoreError>>,
}

/// The front of the batching workers; cheap to share.
pub struct StatusBatcher {
    polls: mpsc::Sender<Poll>,
    max_wait: Duration,
}

impl StatusBatcher {
    /// Starts the workers on the store's runtime ([`Store::spawn`]). They stop when the
    /// batcher is dropped.
    pub fn start(store: Store) -> StatusBatcher {
        let max_wait = store.timeout() * 2;
        let (polls, waiting) = mpsc::channel(CAPACITY);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..WORKERS {
            store.spawn(work(store.clone(), waiting.clone()));
        }
        StatusBatcher { polls, max_wait }
    }

    /// Where `visitor` stands in `event` (`None`: no such event).
    pub async fn status(&self, event: &str, visitor: &str) -> Result<Option<Answer>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let poll = Poll {
            event: event.to_owned(),
            visitor: visitor.to_owned(),
            reply,
        };
        self.polls.try_send(poll).map_err(|e| {
            StoreError::Unavailable(
                match e {
                    mpsc::error::TrySendError::Full(_) => "too many status polls waiting for Redis",
                    mpsc::error::TrySendError::Closed(_) => "status workers stopped",
                }
                .into(),
            )
        })?;
        match tokio::time::timeout(self.max_wait, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(StoreError::Unavailable("status worker stopped".into())),
            Err(_) => Err(StoreError::Unavailable("status poll timed out".into())),
        }
    }
}

/// One worker: take every waiting poll, answer them, repeat.
async fn work(store: Store, waiting: Arc<Mutex<mpsc::Receiver<Poll>>>) {
    loop {
        let batch = {
            let mut waiting = waiting.lock().await;
            let Some(first) = waiting.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match waiting.try_recv() {
                    Ok(poll) => batch.push(poll),
                    Err(_) => break,
                }
            }
            batch
        };
        answer(&store, batch).await;
    }
}

/// Runs one script per event in `batch` and hands each poll its answer.
async fn answer(store: &Store, mut batch: Vec<Poll>) {
    // Stable: polls of one event keep their arrival order.
    batch.sort_by(|a, b| a.event.cmp(&b.event));
    while !batch.is_empty() {
        let same = batch
            .iter()
            .take_while(|p| p.event == batch[0].event)
            .count();
        let group: Vec<Poll> = batch.drain(..same).collect();
        let visitors: Vec<&str> = group.iter().map(|p| p.visitor.as_str()).collect();
        let found = store.statuses(&group[0].event, &visitors, now_ms()).await;
        match found {
            Ok(Some(found)) => {
                for (poll, standing) in group.into_iter().zip(found.standings) {
                    let _ = poll.reply.send(Ok(Some(Answer {
                        standing,
                        waiting: found.waiting,
                        observed: found.observed,
                    })));
                }
            }
            Ok(None) => group.into_iter().for_each(|p| {
                let _ = p.reply.send(Ok(None));
            }),
            Err(e) => group.into_iter().for_each(|p| {
                let _ = p.reply.send(Err(e.clone()));
            }),
        }
    }
}
