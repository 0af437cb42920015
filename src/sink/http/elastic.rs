//! Elasticsearch and OpenSearch: `POST /_bulk` with an action line and a source line per row.
//! Every document's `_id` is the row's key, so a resend overwrites instead of duplicating. The
//! answer is 200 with one item per row, in request order (another count is a protocol failure,
//! `"errors"` true or false), and `"errors": true` when some rows failed: items with status 429
//! (`es_rejected_execution_exception`, OpenSearch's `rejected_execution_exception`) or 5xx are
//! resent alone; other failed items are rejected.

use serde::Deserialize;

use super::{
    encode_rows, parse_answer, parse_json, status_failure, HttpClient, Item, Judgement, Protocol,
};
use crate::failure::Failure;
use crate::rows::{Batch, RowFormat, Schema, SqlType};
use crate::sql::TableName;

pub(crate) struct Elastic {
    /// `/_bulk` and the target URL's query.
    endpoint: String,
    /// `{"index":{"_index":"name","_id":"` up to the id.
    action_start: String,
}

#[derive(Deserialize)]
struct BulkAnswer {
    errors: bool,
    #[serde(default)]
    items: Vec<serde_json::Map<String, serde_json::Value>>,
}

impl Elastic {
    /// Creates the index with a mapping when asked (an existing index is kept).
    pub(crate) fn prepare(
        client: &HttpClient,
        table: &TableName,
        schema: &Schema,
        create: bool,
    ) -> Result<Elastic, Failure> {
        let target = client.target.clone();
        // The whole --table: index names may hold dots (logs-2026.01).
        let index = &table.to_string();
        if create {
            let properties: serde_json::Map<String, serde_json::Value> = schema
                .columns
                .iter()
                .map(|column| {
                    (
                        column.name.to_string(),
                        serde_json::json!({ "type": type_of(column.sql_type) }),
                    )
                })
                .collect();
            let body = serde_json::json!({ "mappings": { "properties": properties } }).to_string();
            let answer = client.send(
                "PUT",
                &format!("/{}", super::query_value(index)),
                "application/json",
                body.as_bytes(),
            )?;
            let exists = String::from_utf8_lossy(&answer.body).contains("already_exists_exception");
            if answer.status != 200 && !exists {
                return Err(status_failure(&target, answer.status, &answer.body));
            }
        }
        Ok(Elastic {
            endpoint: format!("/_bulk{}", super::query_suffix(client)),
            action_start: format!(
                "{{\"index\":{{\"_index\":{},\"_id\":",
                serde_json::Value::String(index.clone())
            ),
        })
    }
}

/// The index's mapping, as `GET /INDEX/_mapping` answers it; `None` when the index does not
/// exist.
pub(crate) fn mapping(
    client: &HttpClient,
    table: &TableName,
) -> Result<Option<serde_json::Value>, Failure> {
    let path = format!(
        "/{}/_mapping{}",
        super::query_value(&table.to_string()),
        super::query_suffix(client)
    );
    let answer = client.send("GET", &path, "application/json", b"")?;
    match answer.status {
        404 => Ok(None),
        200 => parse_json(&client.target, &answer.body).map(Some),
        status => Err(status_failure(&client.target, status, &answer.body)),
    }
}

impl Protocol for Elastic {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn content_type(&self) -> &'static str {
        "application/x-ndjson"
    }

    fn body(&self, batch: &dyn Batch, rows: &[usize], out: &mut Vec<u8>) {
        for &row in rows {
            out.extend_from_slice(self.action_start.as_bytes());
            serde_json::to_writer(&mut *out, &batch.row_key(row))
                .expect("writing JSON to a Vec cannot fail");
            out.extend_from_slice(b"}}\n");
            encode_rows(batch, &[row], RowFormat::Ndjson, out);
        }
    }

    fn judge(&self, target: &str, status: u16, body: &[u8], rows: usize) -> Judgement {
        judge(target, status, body, rows)
    }
}

