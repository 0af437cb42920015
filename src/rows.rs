//! The contract between sources and sinks: a [`Batch`] of rows that can encode itself in each
//! [`RowFormat`] a sink speaks, and the [`Schema`] that names and types its columns.
//!
//! A sink frames a batch (COPY header and trailer, the INSERT prefix, a request body) and asks
//! the batch to encode its rows into the sink's reused buffer: one dynamic call per batch, none
//! per row. A batch type writes only its rows' fields, once per format ([`RowEncoders`]); how
//! rows are framed and separated in each format is written once, here.

use std::borrow::Cow;
use std::ops::Range;

use crate::encode::{self, binary};
use crate::reject::{Reject, RowOrigin};

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
    /// One JSON object per line, timestamps as `YYYY-MM-DD hh:mm:ss` (ClickHouse's JSONEachRow).
    JsonEachRow,
    /// `[v1,v2,…]` JSON arrays separated by commas (CrateDB's `bulk_args`).
    JsonArrays,
}

impl RowFormat {
    /// Every format, for the tests that encode a batch in each.
    #[cfg(test)]
    pub(crate) const ALL: [RowFormat; 7] = [
        RowFormat::CopyBinary,
        RowFormat::CopyText,
        RowFormat::SqlValues,
        RowFormat::Csv,
        RowFormat::Ndjson,
        RowFormat::JsonEachRow,
        RowFormat::JsonArrays,
    ];

    /// What goes between two separately encoded runs of rows: a comma for the formats whose rows
    /// are a comma-separated list, nothing for the line- and tuple-framed ones.
    pub fn run_separator(self) -> &'static [u8] {
        match self {
            RowFormat::SqlValues | RowFormat::JsonArrays => b",",
            _ => b"",
        }
    }
}

/// A column type: the ones loader encodes in binary COPY, and `Other` for the rest (loaded as
/// text, which the server converts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Bool,
    Bytea,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// text, varchar and char(n): binary COPY sends their UTF-8 bytes.
    Text,
    Json,
    Jsonb,
    Date,
    /// time without time zone.
    Time,
    Timestamp,
    Timestamptz,
    Uuid,
    /// `real[]` (one dimension): embedding vectors.
    Float4Array,
    /// numeric, of any precision and scale.
    Numeric,
    /// Any other type: numeric, arrays, enums, domains, ….
    Other,
}

impl SqlType {
    /// The name to create a column of this type with.
    pub fn pg_name(self) -> &'static str {
        match self {
            SqlType::Bool => "boolean",
            SqlType::Bytea => "bytea",
            SqlType::Int2 => "smallint",
            SqlType::Int4 => "integer",
            SqlType::Int8 => "bigint",
            SqlType::Float4 => "real",
            SqlType::Float8 => "double precision",
            SqlType::Text | SqlType::Other => "text",
            SqlType::Json => "json",
            SqlType::Jsonb => "jsonb",
            SqlType::Date => "date",
            SqlType::Time => "time without time zone",
            SqlType::Timestamp => "timestamp without time zone",
            SqlType::Timestamptz => "timestamp with time zone",
            SqlType::Uuid => "uuid",
            SqlType::Float4Array => "real[]",
            SqlType::Numeric => "numeric",
        }
    }

    /// The type a PostgreSQL type name (or a common alias of it) names, for `--schema`; `None`
    /// for a name loader has no type for.
    pub fn from_name(name: &str) -> Option<SqlType> {
        let name = name.trim().to_ascii_lowercase();
        Some(
            match name
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .as_str()
            {
                "boolean" | "bool" => SqlType::Bool,
                "bytea" => SqlType::Bytea,
                "smallint" | "int2" => SqlType::Int2,
                "integer" | "int" | "int4" => SqlType::Int4,
                "bigint" | "int8" => SqlType::Int8,
                "real" | "float4" => SqlType::Float4,
                "double precision" | "double" | "float8" | "float" => SqlType::Float8,
                "numeric" | "decimal" => SqlType::Numeric,
                "text" | "varchar" | "string" => SqlType::Text,
                "json" => SqlType::Json,
                "jsonb" => SqlType::Jsonb,
                "date" => SqlType::Date,
                "time" | "time without time zone" => SqlType::Time,
                "timestamp" | "timestamp without time zone" => SqlType::Timestamp,
                "timestamptz" | "timestamp with time zone" => SqlType::Timestamptz,
                "uuid" => SqlType::Uuid,
                _ => return None,
            },
        )
    }

    /// The type of a PostgreSQL type OID (`pg_attribute.atttypid`).
    pub fn from_oid(oid: u32) -> SqlType {
        match oid {
            16 => SqlType::Bool,
            17 => SqlType::Bytea,
            20 => SqlType::Int8,
            21 => SqlType::Int2,
            23 => SqlType::Int4,
            25 | 1042 | 1043 => SqlType::Text,
            114 => SqlType::Json,
            700 => SqlType::Float4,
            701 => SqlType::Float8,
            1082 => SqlType::Date,
            1083 => SqlType::Time,
            1114 => SqlType::Timestamp,
            1184 => SqlType::Timestamptz,
            2950 => SqlType::Uuid,
            3802 => SqlType::Jsonb,
            1021 => SqlType::Float4Array,
            1700 => SqlType::Numeric,
            _ => SqlType::Other,
        }
    }
}

