//! A batch of generated rows of any table: [`TableBatch`] fills its reused cells column by
//! column from a [`TablePlan`] and encodes them, row by row, in every row format.
//!
//! The hot path: once the cells, the arena and the output buffer have grown to a batch's size,
//! filling and encoding fixed-width columns allocates nothing.

use std::ops::Range;
use std::sync::Arc;

use crate::encode::{self, TimestampStyle};
use crate::gen::draw::Store;
use crate::gen::model::{Cell, Field};
use crate::gen::values::{binary_cell, text_cell, Style};
use crate::gen::Shard;
use crate::reject::RowOrigin;
use crate::rows::{Batch, RowEncoders, RowFormat, Unencodable};

/// The columns a load generates, in the order they are sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TablePlan {
    pub columns: Vec<Field>,
}

/// A reused buffer of generated rows: one [`Cell`] per row and column, row-major.
#[derive(Debug)]
pub struct TableBatch {
    pub(super) plan: Arc<TablePlan>,
    pub(super) seed: u64,
    pub(super) seq: u64,
    /// The shard-local positions of the rows, and their shard: what a held copy keeps.
    pub(super) local: Range<u64>,
    pub(super) shard: Shard,
    ids: Vec<u64>,
    cells: Vec<Cell>,
    arena: Vec<u8>,
    items: Vec<Cell>,
    json: Vec<u8>,
}

impl TableBatch {
    pub(crate) fn with_capacity(plan: Arc<TablePlan>, seed: u64, capacity: usize) -> TableBatch {
        let width = plan.columns.len();
        TableBatch {
            plan,
            seed,
            seq: 0,
            local: 0..0,
            shard: Shard::WHOLE,
            ids: Vec::with_capacity(capacity),
            cells: Vec::with_capacity(capacity * width),
            arena: Vec::new(),
            items: Vec::new(),
            json: Vec::new(),
        }
    }

    /// Refills the batch with the rows at the shard-local positions `local`.
    pub fn fill(&mut self, seq: u64, local: Range<u64>, shard: Shard) {
        self.seq = seq;
        self.local = local.clone();
        self.shard = shard;
        self.ids.clear();
        self.ids
            .extend(local.map(|position| shard.global_id(position)));
        self.arena.clear();
        self.items.clear();
        let width = self.plan.columns.len();
        // Every cell is written below: a batch of the same size keeps its cells as they are.
        self.cells.resize(self.ids.len() * width, Cell::Null);
        let mut store = Store {
            arena: &mut self.arena,
            items: &mut self.items,
            json: &mut self.json,
        };
        for (column, field) in self.plan.columns.iter().enumerate() {
            let cells = self.cells[column..].iter_mut().step_by(width);
            field.fill(self.seed, &self.ids, cells, &mut store);
        }
    }

    /// The cells of row `row`.
    pub(crate) fn row(&self, row: usize) -> &[Cell] {
        let width = self.plan.columns.len();
        &self.cells[row * width..(row + 1) * width]
    }

