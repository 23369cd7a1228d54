//! The opening draw of a 200,000-entrant pre-queue while something fails under it: the
//! event's Redis master is killed (SIGKILL) mid-draw and its replica takes over, the
//! replica is killed, or the origin-queue process drawing is killed. Each time another
//! origin-queue instance joins in; exactly one draw completes, every entrant has
//! exactly one place, and the line is the published order, recomputed here from the
//! published seed.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use wr_tests::fixtures::{now, wait_until};
use wr_tests::in_process::InProcessQueue;
use wr_tests::opening::{connect, entrant_id, load_entrants, prequeue_config};
use wr_tests::processes::{OriginQueue, RedisCluster};
use wr_tests::queue_client::{commitment_of, recompute_draw};
use wr_tests::redis_nodes::{
    master_for, pid_of, redis_cli, replica_of, wait_replica_caught_up, wait_replica_online,
};

const ENTRANTS: usize = 200_000;

/// What dies mid-draw.
enum Victim {
    Master,
    Replica,
    /// The origin-queue process that was drawing.
    Instance,
}

/// `event` with `ENTRANTS` in its pre-queue, all on the replica too. Returns the
/// master's port.
fn prequeue_of_200k(rt: &tokio::runtime::Runtime, cluster: &RedisCluster, event: &str) -> String {
    rt.block_on(async {
        let store = connect(&cluster.nodes).await;
        let t = now();
        store
            .configure(event, &prequeue_config(t - 10, t + 3_600), t * 1000)
            .await
            .unwrap();
        load_entrants(&store, event, ENTRANTS, t * 1000).await;
        let master = master_for(&cluster.nodes, &format!("{{wr:{event}}}:q"));
        wait_replica_online(&master);
        wait_replica_caught_up(&master);
        master
    })
}

/// Opens `event` (and so makes its draw due) a moment from now; the seed stays the
/// committed one.
fn open_now(rt: &tokio::runtime::Runtime, cluster: &RedisCluster, event: &str) {
    rt.block_on(async {
        let store = connect(&cluster.nodes).await;
        let t = now();
        store
            .configure(event, &prequeue_config(t - 10, t + 1), t * 1000)
            .await
            .unwrap();
    })
}

/// A field of the draw's record on the node at `port` ("" when absent).
fn draw_field(port: &str, event: &str, field: &str) -> String {
    redis_cli(port, &["HGET", &format!("{{wr:{event}}}:draw"), field])
}

/// Where the draw stands on the node at `port`: (entrants keyed, entrants placed,
/// draws completed), "" for each not there yet.
fn cursor(port: &str, event: &str) -> [String; 3] {
    ["keyed_to", "placed", "draws"].map(|f| draw_field(port, event, f))
}

/// The line on the node at `port`: (visitor, score) in order.
fn line_on(port: &str, event: &str) -> Vec<(String, u64)> {
    let out = redis_cli(
        port,
        &[
            "ZRANGE",
            &format!("{{wr:{event}}}:q"),
            "0",
            "-1",
            "WITHSCORES",
        ],
    );
    let items: Vec<&str> = out.lines().collect();
    items
        .chunks(2)
        .map(|p| (p[0].to_owned(), p[1].parse().expect("a score")))
        .collect()
}

fn draw_under_failure(victim: Victim, event: &str) {
    let cluster = RedisCluster::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let master = prequeue_of_200k(&rt, &cluster, event);
    let replica = replica_of(&master);
    let timeout = [("WR_REDIS_TIMEOUT_MS", "300")];
    let mut first = Some(OriginQueue::start(&cluster.nodes, &timeout));
    open_now(&rt, &cluster, event);
    // Mid-draw: the first chunks are done, the draw is not.
    assert!(
        wait_until(Duration::from_secs(20), || {
            let [keyed, _, draws] = cursor(&master, event);
            !keyed.is_empty() && keyed != "0" && draws.is_empty()
        }),
        "the draw never started: {:?}",
        cursor(&master, event)
    );
    let at_kill = cursor(&master, event);
    let node = match victim {
        Victim::Master => Some(&master),
        Victim::Replica => Some(&replica),
        Victim::Instance => None,
    };
    match node {
        Some(port) => assert!(Command::new("kill")
            .args(["-9", &pid_of(port)])
            .status()
            .unwrap()
            .success()),
        // Dropping the process guard kills it (SIGKILL).
        None => drop(first.take()),
    }
    let q = InProcessQueue::start(&cluster.nodes, &timeout);

    let mut record = Value::Null;
    assert!(
        wait_until(Duration::from_secs(60), || {
            record = wr_tests::http::get(q.addr, &format!("/v1/events/{event}/draw"), &[])
                .ok()
                .filter(|r| r.status == 200)
                .map(|r| r.json())
                .unwrap_or(Value::Null);
            record["seed"].is_string()
        }),
        "no draw completed within 60 s of the kill (cursor at the kill: {at_kill:?})"
    );
    eprintln!("killed mid-draw at cursor {at_kill:?}; record after: {record}");
    assert_eq!(record["draws"], 1, "exactly one draw: {record}");
    assert_eq!(record["entrants"], ENTRANTS, "{record}");
    let seed = record["seed"].as_str().unwrap();
    assert_eq!(commitment_of(seed), record["commitment"]);

    // Nobody lost or twice: the line holds every entrant once, in the order recomputed
    // from the seed, at places 1..N (the head may have been admitted already: burst 1).
    let serving = match victim {
        Victim::Master => &replica,
        Victim::Replica | Victim::Instance => &master,
    };
    let line = line_on(serving, event);
    let granted = redis_cli(
        serving,
        &["ZRANGE", &format!("{{wr:{event}}}:granted"), "0", "-1"],
    );
    let admitted: Vec<&str> = granted.lines().filter(|l| !l.is_empty()).collect();
    let ids: Vec<String> = (0..ENTRANTS).map(entrant_id).collect();
    let expected = recompute_draw(seed, &ids);
    assert!(admitted.len() <= 1, "{admitted:?}");
    assert!(admitted
        .iter()
        .copied()
        .eq(expected[..admitted.len()].iter().map(String::as_str)));
    assert_eq!(
        line.len() + admitted.len(),
        ENTRANTS,
        "entrants lost or added"
    );
    let first = admitted.len() as u64 + 1;
    let places: Vec<u64> = line.iter().map(|(_, s)| *s).collect();
    assert!(
        places.iter().copied().eq(first..=ENTRANTS as u64),
        "places are not 1..N"
    );
    let order: Vec<&String> = line.iter().map(|(v, _)| v).collect();
    assert!(
        order.iter().copied().eq(expected[admitted.len()..].iter()),
        "the line is not the published draw"
    );
    drop((q, first));
}

#[test]
fn a_master_killed_mid_draw_leaves_one_draw_and_every_entrant_placed_once() {
    draw_under_failure(Victim::Master, "t-draw-master");
}

#[test]
fn an_instance_killed_mid_draw_leaves_the_rest_to_another() {
    draw_under_failure(Victim::Instance, "t-draw-instance");
}

#[test]
fn a_replica_killed_mid_draw_leaves_one_draw_and_every_entrant_placed_once() {
    draw_under_failure(Victim::Replica, "t-draw-replica");
}