/// One column: its name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: Cow<'static, str>,
    pub sql_type: SqlType,
}

impl Column {
    pub const fn fixed(name: &'static str, sql_type: SqlType) -> Column {
        Column {
            name: Cow::Borrowed(name),
            sql_type,
        }
    }
}

/// The ordered columns of the rows a source produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub columns: Cow<'static, [Column]>,
}

impl Schema {
    /// Whether `other` has the same columns in the same order, each of the same type.
    pub fn same_types(&self, other: &Schema) -> bool {
        self.columns.len() == other.columns.len()
            && self
                .columns
                .iter()
                .zip(other.columns.iter())
                .all(|(a, b)| a.name == b.name && a.sql_type == b.sql_type)
    }

    /// `"a", "b", …` for a column list in SQL.
    pub fn quoted_column_list(&self) -> String {
        let names: Vec<String> = self
            .columns
            .iter()
            .map(|column| crate::sql::quote_ident(&column.name))
            .collect();
        names.join(", ")
    }

    /// Columns of these names, typed as text (the target converts).
    pub fn text(names: &[impl AsRef<str>]) -> Schema {
        Schema {
            columns: names
                .iter()
                .map(|name| Column {
                    name: Cow::Owned(name.as_ref().to_string()),
                    sql_type: SqlType::Text,
                })
                .collect::<Vec<_>>()
                .into(),
        }
    }

    /// Whether binary COPY can carry every column (else the load uses text COPY).
    pub fn is_binary_encodable(&self) -> bool {
        self.columns
            .iter()
            .all(|column| column.sql_type != SqlType::Other)
    }
}

/// A value the batch cannot encode in the requested format (a binary COPY field whose text the
/// client does not parse, such as a timestamp without a zone): the sink sends the batch as text
/// instead and lets the server decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unencodable;

/// An owned copy of a batch, for a sink that holds it until a later commit (`--commit-every`)
/// while its source refills the original: every `Clone` batch has one.
pub trait ToOwnedBatch {
    fn to_owned_batch(&self) -> Box<dyn Batch>;
}

impl<T: Batch + Clone + 'static> ToOwnedBatch for T {
    fn to_owned_batch(&self) -> Box<dyn Batch> {
        Box::new(self.clone())
    }
}

/// A batch of rows in hand: what a source fills and a sink writes.
pub trait Batch: ToOwnedBatch {
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
    /// Appends the rows in `rows` to `out`, encoded as `format`. Only binary COPY can fail, and
    /// then `out` holds a partial encoding that the caller discards.
    fn encode(
        &self,
        rows: Range<usize>,
        format: RowFormat,
        out: &mut Vec<u8>,
    ) -> Result<(), Unencodable>;
    /// Where row `row` came from, and its record, for the reject file.
    fn origin(&self, row: usize) -> RowOrigin;
    /// A key naming row `row` across attempts and runs (a document `_id`): the same row of the same
    /// input always gets the same key (the id in gen mode, `input:line` in copy mode).
    fn row_key(&self, row: usize) -> String;
    /// Records of this batch the source found invalid (not among its `len()` rows), rejected
    /// before any sink sees them.
    fn invalid(&self) -> &[Reject] {
        &[]
    }
    /// The documents whose every chunk is in this batch (ingest mode), in row order: each one's
    /// chunks are the next `chunks` rows. A PostgreSQL sink records the ones with no refused row
    /// in the documents ledger, in the batch's own transaction.
    fn documents(&self) -> &[DocumentRecord] {
        &[]
    }
    /// About how many bytes the batch's rows take in memory: what holding it costs.
    fn size_bytes(&self) -> usize;
}

