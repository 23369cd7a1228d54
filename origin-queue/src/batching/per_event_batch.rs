//! Coalesces concurrent requests of one kind into one Redis script call per event.
//!
//! Status polls and joins each need the same shared reads (the event's configuration,
//! the ETA windows, the line length, the poll ring) and a round trip to the event's
//! master; joins also renew the lifetime of every key. At tens of thousands of calls a
//! second those dominated Redis's time, and one event lives on one master by design.
//! So requests go through a bounded channel to one collector, which keeps at most one
//! call in flight per event: the requests of an event that arrive while its call is in
//! flight all go into its next call (up to [`MAX_BATCH`]), in arrival order.
//!
//! There is no timer: a lone request goes out at once, so batching adds no latency
//! when the service is quiet, and batches grow with the load. Events do not wait for
//! each other: one event's slow master holds up only that event's requests.
//!
//! Overload is shed, not queued: when `CAPACITY` requests are already waiting, a
//! request is answered [`StoreError::Unavailable`] (503 + `Retry-After`) at once, and
//! none waits longer than twice the Redis timeout for its answer.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::{Id, JoinSet};

use crate::store::{Store, StoreError};

/// Most requests one call answers.
pub const MAX_BATCH: usize = 256;
/// Requests that may wait for their event's next call before new ones are shed.
const CAPACITY: usize = 4096;

/// The answers to one batch, in the order of its requests.
pub type Answers<A> = Pin<Box<dyn Future<Output = Result<Vec<A>, StoreError>> + Send>>;

/// Answers one batch: `(store, event, requests)`, all of one event, in arrival order.
pub type Call<R, A> = fn(Store, String, Vec<R>) -> Answers<A>;

struct Request<R, A> {
    event: String,
    request: R,
    reply: oneshot::Sender<Result<A, StoreError>>,
    /// The caller's batch span (disabled while traces are off): the script's span is
    /// made its child, so each caller's trace shows the call that answered it.
    span: tracing::Span,
}

/// The front of one collector; cheap to share.
pub struct Batcher<R, A> {
    requests: mpsc::Sender<Request<R, A>>,
    max_wait: Duration,
    /// What the requests are, for error messages and spans ("status polls", "joins").
    kind: &'static str,
}

/// The Lua script a batcher's calls run, for the spans (`join.lua`).
#[derive(Clone, Copy)]
struct Script(&'static str);

impl<R: Send + 'static, A: Send + 'static> Batcher<R, A> {
    /// Starts the collector on the store's runtime ([`Store::spawn`]); `call` answers
    /// each batch. It stops when the batcher is dropped.
    /// `script` names the Lua script `call` runs, for the traces.
    pub fn start(
        store: Store,
        kind: &'static str,
        script: &'static str,
        call: Call<R, A>,
    ) -> Batcher<R, A> {
        let max_wait = store.timeout() * 2;
        let (requests, incoming) = mpsc::channel(CAPACITY);
        store.spawn(collect(store.clone(), call, Script(script), incoming));
        Batcher {
            requests,
            max_wait,
            kind,
        }
    }

    /// Sends `request` for `event` with the next batch and waits for its answer.
    /// In a traced request, its span (`queue.batch`) lasts from the wait for the batch
    /// to the answer; in any other, there is none.
    pub async fn ask(&self, event: &str, request: R) -> Result<A, StoreError> {
        let span = if !crate::telemetry::in_traced_request() {
            tracing::Span::none()
        } else {
            crate::trace_span!(
                "queue.batch",
                wr.event = event,
                wr.batch.kind = self.kind,
                wr.batch.size = tracing::field::Empty,
            )
        };
        let (reply, answer) = oneshot::channel();
        let request = Request {
            event: event.to_owned(),
            request,
            reply,
            span: span.clone(),
        };
        let unavailable = |why: &str| StoreError::Unavailable(format!("{}: {why}", self.kind));
        self.requests.try_send(request).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => unavailable("too many waiting for Redis"),
            mpsc::error::TrySendError::Closed(_) => unavailable("collector stopped"),
        })?;
        match tokio::time::timeout(self.max_wait, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(unavailable("the batch's call ended without an answer")),
            Err(_) => Err(unavailable("timed out")),
        }
    }
}

/// Requests waiting for their event's next call, and the calls in flight.
struct Lines<R, A> {
    call: Call<R, A>,
    script: Script,
    /// Requests not yet sent, by event, in arrival order.
    waiting: HashMap<String, Vec<Request<R, A>>>,
    /// How many requests `waiting` holds.
    held: usize,
    /// Events with a call in flight, by the task running it (a few at a time: one per
    /// event with requests).
    in_flight: HashMap<Id, String>,
    calls: JoinSet<()>,
}

