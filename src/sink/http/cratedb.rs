//! CrateDB over HTTP: `POST /_sql` with `stmt` (`INSERT … VALUES (?, …)`) and `bulk_args`, one
//! array per row. CrateDB answers 200 even when rows fail: `results[i].rowcount` is 1 for a stored
//! row and -2 for a failed one (newer servers add `error: {code, message}`, older ones
//! `error_message`). Whole-request errors come as non-200 with `{"error": {"message", "code"}}`:
//! 4290 (throttled) and 503x are worth retrying; 4041 is an unknown table.

use serde::Deserialize;

use super::{
    answer_excerpt, encode_rows, parse_answer, parse_json, status_failure, HttpClient, Item,
    Judgement, Protocol,
};
use crate::ddl::{self, Flavor};
use crate::failure::Failure;
use crate::rows::{Batch, RowFormat, Schema};
use crate::sql::TableName;

pub(crate) struct CrateDb {
    /// `/_sql` and the target URL's query.
    endpoint: String,
    /// `{"stmt":"INSERT …","bulk_args":[` up to the rows.
    body_start: String,
    table: TableName,
}

#[derive(Deserialize)]
struct BulkAnswer {
    results: Option<Vec<BulkResult>>,
}

#[derive(Deserialize)]
struct BulkResult {
    rowcount: i64,
    error: Option<ErrorDetail>,
    error_message: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
    code: Option<i64>,
}

impl CrateDb {
    /// Creates the table when asked (CREATE TABLE IF NOT EXISTS) and builds the insert statement.
    pub(crate) fn prepare(
        client: &HttpClient,
        table: &TableName,
        schema: &Schema,
        create: bool,
    ) -> Result<CrateDb, Failure> {
        let target = client.target.clone();
        if create {
            let stmt = ddl::create_table(Flavor::CrateDb, table, schema, true);
            let body = serde_json::json!({ "stmt": stmt }).to_string();
            let answer = client.send("POST", "/_sql", "application/json", body.as_bytes())?;
            if answer.status != 200 {
                return Err(failure(&target, table, answer.status, &answer.body));
            }
        }
        let placeholders = vec!["?"; schema.columns.len()].join(", ");
        let stmt = format!(
            "INSERT INTO {} ({}) VALUES ({placeholders})",
            table.quoted(),
            schema.quoted_column_list()
        );
        Ok(CrateDb {
            endpoint: format!("/_sql{}", super::query_suffix(client)),
            body_start: format!(
                "{{\"stmt\":{},\"bulk_args\":[",
                serde_json::Value::String(stmt)
            ),
            table: table.clone(),
        })
    }
}

/// The rows of a `SELECT` over `_sql`.
#[derive(Deserialize)]
struct SelectAnswer {
    #[serde(default)]
    rows: Vec<Vec<serde_json::Value>>,
}

/// What CrateDB's `information_schema` says of `table` (in the `doc` schema unless named): its
/// columns' rows (`column_name`, `data_type`, `is_nullable`, `column_default`,
/// `generation_expression`, `character_maximum_length`, in ordinal order, sub-columns `obj['x']`
/// included) and its primary key's columns; no rows when the table does not exist.
pub(crate) fn catalog(
    client: &HttpClient,
    table: &TableName,
) -> Result<(Vec<Vec<serde_json::Value>>, Vec<String>), Failure> {
    let columns = select(
        client,
        table,
        "SELECT column_name, data_type, is_nullable, column_default, generation_expression, \
         character_maximum_length FROM information_schema.columns \
         WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
    )?;
    let key = select(
        client,
        table,
        "SELECT k.column_name FROM information_schema.key_column_usage k \
         JOIN information_schema.table_constraints c ON c.constraint_name = k.constraint_name \
         AND c.table_schema = k.table_schema AND c.table_name = k.table_name \
         WHERE c.constraint_type = 'PRIMARY KEY' AND k.table_schema = ? AND k.table_name = ? \
         ORDER BY k.ordinal_position",
    )?;
    let key = key
        .iter()
        .filter_map(|row| row.first()?.as_str().map(str::to_string))
        .collect();
    Ok((columns, key))
}

/// Runs `stmt` with the table's schema and name as its two arguments and returns the rows.
fn select(
    client: &HttpClient,
    table: &TableName,
    stmt: &str,
) -> Result<Vec<Vec<serde_json::Value>>, Failure> {
    let schema = table.schema.as_deref().unwrap_or("doc");
    let body = serde_json::json!({ "stmt": stmt, "args": [schema, table.name] }).to_string();
    let answer = client.send(
        "POST",
        &format!("/_sql{}", super::query_suffix(client)),
        "application/json",
        body.as_bytes(),
    )?;
    if answer.status != 200 {
        return Err(failure(&client.target, table, answer.status, &answer.body));
    }
    parse_json::<SelectAnswer>(&client.target, &answer.body).map(|answer| answer.rows)
}

impl Protocol for CrateDb {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn content_type(&self) -> &'static str {
        "application/json"
    }

    fn body(&self, batch: &dyn Batch, rows: &[usize], out: &mut Vec<u8>) {
        out.extend_from_slice(self.body_start.as_bytes());
        encode_rows(batch, rows, RowFormat::JsonArrays, out);
        out.extend_from_slice(b"]}");
    }

    fn judge(&self, target: &str, status: u16, body: &[u8], rows: usize) -> Judgement {
        judge(target, &self.table, status, body, rows)
    }
}