/// A batch type's row encoders, one per [`RowFormat`]: each appends the fields of one row with the
/// separators between them, and [`RowEncoders::encode_rows`] puts the format's frame around each
/// row and between rows (the tuple's field count, the line feed, the parentheses, brackets or
/// braces, the comma between list items). It picks the format once per call, then runs one loop
/// over [`RowEncoders::rows`] with one statically dispatched encoder: no dynamic call and no format
/// test per row.
pub(crate) trait RowEncoders {
    /// A row as the encoders read it.
    type Row<'a>
    where
        Self: 'a;
    /// The rows at the positions `rows`, in order.
    fn rows(&self, rows: Range<usize>) -> impl Iterator<Item = Self::Row<'_>>;
    /// The number of fields of a binary COPY tuple.
    fn binary_fields(&self) -> i16;
    /// Binary COPY fields, after the tuple's field count. This encoder alone can fail.
    fn binary(&self, row: Self::Row<'_>, out: &mut Vec<u8>) -> Result<(), Unencodable>;
    /// Text COPY fields, separated by tabs, before the line feed.
    fn copy_text(&self, row: Self::Row<'_>, out: &mut Vec<u8>);
    /// SQL literals, separated by commas, inside the tuple's parentheses.
    fn sql_values(&self, row: Self::Row<'_>, out: &mut Vec<u8>);
    /// CSV fields, separated by commas, before the line feed.
    fn csv(&self, row: Self::Row<'_>, out: &mut Vec<u8>);
    /// `"name":value` members, separated by commas, inside the object's braces; `format` is
    /// [`RowFormat::Ndjson`] or [`RowFormat::JsonEachRow`].
    fn json_members(&self, row: Self::Row<'_>, format: RowFormat, out: &mut Vec<u8>);
    /// JSON values, separated by commas, inside the array's brackets.
    fn json_array(&self, row: Self::Row<'_>, out: &mut Vec<u8>);

    /// [`Batch::encode`] with these encoders: appends the rows in `rows` to `out`, framed as
    /// `format` frames them.
    fn encode_rows(
        &self,
        rows: Range<usize>,
        format: RowFormat,
        out: &mut Vec<u8>,
    ) -> Result<(), Unencodable> {
        let rows = self.rows(rows);
        match format {
            RowFormat::CopyBinary => {
                let fields = self.binary_fields();
                for row in rows {
                    binary::tuple(out, fields);
                    self.binary(row, out)?;
                }
            }
            RowFormat::CopyText => lines(rows, out, |row, out| self.copy_text(row, out)),
            RowFormat::Csv => lines(rows, out, |row, out| self.csv(row, out)),
            RowFormat::Ndjson | RowFormat::JsonEachRow => {
                for row in rows {
                    out.push(b'{');
                    self.json_members(row, format, out);
                    out.extend_from_slice(b"}\n");
                }
            }
            RowFormat::SqlValues => list(rows, *b"()", out, |row, out| self.sql_values(row, out)),
            RowFormat::JsonArrays => list(rows, *b"[]", out, |row, out| self.json_array(row, out)),
        }
        Ok(())
    }
}

/// Each row, then a line feed.
#[inline]
fn lines<R>(
    rows: impl Iterator<Item = R>,
    out: &mut Vec<u8>,
    mut each: impl FnMut(R, &mut Vec<u8>),
) {
    for row in rows {
        each(row, out);
        out.push(b'\n');
    }
}

/// Each row between `open` and `close`, and a comma between rows (as between runs of rows:
/// [`RowFormat::run_separator`]).
#[inline]
fn list<R>(
    rows: impl Iterator<Item = R>,
    [open, close]: [u8; 2],
    out: &mut Vec<u8>,
    mut each: impl FnMut(R, &mut Vec<u8>),
) {
    encode::separated(out, b',', rows, |out, row| {
        out.push(open);
        each(row, out);
        out.push(close);
    });
}

/// A document loaded whole by one batch, as the documents ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DocumentRecord {
    /// The document's id (its `--id` field).
    pub id: String,
    /// Where it came from: its URL, or the listing page that held it.
    pub source: String,
    /// Chunks it was cut into.
    pub chunks: u32,
}

/// The columns a mode asks the target for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Columns {
    /// Exactly these, with these types (gen mode): created so, and checked to match.
    Fixed(Schema),
    /// These names, typed by the target table (copy mode with `--columns` or a header).
    Named(Vec<String>),
    /// These names with the types copy mode inferred from a sample: created so when the table
    /// is missing, typed by the table (as [`Columns::Named`]) when it exists.
    Sniffed(Schema),
    /// Every column of the target table, in order (copy mode without names).
    Table,
}