    /// The value of row `row`, column `column`, as CSV spells it.
    #[cfg(test)]
    pub(crate) fn text_of(&self, row: usize, column: usize) -> String {
        let mut out = Vec::new();
        let field = &self.plan.columns[column];
        text_cell(
            field,
            self.row(row)[column],
            &self.arena,
            &self.items,
            Style::Csv,
            &mut out,
        );
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Batch for TableBatch {
    fn seq(&self) -> u64 {
        self.seq
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of_val(self.cells.as_slice())
            + self.arena.len()
            + std::mem::size_of_val(self.items.as_slice())
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn first_row(&self) -> u64 {
        self.ids.first().copied().unwrap_or(0)
    }

    fn encode(
        &self,
        rows: Range<usize>,
        format: RowFormat,
        out: &mut Vec<u8>,
    ) -> Result<(), Unencodable> {
        self.encode_rows(rows, format, out)
    }

    fn row_key(&self, row: usize) -> String {
        self.ids[row].to_string()
    }

    fn origin(&self, row: usize) -> RowOrigin {
        let mut record = Vec::new();
        self.csv(self.row(row), &mut record);
        RowOrigin {
            source: "gen".into(),
            line: self.ids[row],
            record: String::from_utf8_lossy(&record).into_owned(),
        }
    }
}

impl RowEncoders for TableBatch {
    type Row<'a> = &'a [Cell];

    #[inline]
    fn rows(&self, rows: Range<usize>) -> impl Iterator<Item = &[Cell]> {
        let width = self.plan.columns.len();
        self.cells[rows.start * width..rows.end * width].chunks_exact(width)
    }

    #[inline]
    fn binary_fields(&self) -> i16 {
        self.plan.columns.len() as i16
    }

    #[inline]
    fn binary(&self, row: &[Cell], out: &mut Vec<u8>) -> Result<(), Unencodable> {
        for (field, &cell) in self.plan.columns.iter().zip(row) {
            binary_cell(&field.value_type, field, cell, &self.arena, out)?;
        }
        Ok(())
    }

    #[inline]
    fn copy_text(&self, row: &[Cell], out: &mut Vec<u8>) {
        self.delimited(row, b'\t', Style::CopyText, out);
    }

    #[inline]
    fn sql_values(&self, row: &[Cell], out: &mut Vec<u8>) {
        self.delimited(row, b',', Style::Sql, out);
    }

    #[inline]
    fn csv(&self, row: &[Cell], out: &mut Vec<u8>) {
        self.delimited(row, b',', Style::Csv, out);
    }

    #[inline]
    fn json_members(&self, row: &[Cell], format: RowFormat, out: &mut Vec<u8>) {
        let style = match format {
            RowFormat::JsonEachRow => TimestampStyle::Seconds,
            _ => TimestampStyle::Rfc3339,
        };
        for (i, (field, &cell)) in self.plan.columns.iter().zip(row).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            encode::json_string(out, &field.name);
            out.push(b':');
            text_cell(
                field,
                cell,
                &self.arena,
                &self.items,
                Style::Json(style),
                out,
            );
        }
    }

    #[inline]
    fn json_array(&self, row: &[Cell], out: &mut Vec<u8>) {
        self.delimited(row, b',', Style::Json(TimestampStyle::Rfc3339), out);
    }
}

impl TableBatch {
    #[inline]
    fn delimited(&self, row: &[Cell], separator: u8, style: Style, out: &mut Vec<u8>) {
        for (i, (field, &cell)) in self.plan.columns.iter().zip(row).enumerate() {
            if i > 0 {
                out.push(separator);
            }
            text_cell(field, cell, &self.arena, &self.items, style, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::model::{Generator, ValueType};

    fn field(name: &str, value_type: ValueType, generator: Generator) -> Field {
        let mut field = Field::new(name, "t", value_type);
        field.generator = generator;
        field
    }

    fn plan() -> Arc<TablePlan> {
        let mut labels = field(
            "status",
            ValueType::Enum,
            Generator::choice(vec![Cell::Label(0), Cell::Label(1)], None),
        );
        labels.labels = vec!["new".into(), "it's \"odd\"".into()];
        Arc::new(TablePlan {
            columns: vec![
                field(
                    "id",
                    ValueType::Int { bytes: 8 },
                    Generator::Sequence { start: 1, step: 1 },
                ),
                field(
                    "total",
                    ValueType::Numeric {
                        precision: 10,
                        scale: 2,
                    },
                    Generator::UniformInt {
                        min: -500,
                        max: 500,
                    },
                ),
                labels,
                field(
                    "tags",
                    ValueType::Array(Box::new(ValueType::Text {
                        max_chars: None,
                        padded: false,
                    })),
                    Generator::Array {
                        element: Box::new(field(
                            "tag",
                            ValueType::Text {
                                max_chars: None,
                                padded: false,
                            },
                            Generator::Words {
                                min: 1,
                                max: 2,
                                sentence: false,
                                max_chars: None,
                            },
                        )),
                        min: 0,
                        max: 3,
                    },
                ),
                field(
                    "at",
                    ValueType::Time,
                    Generator::TimeRange {
                        start: 0,
                        end: 86_400_000_000,
                    },
                ),
            ],
        })
    }

    #[test]
    fn every_format_spells_the_same_row() {
        let mut batch = TableBatch::with_capacity(plan(), 5, 4);
        batch.fill(0, 0..4, Shard::WHOLE);
        let mut out = Vec::new();
        batch.encode(0..4, RowFormat::Ndjson, &mut out).unwrap();
        for (row, line) in String::from_utf8(out).unwrap().lines().enumerate() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["id"], row as u64 + 1);
            assert!(value["tags"].is_array(), "{line}");
            let total: f64 = batch.text_of(row, 1).parse().unwrap();
            assert_eq!(value["total"].as_f64(), Some(total));
        }
        let mut out = Vec::new();
        batch.encode(0..4, RowFormat::CopyText, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let first: Vec<&str> = text.lines().next().unwrap().split('\t').collect();
        assert_eq!(first.len(), 5);
        assert!(
            first[3].starts_with('{') && first[3].ends_with('}'),
            "{first:?}"
        );
        assert_eq!(first[4].len(), "00:00:00.000000".len());
        let mut out = Vec::new();
        batch.encode(0..4, RowFormat::SqlValues, &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().starts_with("(1,"));
        assert_eq!(
            batch.encode(0..1, RowFormat::CopyBinary, &mut Vec::new()),
            Err(Unencodable),
            "numeric is left to text COPY"
        );
    }

    #[test]
    fn a_column_filled_at_once_equals_its_rows_generated_one_by_one() {
        let plan = plan();
        let mut batch = TableBatch::with_capacity(Arc::clone(&plan), 3, 100);
        batch.fill(0, 0..100, Shard::WHOLE);
        let (mut arena, mut items, mut json) = (Vec::new(), Vec::new(), Vec::new());
        let mut store = Store {
            arena: &mut arena,
            items: &mut items,
            json: &mut json,
        };
        for (column, field) in plan.columns.iter().enumerate().take(3) {
            for row in 0..100 {
                let alone = field.generate(3, row as u64, &mut store);
                assert_eq!(batch.row(row)[column], alone, "{} row {row}", field.name);
            }
        }
    }

    #[test]
    fn fixed_width_rows_refill_and_encode_without_allocating() {
        let plan = Arc::new(TablePlan {
            columns: plan().columns[..2].to_vec(),
        });
        let mut batch = TableBatch::with_capacity(plan, 1, 1000);
        let mut out = Vec::new();
        let round = |seq: u64, batch: &mut TableBatch, out: &mut Vec<u8>| {
            batch.fill(seq, seq * 1000..(seq + 1) * 1000, Shard::WHOLE);
            for format in [RowFormat::CopyText, RowFormat::Csv, RowFormat::Ndjson] {
                out.clear();
                batch.encode(0..batch.len(), format, out).unwrap();
            }
        };
        round(0, &mut batch, &mut out);
        out.reserve(out.capacity());
        let measured = allocation_counter::measure(|| {
            for seq in 1..50 {
                round(seq, &mut batch, &mut out);
            }
        });
        assert_eq!(measured.count_total, 0, "{measured:?}");
    }
}