/// What CrateDB's answer to a bulk insert into `table` of `rows` rows means.
pub(super) fn judge(
    target: &str,
    table: &TableName,
    status: u16,
    body: &[u8],
    rows: usize,
) -> Judgement {
    if status != 200 {
        return Judgement::Failed(failure(target, table, status, body));
    }
    let answer: BulkAnswer = match parse_answer(target, body) {
        Ok(answer) => answer,
        Err(failed) => return failed,
    };
    let Some(results) = answer.results else {
        return Judgement::Stored;
    };
    let items = results
        .into_iter()
        .map(|result| {
            if result.rowcount > 0 {
                return Item::Stored;
            }
            if result.rowcount == 0 && result.error.is_none() && result.error_message.is_none() {
                // An INSERT of one row that stored nothing, without saying why: not loaded.
                return Item::Rejected("CrateDB stored nothing for the row (rowcount 0)".into());
            }
            let duplicate = result.error.as_ref().and_then(|error| error.code) == Some(4091)
                || result
                    .error_message
                    .as_deref()
                    .is_some_and(|message| message.contains("DuplicateKeyException"));
            let message = result
                .error
                .and_then(|error| error.message)
                .or(result.error_message)
                .unwrap_or_else(|| {
                    format!(
                        "CrateDB did not store the row (rowcount {})",
                        result.rowcount
                    )
                });
            if duplicate {
                Item::Duplicate(message)
            } else {
                Item::Rejected(message)
            }
        })
        .collect();
    Judgement::items(target, items, rows)
}

/// What a non-200 CrateDB answer means, by its error code first and its HTTP status second.
fn failure(target: &str, table: &TableName, status: u16, body: &[u8]) -> Failure {
    let error = serde_json::from_slice::<ErrorAnswer>(body)
        .ok()
        .map(|answer| answer.error);
    let code = error.as_ref().and_then(|error| error.code);
    let message = error
        .and_then(|error| error.message)
        .unwrap_or_else(|| answer_excerpt(body));
    match code {
        Some(4290) => Failure::Transient {
            kind: "throttled",
            message: format!("{target} is throttling (4290): {message}"),
        },
        Some(code) if (5030..5040).contains(&code) => Failure::Transient {
            kind: "unavailable",
            message: format!("{target} is unavailable ({code}): {message}"),
        },
        Some(4041) => Failure::Permanent {
            kind: "missing_table",
            message: format!("table {table} does not exist at {target}; add --create to create it"),
        },
        // A 500 with CrateDB's own code is an error it judged (5000: an unhandled one), not an
        // overload: retrying it would spend the budget on the same answer.
        Some(code) if status == 500 => Failure::Permanent {
            kind: "server",
            message: format!("{target} refused the request (HTTP 500, code {code}): {message}"),
        },
        _ => match status_failure(target, status, body) {
            Failure::Permanent { kind, .. } if kind == "server" => Failure::Permanent {
                kind,
                message: format!("{target} refused the request (HTTP {status}): {message}"),
            },
            other => other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TableName {
        TableName::parse("t").unwrap()
    }

    #[test]
    fn row_counts_become_item_results() {
        let answer =
            br#"{"results":[{"rowcount":1},{"rowcount":-2,"error":{"code":4000,"message":"bad"}},
            {"rowcount":-2,"error_message":"old"}]}"#;
        let Judgement::Items(items) = judge("h", &table(), 200, answer, 3) else {
            panic!("per-item results")
        };
        assert_eq!(
            items,
            [
                Item::Stored,
                Item::Rejected("bad".into()),
                Item::Rejected("old".into())
            ]
        );
    }

    #[test]
    fn a_duplicate_key_is_told_apart_by_its_code_or_its_old_message() {
        let answer = br#"{"results":[{"rowcount":-2,"error":{"code":4091,"message":"dup"}},
            {"rowcount":-2,"error_message":"DuplicateKeyException[A document with the same primary key exists already]"},
            {"rowcount":-2,"error":{"code":4000,"message":"other"}}]}"#;
        let Judgement::Items(items) = judge("h", &table(), 200, answer, 3) else {
            panic!("per-item results")
        };
        assert!(matches!(&items[0], Item::Duplicate(m) if m == "dup"));
        assert!(matches!(&items[1], Item::Duplicate(m) if m.starts_with("DuplicateKeyException")));
        assert_eq!(items[2], Item::Rejected("other".into()));
    }

    #[test]
    fn a_row_count_of_zero_is_not_a_stored_row() {
        let answer = br#"{"results":[{"rowcount":1},{"rowcount":0}]}"#;
        let Judgement::Items(items) = judge("h", &table(), 200, answer, 2) else {
            panic!("per-item results")
        };
        assert_eq!(items[0], Item::Stored);
        assert!(matches!(&items[1], Item::Rejected(m) if m.contains("rowcount 0")));
    }

    /// Like the `_bulk` answer the `answers` fuzz target found: `results` of another length than
    /// the rows sent was judged `Items` with the wrong number of results.
    #[test]
    fn a_result_count_other_than_the_rows_sent_is_a_protocol_failure() {
        for answer in [
            &br#"{"results":[]}"#[..],
            br#"{"results":[{"rowcount":1}]}"#,
        ] {
            let judged = judge("h", &table(), 200, answer, 2);
            assert!(
                matches!(
                    judged,
                    Judgement::Failed(Failure::Permanent {
                        kind: "protocol",
                        ..
                    })
                ),
                "{judged:?}"
            );
        }
    }
}
