//! The edges' decision counters, for the console: Envoy's `wasmcustom.wr_edge_*` stats
//! read from each Envoy admin address the autopilot reads (`WR_AUTOPILOT_ENVOY_ADMIN`),
//! summed. Never on a visitor's request.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest wait for one Envoy.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Largest answer read.
const MAX_BYTES: usize = 1 << 20;
/// The prefix Envoy gives the filter's counters.
const PREFIX: &str = "wasmcustom.";

/// Counter name (`wr_edge_admitted`) → value, summed over the Envoys that answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EdgeCounters {
    /// How many Envoys answered.
    pub envoys: usize,
    /// The counters.
    pub counters: BTreeMap<String, u64>,
}

/// Envoy's `/stats?format=json`.
#[derive(Deserialize)]
struct StatsPage {
    #[serde(default)]
    stats: Vec<Stat>,
}

#[derive(Deserialize)]
struct Stat {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: Option<serde_json::Value>,
}

/// Adds the `wr_edge_*` counters of one Envoy's JSON stats to `into`; false if the
/// page is not Envoy's stats.
fn add_page(body: &[u8], into: &mut BTreeMap<String, u64>) -> bool {
    let Ok(page) = serde_json::from_slice::<StatsPage>(body) else {
        return false;
    };
    for stat in page.stats {
        let Some(name) = stat.name.strip_prefix(PREFIX) else {
            continue;
        };
        if !name.starts_with("wr_edge_") {
            continue;
        }
        if let Some(value) = stat.value.as_ref().and_then(serde_json::Value::as_u64) {
            *into.entry(name.to_owned()).or_default() += value;
        }
    }
    true
}

/// Reads the Envoys.
pub struct Reader {
    envoys: Vec<String>,
    client: reqwest::Client,
}

impl Reader {
    /// For these Envoy admin base addresses (none: the console shows no edge figures).
    pub fn new(envoys: Vec<String>) -> Reader {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_default();
        Reader { envoys, client }
    }

    /// The sum over the Envoys that answered; `None` if none did.
    pub async fn read(&self) -> Option<EdgeCounters> {
        let mut sum = EdgeCounters::default();
        for base in &self.envoys {
            let url = format!("{base}/stats?format=json&filter=%5Ewasmcustom%5C.wr_edge_");
            let body = async {
                let mut response = self.client.get(&url).send().await.ok()?;
                if !response.status().is_success()
                    || response
                        .content_length()
                        .is_some_and(|n| n > MAX_BYTES as u64)
                {
                    return None;
                }
                // Read no more than MAX_BYTES, whatever the sender says.
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.ok()? {
                    if body.len() + chunk.len() > MAX_BYTES {
                        return None;
                    }
                    body.extend_from_slice(&chunk);
                }
                Some(body)
            }
            .await;
            if let Some(body) = body {
                if add_page(&body, &mut sum.counters) {
                    sum.envoys += 1;
                }
            }
        }
        (sum.envoys > 0).then_some(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_filters_counters_are_read_and_envoys_add_up() {
        let page = br#"{"stats":[
            {"name":"wasmcustom.wr_edge_admitted","value":7},
            {"name":"wasmcustom.wr_edge_denied","value":2},
            {"name":"wasmcustom.other","value":99},
            {"name":"cluster.x.upstream_rq","value":5},
            {"histograms":{}}
        ]}"#;
        let mut sum = BTreeMap::new();
        assert!(add_page(page, &mut sum));
        assert!(add_page(page, &mut sum));
        assert_eq!(sum.get("wr_edge_admitted"), Some(&14));
        assert_eq!(sum.get("wr_edge_denied"), Some(&4));
        assert_eq!(sum.len(), 2);
        assert!(!add_page(b"<html>", &mut sum));
    }
}
