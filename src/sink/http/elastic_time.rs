//! Where an Elasticsearch or OpenSearch load's time goes on the server: the nodes' `write` thread
//! pools (`GET /_nodes/stats/thread_pool`), read before and after the load for the tasks they
//! completed and rejected, and every 100 ms for their queues, on one extra HTTP connection; and
//! the indexing counters (`GET /_nodes/stats/indices/indexing`: documents indexed, time spent
//! indexing and throttled) before and after, when the server gives them.
//!
//! The counters are the nodes', over every client: on a shared cluster the rejections may be
//! another client's. A server that answers the thread-pool stats with an error (a 403 for a user
//! without the `monitor` privilege, a 404 behind a proxy) gets one warning and no figures.

use serde::Serialize;
use serde_json::Value;

use super::HttpClient;
use crate::http_client::{answer_excerpt, HttpOptions};
use crate::sampler::{sample_until, Stop};
use crate::target::HttpTarget;

/// The nodes' write thread pools, trimmed to what is read.
const THREAD_POOL: &str = "/_nodes/stats/thread_pool?filter_path=nodes.*.thread_pool.write";
/// The nodes' indexing counters, likewise.
const INDEXING: &str = "/_nodes/stats/indices/indexing?filter_path=nodes.*.indices.indexing";

/// What the nodes' write pools and indexing did during the load.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct WritePoolTime {
    /// Nodes that reported their write pool.
    pub nodes: usize,
    /// Thread-pool samples taken, one per 100 ms.
    pub samples: u64,
    /// Write tasks (a bulk request's part for one shard) the pools rejected during the load: the
    /// server answered those items or requests with 429.
    pub rejected: u64,
    /// Write tasks they completed.
    pub completed: u64,
    /// The longest queue one node's pool had in a sample.
    pub peak_queue: u64,
    /// `indices.indexing` during the load: documents indexed, the time the shards spent indexing
    /// them, and the time indexing was throttled (merges behind).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_time_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_s: Option<f64>,
}

/// The nodes' write pools in one answer: completed, rejected, the longest queue, nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Pools {
    completed: u64,
    rejected: u64,
    queue: u64,
    nodes: usize,
}

/// Connects to the first host of `target`, reads the counters, samples the queues until `stop`,
/// and reads the counters again: the watch a [`Sampler`](crate::sampler::Sampler) runs.
pub(crate) fn watch(
    target: &HttpTarget,
    options: &HttpOptions,
    stop: &Stop,
) -> Result<WritePoolTime, String> {
    let client = HttpClient::new(&target.single_host(0), options).map_err(|err| err.to_string())?;
    let get = |path: &str| -> Result<Value, String> {
        let answer = client
            .send("GET", path, "application/json", b"")
            .map_err(|err| err.to_string())?;
        let endpoint = path.split('?').next().unwrap_or(path);
        if answer.status != 200 {
            return Err(format!(
                "GET {endpoint} answered HTTP {}: {}",
                answer.status,
                answer_excerpt(&answer.body)
            ));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|err| format!("GET {endpoint} answered no JSON: {err}"))
    };
    let before = pools(&get(THREAD_POOL)?);
    let indexed_before = get(INDEXING).ok().map(|answer| indexing(&answer));
    let (mut samples, mut peak_queue) = (0, before.queue);
    sample_until(stop, || {
        peak_queue = peak_queue.max(pools(&get(THREAD_POOL)?).queue);
        samples += 1;
        Ok::<(), String>(())
    })?;
    let after = pools(&get(THREAD_POOL)?);
    let indexed = indexed_before
        .zip(get(INDEXING).ok().map(|answer| indexing(&answer)))
        .map(|(before, after)| [0, 1, 2].map(|at| after[at].saturating_sub(before[at])));
    Ok(WritePoolTime {
        nodes: after.nodes,
        samples,
        rejected: after.rejected.saturating_sub(before.rejected),
        completed: after.completed.saturating_sub(before.completed),
        peak_queue: peak_queue.max(after.queue),
        index_total: indexed.map(|indexed| indexed[0]),
        index_time_s: indexed.map(|indexed| indexed[1] as f64 / 1000.0),
        throttle_time_s: indexed.map(|indexed| indexed[2] as f64 / 1000.0),
    })
}

/// The nodes of a node-stats answer.
fn nodes(answer: &Value) -> impl Iterator<Item = &Value> {
    answer["nodes"]
        .as_object()
        .into_iter()
        .flat_map(|nodes| nodes.values())
}

/// The write pools of a `thread_pool` answer, summed over the nodes (the longest queue of one).
fn pools(answer: &Value) -> Pools {
    nodes(answer)
        .map(|node| &node["thread_pool"]["write"])
        .filter(|pool| pool.is_object())
        .fold(Pools::default(), |sum, pool| {
            let count = |name: &str| pool[name].as_u64().unwrap_or(0);
            Pools {
                completed: sum.completed + count("completed"),
                rejected: sum.rejected + count("rejected"),
                queue: sum.queue.max(count("queue")),
                nodes: sum.nodes + 1,
            }
        })
}

/// Documents indexed, milliseconds indexing and milliseconds throttled, summed over the nodes.
fn indexing(answer: &Value) -> [u64; 3] {
    nodes(answer).fold([0; 3], |sum, node| {
        let indexing = &node["indices"]["indexing"];
        let count = |name: &str| indexing[name].as_u64().unwrap_or(0);
        [
            sum[0] + count("index_total"),
            sum[1] + count("index_time_in_millis"),
            sum[2] + count("throttle_time_in_millis"),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_and_indexing_are_summed_over_the_nodes() {
        let answer = serde_json::json!({"nodes": {
            "a": {"thread_pool": {"write": {"completed": 10, "rejected": 2, "queue": 5}},
                  "indices": {"indexing": {"index_total": 100, "index_time_in_millis": 40,
                                           "throttle_time_in_millis": 0}}},
            "b": {"thread_pool": {"write": {"completed": 7, "rejected": 1, "queue": 9}},
                  "indices": {"indexing": {"index_total": 50, "index_time_in_millis": 20,
                                           "throttle_time_in_millis": 3}}}
        }});
        assert_eq!(
            pools(&answer),
            Pools {
                completed: 17,
                rejected: 3,
                queue: 9,
                nodes: 2
            }
        );
        assert_eq!(indexing(&answer), [150, 60, 3]);
        assert_eq!(pools(&serde_json::json!({})), Pools::default());
    }
}