impl<R: Send + 'static, A: Send + 'static> Lines<R, A> {
    fn add(&mut self, request: Request<R, A>) {
        self.held += 1;
        // The event's name is copied only for its first waiting request.
        match self.waiting.get_mut(&request.event) {
            Some(queued) => queued.push(request),
            None => {
                self.waiting.insert(request.event.clone(), vec![request]);
            }
        }
    }

    /// Sends the next call of every event that has requests waiting and no call in
    /// flight.
    fn send_idle(&mut self, store: &Store) {
        let idle: Vec<String> = self
            .waiting
            .keys()
            .filter(|event| !self.in_flight.values().any(|busy| busy == *event))
            .cloned()
            .collect();
        for event in idle {
            self.send(store, event);
        }
    }

    /// Sends `event`'s next call: its oldest waiting requests, up to [`MAX_BATCH`],
    /// leaving out those whose caller has stopped waiting.
    fn send(&mut self, store: &Store, event: String) {
        while let Some(queued) = self.waiting.get_mut(&event) {
            let take = queued.len().min(MAX_BATCH);
            let batch: Vec<Request<R, A>> = queued
                .drain(..take)
                .filter(|r| !r.reply.is_closed())
                .collect();
            self.held -= take;
            if queued.is_empty() {
                self.waiting.remove(&event);
            }
            if batch.is_empty() {
                // Every one of those callers gave up: on to whoever came after them.
                continue;
            }
            // On the collector's runtime, the store's (see `Batcher::start`).
            let answered = answer(self.call, self.script, store.clone(), event.clone(), batch);
            let handle = self.calls.spawn(answered);
            self.in_flight.insert(handle.id(), event);
            return;
        }
    }

    /// A call ended (answered, failed, or its task died): the event may send again.
    fn finished(&mut self, store: &Store, task: Id) {
        if let Some(event) = self.in_flight.remove(&task) {
            self.send(store, event);
        }
    }
}

/// The collector: takes requests as they arrive and keeps one call in flight per event.
async fn collect<R: Send + 'static, A: Send + 'static>(
    store: Store,
    call: Call<R, A>,
    script: Script,
    mut incoming: mpsc::Receiver<Request<R, A>>,
) {
    let mut lines = Lines {
        call,
        script,
        waiting: HashMap::new(),
        held: 0,
        in_flight: HashMap::new(),
        calls: JoinSet::new(),
    };
    loop {
        tokio::select! {
            Some(done) = lines.calls.join_next_with_id(), if !lines.calls.is_empty() => {
                let task = match done {
                    Ok((task, ())) => task,
                    // The callers of a call that died get "ended without an answer".
                    Err(e) => e.id(),
                };
                lines.finished(&store, task);
            }
            request = incoming.recv(), if lines.held < CAPACITY => {
                let Some(request) = request else { return };
                lines.add(request);
                while lines.held < CAPACITY {
                    match incoming.try_recv() {
                        Ok(request) => lines.add(request),
                        Err(_) => break,
                    }
                }
                lines.send_idle(&store);
            }
        }
    }
}

/// Runs `call` for `batch` (all of `event`) and hands each request its answer.
/// Each caller's trace gets a `redis.script` span for the call, as long as the call.
async fn answer<R, A>(
    call: Call<R, A>,
    script: Script,
    store: Store,
    event: String,
    batch: Vec<Request<R, A>>,
) {
    let size = batch.len();
    let mut replies = Vec::with_capacity(size);
    let mut requests = Vec::with_capacity(size);
    let mut script_spans = Vec::new();
    for r in batch {
        if !r.span.is_disabled() {
            r.span.record("wr.batch.size", size);
            script_spans.push(crate::trace_span!(
                parent: &r.span,
                "redis.script",
                otel.name = script.0,
                otel.kind = "client",
                db.system.name = "redis",
                db.operation.name = "EVALSHA",
                wr.script = script.0,
                wr.batch.size = size,
            ));
        }
        replies.push(r.reply);
        requests.push(r.request);
    }
    let answered = call(store, event, requests).await;
    drop(script_spans);
    match answered {
        Ok(answers) => {
            // A short answer leaves the rest "ended without an answer".
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(Ok(answer));
            }
        }
        Err(e) => replies.into_iter().for_each(|reply| {
            let _ = reply.send(Err(e.clone()));
        }),
    }
}
