//! `make bench` (draw part): the opening draw of a 300,000-entrant pre-queue on a local
//! six-node Redis Cluster, side by side with Redis's own floor for the same change.
//!
//! For each run (a fresh event):
//! 1. 300,000 entrants join the pre-queue through `join.lua` (1,000 per call);
//! 2. Redis memory (used_memory on the slot's master) before, with the pre-queue, and
//!    after the draw (which adds the published order);
//! 3. the draw (`draw.lua`, called chunk after chunk as the admission loop does): wall
//!    time as origin-queue sees it, and the longest chunk (how long the shard is busy
//!    at a time);
//! 4. the floor: one script that only rewrites the same 300,000 scores (ZRANGE + ZADD
//!    XX, no hashing, no sorting), on a copy of the line: what any reordering in Redis
//!    costs at least.
//!
//! `WR_DRAW_ENTRANTS` (default 300000) and `WR_DRAW_RUNS` (default 3) change the size
//! and the number of runs; the medians are printed with every run's figures.

use std::time::Instant;

use origin_queue::store::Drew;
use wr_tests::fixtures::{env_number, now};
use wr_tests::opening::{connect, load_entrants, prequeue_config};
use wr_tests::processes::RedisCluster;
use wr_tests::redis_nodes::{master_for, redis_cli, used_memory};

/// Rewrites every score of the sorted set `key` in chunks of 500 (the draw's chunks),
/// in one script: the floor of an atomic reordering.
const FLOOR: &str = "local total = redis.call('ZCARD', KEYS[1])
for from = 0, total - 1, 500 do
  local m = redis.call('ZRANGE', KEYS[1], from, from + 499)
  local args = {}
  for i = 1, #m do args[#args + 1] = total - from - i; args[#args + 1] = m[i] end
  redis.call('ZADD', KEYS[1], 'XX', unpack(args))
end
return total";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Run {
    load_secs: f64,
    draw_ms: f64,
    chunks: u32,
    longest_chunk_ms: f64,
    floor_ms: f64,
    line_bytes: f64,
    order_bytes: f64,
}

async fn one_run(nodes: &[String], run: usize, entrants: usize) -> Run {
    let event = format!("bench-draw-{}-{run}", std::process::id());
    let store = connect(nodes).await;
    let t = now();
    let (pre_opens, opens) = (t - 10, t + 3_600);
    store
        .configure(&event, &prequeue_config(pre_opens, opens), t * 1000)
        .await
        .expect("configure");
    let master = master_for(nodes, &format!("{{wr:{event}}}:q"));
    let empty = used_memory(&master);
    let loading = Instant::now();
    load_entrants(&store, &event, entrants, t * 1000).await;
    let load_secs = loading.elapsed().as_secs_f64();
    let with_line = used_memory(&master);

    // The floor, on a copy of the line (same slot), before the draw.
    let line = format!("{{wr:{event}}}:q");
    let copy = format!("{{wr:{event}}}:floor");
    redis_cli(&master, &["COPY", &line, &copy]);
    let floor = Instant::now();
    let floor_out = redis_cli(&master, &["EVAL", FLOOR, "1", &copy]);
    let floor_ms = floor.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(
        floor_out.trim(),
        entrants.to_string(),
        "floor script: {floor_out}"
    );
    redis_cli(&master, &["DEL", &copy]);

    let drawing = Instant::now();
    let mut chunks = 0;
    let mut longest_chunk_ms: f64 = 0.0;
    let drew = loop {
        let chunk = Instant::now();
        let drew = store.draw(&event, opens * 1000 + 1).await.expect("draw");
        longest_chunk_ms = longest_chunk_ms.max(chunk.elapsed().as_secs_f64() * 1000.0);
        chunks += 1;
        if !matches!(drew, Some(Drew::InProgress { .. })) {
            break drew;
        }
    };
    let draw_ms = drawing.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(
        drew,
        Some(Drew::Drawn {
            entrants: entrants as u64
        })
    );
    let after = used_memory(&master);
    for key in [
        "q", "drawn", "cfg", "seq", "draw", "seenx", "seen0", "seen1", "seen2", "stats",
    ] {
        redis_cli(&master, &["DEL", &format!("{{wr:{event}}}:{key}")]);
    }
    Run {
        load_secs,
        draw_ms,
        chunks,
        longest_chunk_ms,
        floor_ms,
        line_bytes: with_line.saturating_sub(empty) as f64 / entrants as f64,
        order_bytes: after.saturating_sub(with_line) as f64 / entrants as f64,
    }
}

fn main() {
    let entrants = env_number("WR_DRAW_ENTRANTS", 300_000);
    let runs = env_number("WR_DRAW_RUNS", 3).max(1);
    println!("command: cargo run -q --release -p wr-tools --bin bench-draw  (WR_DRAW_ENTRANTS={entrants} WR_DRAW_RUNS={runs})");
    let cluster = RedisCluster::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut all = Vec::new();
    for run in 0..runs {
        let r = rt.block_on(one_run(&cluster.nodes, run, entrants));
        println!(
            "run {}: loaded in {:.1} s; draw {:.0} ms in {} chunks (longest {:.0} ms), floor {:.0} ms ({:.1}x); memory {:.0} B/entrant in line, +{:.0} B/entrant for the published order",
            run + 1,
            r.load_secs,
            r.draw_ms,
            r.chunks,
            r.longest_chunk_ms,
            r.floor_ms,
            r.draw_ms / r.floor_ms,
            r.line_bytes,
            r.order_bytes
        );
        all.push(r);
    }
    let m = |f: fn(&Run) -> f64| median(all.iter().map(f).collect());
    println!(
        "median of {runs}: {entrants} entrants drawn in {:.0} ms, the longest chunk {:.0} ms (floor {:.0} ms, ratio {:.1}x); Redis memory {:.0} B/entrant for the line + {:.0} B/entrant for the published order ({:.1} MB in all)",
        m(|r| r.draw_ms),
        m(|r| r.longest_chunk_ms),
        m(|r| r.floor_ms),
        m(|r| r.draw_ms / r.floor_ms),
        m(|r| r.line_bytes),
        m(|r| r.order_bytes),
        (m(|r| r.line_bytes) + m(|r| r.order_bytes)) * entrants as f64 / 1e6
    );
}
