//! The contract between sources and sinks: a [`Batch`] of rows that can encode itself in each
//! [`RowFormat`] a sink speaks, and the [`Schema`] that names and types its columns.
//!
//! A sink frames a batch (COPY header and trailer, the INSERT prefix, a request body) and asks the
//! batch to encode its rows into the sink's reused buffer: one dynamic call per batch, none per row.

use std::ops::Range;

/// How a sink wants rows encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// PostgreSQL binary COPY tuples (without the file header and trailer).
    CopyBinary,
    /// PostgreSQL text COPY lines.
    CopyText,
    /// `(v1,v2,…)` SQL tuples separated by commas, for a multi-row INSERT.
    SqlValues,
    /// CSV records (RFC 4180 quoting), one per line.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

/// A column type the built-in sources produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Int8,
    Int4,
    Float8,
    Text,
    Timestamptz,
}

impl SqlType {
    /// The name PostgreSQL's `format_type` gives this type.
    pub fn pg_name(self) -> &'static str {
        match self {
            SqlType::Int8 => "bigint",
            SqlType::Int4 => "integer",
            SqlType::Float8 => "double precision",
            SqlType::Text => "text",
            SqlType::Timestamptz => "timestamp with time zone",
        }
    }
}

/// One column: its name and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub sql_type: SqlType,
}

/// The ordered columns of the rows a source produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    pub columns: &'static [Column],
}

impl Schema {
    /// `"a", "b", …` for a column list in SQL.
    pub fn quoted_column_list(&self) -> String {
        let names: Vec<String> = self
            .columns
            .iter()
            .map(|column| crate::config::quote_ident(column.name))
            .collect();
        names.join(", ")
    }
}

/// A batch of rows in hand: what a source fills and a sink writes.
pub trait Batch {
    /// The batch's sequence number, unique within its source for the run (the ledger key).
    fn seq(&self) -> u64;
    /// Number of rows.
    fn len(&self) -> usize;
    /// Whether the batch holds no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The position of the first row in its source (an id or a line number), for the ledger.
    fn first_row(&self) -> u64;
    /// Appends the rows in `rows` to `out`, encoded as `format`.
    fn encode(&self, rows: Range<usize>, format: RowFormat, out: &mut Vec<u8>);
}
