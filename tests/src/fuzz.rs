//! A small mutation fuzzer for the parsers that face attackers, usable on stable Rust.
//!
//! `cargo fuzz` needs a nightly toolchain, which this project's machines cannot fetch, so
//! this is the equivalent that runs here: each [`Target`] starts from a corpus of valid
//! inputs (`tests/fuzz/corpus/<target>/*`, plus seeds built in code), mutates them
//! (bit flips, byte edits with delimiter and non-UTF-8 bytes, inserts, deletions,
//! duplications, splices, truncation) and feeds every input to the code under test in
//! [`std::panic::catch_unwind`]. It counts executions, **crashes** (panics) and **false
//! accepts** (an input accepted that was not one of the validly signed seeds), and
//! writes each crashing input to `target/fuzz-crashes/<target>/` so it can be added to
//! the corpus once fixed. Runs are bounded in time and reproducible from their seed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use wr_pass::TokenKind;

use crate::fixtures::workspace_root;

mod edge;
mod queue_http;

use edge::{filter_config_target, filter_request_target, token_target};
pub use queue_http::{queue_http_fixture, queue_http_target};

/// What one fuzz run did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// The target's name.
    pub target: &'static str,
    /// The RNG seed (set `WR_FUZZ_SEED` to replay).
    pub seed: u64,
    /// Inputs executed.
    pub executions: u64,
    /// Inputs that panicked.
    pub crashes: u64,
    /// Inputs accepted although they were not validly signed.
    pub false_accepts: u64,
    /// Inputs the code under test accepted (valid ones included).
    pub accepted: u64,
}

/// Outcome of one input.
enum Verdict {
    Rejected,
    Accepted,
    FalseAccept,
}

/// Runs one input through the code under test and judges the outcome.
type Check = Box<dyn Fn(&[u8]) -> Verdict>;

/// A fuzz target: seeds and a check of one input.
pub struct Target {
    /// Name, also the corpus folder.
    pub name: &'static str,
    seeds: Vec<Vec<u8>>,
    check: Check,
}

/// The targets that need no server, by name: `pass`, `ticket`, `filter-config`,
/// `filter-request`. (`queue-http` needs a running origin-queue: [`queue_http_target`].)
pub fn targets() -> Vec<Target> {
    vec![
        token_target("pass", TokenKind::Pass),
        token_target("ticket", TokenKind::Ticket),
        filter_config_target(),
        filter_request_target(),
    ]
}

/// How long one run lasts: at least `time` and at least `executions` inputs, so a
/// slow target on a busy machine still gets its floor of inputs; but never more than
/// [`Budget::CEILING`] times `time`, so a run stays bounded.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The least time to run.
    pub time: Duration,
    /// The least number of inputs to run.
    pub executions: u64,
}

impl Budget {
    /// How many times `time` a run may last while it is still short of `executions`.
    pub const CEILING: u32 = 10;
}

/// Runs `target` for `budget` with RNG `seed`.
pub fn run(target: &Target, budget: Budget, seed: u64) -> Report {
    let mut corpus = target.seeds.clone();
    corpus.extend(read_corpus(target.name));
    let mut rng = Rng(seed | 1);
    let mut report = Report {
        target: target.name,
        seed,
        ..Report::default()
    };
    // Keep panics quiet: they are counted and saved, not printed per input.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let start = Instant::now();
    let (end, ceiling) = (start + budget.time, start + budget.time * Budget::CEILING);
    // The seeds themselves first, unmutated.
    let mut pending: Vec<Vec<u8>> = corpus.clone();
    loop {
        let now = Instant::now();
        let floor_met = report.executions >= budget.executions;
        if now >= ceiling || (now >= end && floor_met) {
            break;
        }
        for _ in 0..64 {
            let input = pending.pop().unwrap_or_else(|| mutate(&mut rng, &corpus));
            report.executions += 1;
            match catch_unwind(AssertUnwindSafe(|| (target.check)(&input))) {
                Ok(Verdict::Rejected) => {}
                Ok(Verdict::Accepted) => report.accepted += 1,
                Ok(Verdict::FalseAccept) => {
                    report.false_accepts += 1;
                    save(target.name, "false-accept", &input, "accepted");
                }
                Err(payload) => {
                    report.crashes += 1;
                    let why = payload
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| payload.downcast_ref::<&str>().copied())
                        .unwrap_or("panic");
                    save(target.name, "crash", &input, why);
                }
            }
        }
    }
    std::panic::set_hook(hook);
    report
}

/// A seed from `WR_FUZZ_SEED`, else from the clock.
pub fn seed_from_env() -> u64 {
    std::env::var("WR_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

fn corpus_dir(name: &str) -> PathBuf {
    workspace_root().join("tests/fuzz/corpus").join(name)
}

fn read_corpus(name: &str) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(corpus_dir(name)) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect()
}

/// Saves a failing input, and beside it (`.why`) what went wrong.
fn save(target: &str, kind: &str, input: &[u8], why: &str) {
    let dir = crate::fixtures::target_dir()
        .join("fuzz-crashes")
        .join(target);
    let _ = std::fs::create_dir_all(&dir);
    let name = format!("{kind}-{:016x}", fnv(input));
    let _ = std::fs::write(dir.join(&name), input);
    let _ = std::fs::write(dir.join(format!("{name}.why")), why);
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// xorshift64*: small, fast, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the parsers: delimiters, quotes, escapes, non-UTF-8.
const INTERESTING: &[u8] = b".|=;,:\"\\/ \t\r\n\0{}[]%-_+~\x7f\x80\xc3\xff";

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut input = corpus[rng.below(corpus.len())].clone();
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                let byte = if rng.below(2) == 0 {
                    INTERESTING[rng.below(INTERESTING.len())]
                } else {
                    rng.next() as u8
                };
                input.insert(i, byte);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                input.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let copy = input[i..i + n].to_vec();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, copy);
            }
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(input.len() + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => input.truncate(rng.below(len)),
            _ => {
                let i = rng.below(len + 1);
                let n = rng.below(8);
                input.splice(i..i, std::iter::repeat_n(rng.next() as u8, n));
            }
        }
    }
    input
}
