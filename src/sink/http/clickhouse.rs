//! ClickHouse over HTTP: `INSERT INTO t (cols) FORMAT JSONEachRow` with one JSON object per row.
//! Failures are classified by ClickHouse's own error code (`Code: N.` in the plain-text answer, or
//! the `X-ClickHouse-Exception-Code` header of newer servers), not by the HTTP status: 202, 241 and
//! 252 (too many queries, memory limit, too many parts) are worth retrying. An insert either stores
//! the whole block or nothing; a data error names the bad row (`(at row N)`), which is rejected and
//! the others resent.

use super::{
    answer_excerpt, encode_rows, query_value, status_failure, HttpClient, Judgement, Protocol,
};
use crate::ddl::{self, clickhouse_ident, clickhouse_table, Flavor};
use crate::failure::Failure;
use crate::rows::{Batch, Columns, RowFormat, Schema};
use crate::sql::TableName;
use crate::target::HttpTarget;

pub(crate) struct ClickHouse {
    endpoint: String,
    table: TableName,
}

/// ClickHouse error codes worth retrying: too many simultaneous queries, memory limit exceeded,
/// too many parts (merges are behind).
const TRANSIENT_CODES: [u32; 3] = [202, 241, 252];

impl ClickHouse {
    /// Checks (or creates) the table and returns the protocol and the columns to load.
    pub(crate) fn prepare(
        client: &HttpClient,
        target: &HttpTarget,
        table: &TableName,
        columns: &Columns,
        create: bool,
    ) -> Result<(ClickHouse, Schema), Failure> {
        let settings = settings_of(target);
        let run = |sql: &str| run_query(client, target, table, sql);
        if create {
            // The mode's own columns hold no NULL; names and sniffed types may.
            let (created, nullable) = match columns {
                Columns::Fixed(schema) => (schema.clone(), false),
                Columns::Sniffed(schema) => (schema.clone(), true),
                Columns::Named(names) => (Schema::text(names), true),
                Columns::Table => {
                    return Err(Failure::Permanent {
                        kind: "schema",
                        message: "--create needs the column names: give --columns or --header"
                            .into(),
                    })
                }
            };
            run(&ddl::create_table(
                Flavor::ClickHouse,
                table,
                &created,
                nullable,
            ))?;
        }
        // Columns filled by the server (MATERIALIZED, ALIAS) cannot be inserted into.
        let existing = run(&format!(
            "SELECT name FROM system.columns WHERE {} \
             AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') FORMAT TSV",
            columns_of(table)
        ))?;
        let existing: Vec<&str> = existing.lines().collect();
        if existing.is_empty() {
            return Err(Failure::Permanent {
                kind: "missing_table",
                message: format!(
                    "table {table} does not exist at {target}; add --create to create it"
                ),
            });
        }
        let schema = match columns {
            Columns::Fixed(schema) | Columns::Sniffed(schema) => schema.clone(),
            Columns::Named(names) => Schema::text(names),
            Columns::Table => Schema::text(&existing),
        };
        if let Some(missing) = schema
            .columns
            .iter()
            .find(|column| !existing.contains(&column.name.as_ref()))
        {
            return Err(Failure::Permanent {
                kind: "schema",
                message: format!(
                    "table {table} has no column `{}`; its columns are {}",
                    missing.name,
                    existing.join(", ")
                ),
            });
        }
        let column_list: Vec<String> = schema
            .columns
            .iter()
            .map(|c| clickhouse_ident(&c.name))
            .collect();
        let insert = format!(
            "INSERT INTO {} ({}) FORMAT JSONEachRow",
            clickhouse_table(table),
            column_list.join(", ")
        );
        let protocol = ClickHouse {
            endpoint: format!("/?{settings}query={}", query_value(&insert)),
            table: table.clone(),
        };
        Ok((protocol, schema))
    }
}

/// The table's columns as `system.columns` has them: name, type and default kind (empty,
/// `DEFAULT`, `MATERIALIZED`, `ALIAS`), in order; empty when the table does not exist.
pub(crate) fn catalog(
    client: &HttpClient,
    target: &HttpTarget,
    table: &TableName,
) -> Result<Vec<[String; 3]>, Failure> {
    let answer = run_query(
        client,
        target,
        table,
        &format!(
            "SELECT name, type, default_kind FROM system.columns WHERE {} FORMAT TSV",
            columns_of(table)
        ),
    )?;
    Ok(answer
        .lines()
        .map(|line| {
            let mut fields = line.splitn(3, '\t').map(unescape_tsv);
            [(); 3].map(|()| fields.next().unwrap_or_default())
        })
        .collect())
}