/// What the answer to a `_bulk` request of `rows` rows means.
pub(super) fn judge(target: &str, status: u16, body: &[u8], rows: usize) -> Judgement {
    if status != 200 {
        return Judgement::Failed(status_failure(target, status, body));
    }
    let answer: BulkAnswer = match parse_answer(target, body) {
        Ok(answer) => answer,
        Err(failed) => return failed,
    };
    if !answer.errors {
        // `"errors": false` does not excuse a wrong count of items.
        return match Judgement::counted(target, answer.items.len(), rows) {
            Ok(()) => Judgement::Stored,
            Err(failed) => failed,
        };
    }
    let items: Vec<Item> = answer.items.iter().map(item_result).collect();
    // Every row refused for want of an index (auto-creation off) is one problem, not a reject
    // per row.
    if items.iter().any(|item| {
        matches!(item, Item::Rejected(message) if message.starts_with("index_not_found_exception"))
    }) {
        return Judgement::Failed(Failure::Permanent {
            kind: "missing_table",
            message: format!("the index does not exist at {}; add --create to create it", target),
        });
    }
    Judgement::items(target, items, rows)
}

/// One `_bulk` item (`{"index": {"status": 429, "error": {…}}}`) as an [`Item`].
fn item_result(item: &serde_json::Map<String, serde_json::Value>) -> Item {
    let Some(result) = item.values().next() else {
        return Item::Rejected("an empty item in the _bulk answer".into());
    };
    let status = result["status"].as_u64().unwrap_or(0);
    match status {
        200..=299 => Item::Stored,
        429 | 500..=599 => Item::Retry,
        _ => {
            let error = &result["error"];
            let kind = error["type"].as_str().unwrap_or("error");
            let reason = error["reason"].as_str().unwrap_or("no reason given");
            Item::Rejected(format!("{kind}: {reason} (status {status})"))
        }
    }
}

/// The mapping type of a column `--create` makes.
fn type_of(sql_type: SqlType) -> &'static str {
    match sql_type {
        SqlType::Bool => "boolean",
        SqlType::Int2 => "short",
        SqlType::Int4 => "integer",
        SqlType::Int8 => "long",
        SqlType::Float4 | SqlType::Float4Array => "float",
        SqlType::Float8 | SqlType::Numeric => "double",
        SqlType::Date | SqlType::Timestamp | SqlType::Timestamptz => "date",
        SqlType::Json | SqlType::Jsonb => "object",
        SqlType::Text | SqlType::Bytea | SqlType::Uuid | SqlType::Time | SqlType::Other => {
            "keyword"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_results_pair_with_the_rows_sent() {
        let answer = br#"{"errors":true,"items":[{"index":{"status":201}},
            {"index":{"status":429}},{"index":{"status":400,"error":{"type":"x","reason":"y"}}}]}"#;
        let Judgement::Items(items) = judge("h", 200, answer, 3) else {
            panic!("per-item results")
        };
        assert_eq!(
            items,
            [
                Item::Stored,
                Item::Retry,
                Item::Rejected("x: y (status 400)".into())
            ]
        );
    }

    #[test]
    fn a_wrong_item_count_fails_even_without_errors() {
        for items in [1, 3] {
            let answer = format!(
                r#"{{"errors":false,"items":[{}]}}"#,
                vec![r#"{"index":{"status":201}}"#; items].join(",")
            );
            assert!(matches!(
                judge("h", 200, answer.as_bytes(), 2),
                Judgement::Failed(Failure::Permanent {
                    kind: "protocol",
                    ..
                })
            ));
        }
        let two =
            br#"{"errors":false,"items":[{"index":{"status":201}},{"index":{"status":201}}]}"#;
        assert!(matches!(judge("h", 200, two, 2), Judgement::Stored));
    }

    /// Found by the `answers` fuzz target: an answer with `"errors": true` and fewer items than
    /// rows (here none: the key is misspelt) was judged `Items` with too few results.
    #[test]
    fn fewer_items_than_rows_is_a_protocol_failure() {
        let answer =
            br#"{"took":3,"errors":true,"mS":[{"index":{"star":{"t":"eption","reason":"l"}}}]}"#;
        let judged = judge("h", 200, answer, 2);
        assert!(
            matches!(
                &judged,
                Judgement::Failed(Failure::Permanent { kind: "protocol", message })
                    if message.starts_with("h answered 0 item results for 2 rows:")
            ),
            "{judged:?}"
        );
        let one_short = br#"{"errors":true,"items":[{"index":{"status":201}}]}"#;
        assert!(matches!(
            judge("h", 200, one_short, 2),
            Judgement::Failed(Failure::Permanent {
                kind: "protocol",
                ..
            })
        ));
    }
}
