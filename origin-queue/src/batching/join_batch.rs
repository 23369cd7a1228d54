//! Joins, batched per event into one join script call (see `per_event_batch`). The
//! order of arrival at the collector is the order of the places in line.

use crate::batching::per_event_batch::{Answers, Batcher};
use crate::clock::now_ms;
use crate::event::Observed;
use crate::store::{Guard, JoinRequest, Joined, Store, StoreError};

/// What a join found or did.
#[derive(Debug)]
pub struct Placed {
    /// The visitor's place, or why it has none.
    pub joined: Joined,
    /// In line, for the whole event.
    pub waiting: u64,
    /// The ETA inputs.
    pub observed: Observed,
    /// What the event asks of joins and passes now.
    pub guard: Guard,
}

/// The front of the join batches; cheap to share.
pub struct JoinBatcher {
    batches: Batcher<JoinRequest, Placed>,
    store: Store,
}

impl JoinBatcher {
    /// Starts the collector on the store's runtime.
    pub fn start(store: Store) -> JoinBatcher {
        JoinBatcher {
            batches: Batcher::start(store.clone(), "joins", "join.lua", joins),
            store,
        }
    }

    /// Joins a visitor to `event`'s line, or finds its place. A new place is answered
    /// only once the configured replicas hold it (see `Store::confirm_placed`).
    pub async fn join(&self, event: &str, join: JoinRequest) -> Result<Placed, StoreError> {
        let placed = self.batches.ask(event, join).await?;
        if let Joined::Waiting {
            new_seq: Some(_), ..
        }
        | Joined::InDraw {
            new_seq: Some(_), ..
        } = placed.joined
        {
            self.store.confirm_placed(event).await?;
        }
        Ok(placed)
    }
}

/// One join script call for the `joins` of `event`, in arrival order.
fn joins(store: Store, event: String, joins: Vec<JoinRequest>) -> Answers<Placed> {
    Box::pin(async move {
        let asked: Vec<&JoinRequest> = joins.iter().collect();
        let Some(found) = store.joins(&event, &asked, now_ms()).await? else {
            let no_event = |_| Placed {
                joined: Joined::NoEvent,
                waiting: 0,
                observed: Observed::default(),
                guard: Guard::default(),
            };
            return Ok(joins.iter().map(no_event).collect());
        };
        Ok(found
            .joined
            .into_iter()
            .map(|joined| Placed {
                joined,
                waiting: found.waiting,
                observed: found.observed,
                guard: found.guard,
            })
            .collect())
    })
}