/// Runs one statement about `table` (a `CREATE TABLE`), its answer discarded.
pub(crate) fn execute(
    client: &HttpClient,
    target: &HttpTarget,
    table: &TableName,
    sql: &str,
) -> Result<(), Failure> {
    run_query(client, target, table, sql).map(drop)
}

/// A field of ClickHouse's TSV output as it is: `\'` → `'`, `\\` → `\`, `\t` → tab.
fn unescape_tsv(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The `system.columns` (and `system.parts`) condition of `table`'s columns.
pub(super) fn columns_of(table: &TableName) -> String {
    let database = match &table.schema {
        Some(database) => literal(database),
        None => "currentDatabase()".into(),
    };
    format!("database = {database} AND table = {}", literal(&table.name))
}

/// The target's own query settings, before the query.
fn settings_of(target: &HttpTarget) -> String {
    target
        .query
        .as_ref()
        .map_or(String::new(), |query| format!("{query}&"))
}

/// Runs one statement and returns its answer's text.
pub(super) fn run_query(
    client: &HttpClient,
    target: &HttpTarget,
    table: &TableName,
    sql: &str,
) -> Result<String, Failure> {
    let answer = client.send(
        "POST",
        &format!("/?{}query={}", settings_of(target), query_value(sql)),
        "text/plain",
        b"",
    )?;
    if answer.status == 200 {
        return Ok(String::from_utf8_lossy(&answer.body).into_owned());
    }
    Err(failure(
        &target.to_string(),
        table,
        answer.status,
        &answer.body,
    ))
}

impl Protocol for ClickHouse {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn content_type(&self) -> &'static str {
        "application/x-ndjson"
    }

    fn body(&self, batch: &dyn Batch, rows: &[usize], out: &mut Vec<u8>) {
        encode_rows(batch, rows, RowFormat::JsonEachRow, out);
    }

    fn judge(&self, target: &str, status: u16, body: &[u8], rows: usize) -> Judgement {
        judge(target, &self.table, status, body, rows)
    }
}

/// What ClickHouse's answer to an insert into `table` of `rows` rows means.
pub(super) fn judge(
    target: &str,
    table: &TableName,
    status: u16,
    body: &[u8],
    rows: usize,
) -> Judgement {
    if status == 200 {
        return Judgement::Stored;
    }
    let text = String::from_utf8_lossy(body);
    if let Some(row) = bad_row(&text).filter(|row| (1..=rows).contains(row)) {
        if !code_of(&text).is_some_and(|code| TRANSIENT_CODES.contains(&code)) {
            return Judgement::BadRow {
                position: row - 1,
                message: answer_excerpt(body),
            };
        }
    }
    Judgement::Failed(failure(target, table, status, body))
}

/// What a failed ClickHouse answer means.
fn failure(target: &str, table: &TableName, status: u16, body: &[u8]) -> Failure {
    let text = String::from_utf8_lossy(body);
    match code_of(&text) {
        Some(code) if TRANSIENT_CODES.contains(&code) => Failure::Transient {
            kind: "clickhouse_busy",
            message: format!("{target} is busy: {}", answer_excerpt(body)),
        },
        Some(60) => Failure::Permanent {
            kind: "missing_table",
            message: format!("table {table} does not exist at {target}; add --create to create it"),
        },
        Some(192 | 193 | 516) => Failure::Permanent {
            kind: "authentication",
            message: format!(
                "{target} refused the credentials: {}; check the user and the password",
                answer_excerpt(body)
            ),
        },
        Some(_) => Failure::Permanent {
            kind: "server",
            message: format!("{target}: {}", answer_excerpt(body)),
        },
        None => status_failure(target, status, body),
    }
}

/// The error code of `Code: 27. DB::Exception…` (newer) or `Code: 27, e.displayText() = …` (18.x).
fn code_of(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + 6..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The 1-based row a data error names: `(at row 3)`.
fn bad_row(text: &str) -> Option<usize> {
    // The last mention: the message may quote the data, which may itself hold the phrase.
    let rest = &text[text.rfind("(at row ")? + 8..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// A ClickHouse string literal.
pub(super) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_rows_from_both_error_styles() {
        let old = "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected \" \
                   before: abc\": (while read the value of key id): (at row 3)\n, e.what() = …";
        assert_eq!(code_of(old), Some(27));
        assert_eq!(bad_row(old), Some(3));
        let new = "Code: 241. DB::Exception: Memory limit (total) exceeded";
        assert_eq!(code_of(new), Some(241));
        assert_eq!(bad_row(new), None);
        assert_eq!(code_of("<html>bad gateway</html>"), None);
        assert_eq!(bad_row("before: (at row 1)\n: (at row 2)"), Some(2));
        assert_eq!(literal("it's a\\b"), "'it\\'s a\\\\b'");
    }
}
