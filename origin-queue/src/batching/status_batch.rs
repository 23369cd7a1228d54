//! Status polls, batched per event into one status script call (see `per_event_batch`).

use crate::batching::per_event_batch::{Answers, Batcher};
use crate::clock::now_ms;
use crate::event::Observed;
use crate::store::{Guard, Standing, Store, StoreError};

/// What a status poll found.
#[derive(Debug)]
pub struct Answer {
    /// Where the visitor stands.
    pub standing: Standing,
    /// In line, for the whole event.
    pub waiting: u64,
    /// The ETA inputs.
    pub observed: Observed,
    /// What the event asks of passes now (the cut).
    pub guard: Guard,
}

/// The front of the status batches; cheap to share.
pub struct StatusBatcher(Batcher<String, Option<Answer>>);

impl StatusBatcher {
    /// Starts the collector on the store's runtime.
    pub fn start(store: Store) -> StatusBatcher {
        StatusBatcher(Batcher::start(
            store,
            "status polls",
            "status.lua",
            statuses,
        ))
    }

    /// Where `visitor` stands in `event` (`None`: no such event).
    pub async fn status(&self, event: &str, visitor: &str) -> Result<Option<Answer>, StoreError> {
        self.0.ask(event, visitor.to_owned()).await
    }
}

/// One status script call for `visitors` of `event`.
fn statuses(store: Store, event: String, visitors: Vec<String>) -> Answers<Option<Answer>> {
    Box::pin(async move {
        let asked: Vec<&str> = visitors.iter().map(String::as_str).collect();
        let Some(found) = store.statuses(&event, &asked, now_ms()).await? else {
            return Ok(visitors.iter().map(|_| None).collect());
        };
        Ok(found
            .standings
            .into_iter()
            .map(|standing| {
                Some(Answer {
                    standing,
                    waiting: found.waiting,
                    observed: found.observed,
                    guard: found.guard,
                })
            })
            .collect())
    })
}
