//! Coalesces concurrent status polls into one Redis script call per event.
//!
//! Every poll needs the same shared reads (the event's configuration, the ETA windows,
//! the line length, the poll ring) and a round trip to the event's master. At tens of
//! thousands of polls a second those dominated Redis's time, and one event lives on one
//! master by design. So polls go through a bounded channel to one collector, which
//! keeps at most one script call in flight per event: the polls of an event that
//! arrive while its call is in flight all go into its next call (up to [`MAX_BATCH`]).
//! There is no timer: a lone poll goes out at once, so batching adds no latency when
//! the service is quiet, and batches grow with the load. Events do not wait for each
//! other: one event's slow master holds up only that event's polls.
//!
//! Overload is shed, not queued: when [`CAPACITY`] polls are already waiting, a poll is
//! answered [`StoreError::Unavailable`] (503 + `Retry-After`) at once, and no poll
//! waits longer than twice the Redis timeout for its answer.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::{Id, JoinSet};

use crate::clock::now_ms;
use crate::eta::Observed;
use crate::store::{Standing, Store, StoreError};

/// Most polls one script call answers.
pub const MAX_BATCH: usize = 256;
/// Polls that may wait for their event's next call before new ones are shed.
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
    /// Starts the collector on the store's runtime ([`Store::spawn`]). It stops when
    /// the batcher is dropped.
    pub fn start(store: Store) -> StatusBatcher {
        let max_wait = store.timeout() * 2;
        let (polls, incoming) = mpsc::channel(CAPACITY);
        store.spawn(collect(store.clone(), incoming));
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

/// Polls waiting for their event's next script call, and the calls in flight.
#[derive(Default)]
struct Lines {
    /// Polls not yet sent, by event, in arrival order.
    waiting: HashMap<String, Vec<Poll>>,
    /// How many polls `waiting` holds.
    held: usize,
    /// Events with a call in flight, by the task running it.
    in_flight: HashMap<Id, String>,
    /// The same events, to look up by name.
    busy: HashSet<String>,
    calls: JoinSet<()>,
}

impl Lines {
    fn add(&mut self, poll: Poll) {
        self.held += 1;
        self.waiting
            .entry(poll.event.clone())
            .or_default()
            .push(poll);
    }

    /// Sends the next call of every event that has polls waiting and no call in flight.
    fn send_idle(&mut self, store: &Store) {
        let idle: Vec<String> = self
            .waiting
            .keys()
            .filter(|event| !self.busy.contains(*event))
            .cloned()
            .collect();
        for event in idle {
            self.send(store, event);
        }
    }

    /// Sends `event`'s next call: its oldest waiting polls, up to [`MAX_BATCH`], leaving
    /// out those whose caller has stopped waiting.
    fn send(&mut self, store: &Store, event: String) {
        while let Some(polls) = self.waiting.get_mut(&event) {
            let take = polls.len().min(MAX_BATCH);
            let batch: Vec<Poll> = polls
                .drain(..take)
                .filter(|p| !p.reply.is_closed())
                .collect();
            self.held -= take;
            if polls.is_empty() {
                self.waiting.remove(&event);
            }
            if batch.is_empty() {
                // Every one of those callers gave up: on to whoever came after them.
                continue;
            }
            // On the collector's runtime, the store's (see `StatusBatcher::start`).
            let handle = self
                .calls
                .spawn(answer(store.clone(), event.clone(), batch));
            self.busy.insert(event.clone());
            self.in_flight.insert(handle.id(), event);
            return;
        }
    }

    /// A call ended (answered, failed, or its task died): the event may send again.
    fn finished(&mut self, store: &Store, task: Id) {
        if let Some(event) = self.in_flight.remove(&task) {
            self.busy.remove(&event);
            self.send(store, event);
        }
    }
}

/// The collector: takes polls as they arrive and keeps one call in flight per event.
async fn collect(store: Store, mut incoming: mpsc::Receiver<Poll>) {
    let mut lines = Lines::default();
    loop {
        tokio::select! {
            Some(done) = lines.calls.join_next_with_id(), if !lines.calls.is_empty() => {
                let task = match done {
                    Ok((task, ())) => task,
                    // The polls of a call that died get "status worker stopped".
                    Err(e) => e.id(),
                };
                lines.finished(&store, task);
            }
            poll = incoming.recv(), if lines.held < CAPACITY => {
                let Some(poll) = poll else { return };
                lines.add(poll);
                while lines.held < CAPACITY {
                    match incoming.try_recv() {
                        Ok(poll) => lines.add(poll),
                        Err(_) => break,
                    }
                }
                lines.send_idle(&store);
            }
        }
    }
}

/// Runs one status script for `polls` (all of `event`) and hands each its answer.
async fn answer(store: Store, event: String, polls: Vec<Poll>) {
    let visitors: Vec<&str> = polls.iter().map(|p| p.visitor.as_str()).collect();
    let found = store.statuses(&event, &visitors, now_ms()).await;
    match found {
        Ok(Some(found)) => {
            for (poll, standing) in polls.into_iter().zip(found.standings) {
                let _ = poll.reply.send(Ok(Some(Answer {
                    standing,
                    waiting: found.waiting,
                    observed: found.observed,
                })));
            }
        }
        Ok(None) => polls.into_iter().for_each(|p| {
            let _ = p.reply.send(Ok(None));
        }),
        Err(e) => polls.into_iter().for_each(|p| {
            let _ = p.reply.send(Err(e.clone()));
        }),
    }
}
