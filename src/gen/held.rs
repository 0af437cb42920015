//! A generated batch held by a sink until a later commit (`--commit-every`), kept as the positions
//! of its rows instead of a copy of their values: every value is a pure function of the seed and
//! the row's id, so the rows are generated again, a run at a time, when the transaction sends
//! them (and again on a retry). Eight workers holding ten batches of 10,000 rows each would
//! otherwise keep 80 copies of a batch's cells.

use std::ops::Range;
use std::sync::Arc;

use crate::gen::table::{TableBatch, TablePlan};
use crate::gen::Shard;
use crate::reject::RowOrigin;
use crate::rows::{Batch, RowFormat, ToOwnedBatch, Unencodable};

/// The rows of a [`TableBatch`] at the shard-local positions `local`, not generated yet.
#[derive(Debug, Clone)]
pub(crate) struct HeldRows {
    plan: Arc<TablePlan>,
    seed: u64,
    seq: u64,
    local: Range<u64>,
    shard: Shard,
}

impl HeldRows {
    /// Rows `rows` of the batch, generated.
    fn generate(&self, rows: &Range<usize>) -> TableBatch {
        let start = self.local.start + rows.start as u64;
        let end = self.local.start + rows.end as u64;
        let mut batch = TableBatch::with_capacity(Arc::clone(&self.plan), self.seed, rows.len());
        batch.fill(self.seq, start..end, self.shard);
        batch
    }
}

/// What a sink holds of a generated batch until a later commit (`--commit-every`): its rows'
/// positions, from which they are generated again when sent.
impl ToOwnedBatch for TableBatch {
    fn to_owned_batch(&self) -> Box<dyn Batch> {
        Box::new(HeldRows {
            plan: Arc::clone(&self.plan),
            seed: self.seed,
            seq: self.seq,
            local: self.local.clone(),
            shard: self.shard,
        })
    }
}

impl Batch for HeldRows {
    fn seq(&self) -> u64 {
        self.seq
    }

    fn len(&self) -> usize {
        (self.local.end - self.local.start) as usize
    }

    fn first_row(&self) -> u64 {
        self.shard.global_id(self.local.start)
    }

    fn encode(
        &self,
        rows: Range<usize>,
        format: RowFormat,
        out: &mut Vec<u8>,
    ) -> Result<(), Unencodable> {
        let batch = self.generate(&rows);
        batch.encode(0..batch.len(), format, out)
    }

    fn origin(&self, row: usize) -> RowOrigin {
        self.generate(&(row..row + 1)).origin(0)
    }

    fn row_key(&self, row: usize) -> String {
        self.shard
            .global_id(self.local.start + row as u64)
            .to_string()
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<HeldRows>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::readings_batch;

    #[test]
    fn held_rows_encode_as_the_batch_they_were_taken_from() {
        let shard = Shard { index: 1, count: 3 };
        let mut batch = readings_batch(11, 500);
        batch.fill(4, 1000..1500, shard);
        let held = batch.to_owned_batch();
        assert_eq!(
            (held.seq(), held.len(), held.first_row()),
            (4, 500, batch.first_row())
        );
        assert_eq!(held.row_key(17), batch.row_key(17));
        assert_eq!(held.origin(321).record, batch.origin(321).record);
        for format in RowFormat::ALL {
            for rows in [0..500, 0..1, 123..377, 499..500] {
                let (mut expected, mut got) = (Vec::new(), Vec::new());
                batch.encode(rows.clone(), format, &mut expected).unwrap();
                held.encode(rows.clone(), format, &mut got).unwrap();
                assert_eq!(got, expected, "{format:?} rows {rows:?}");
            }
        }
        // The batch is refilled while the copy is held: the copy keeps its own rows.
        let mut before = Vec::new();
        held.encode(0..500, RowFormat::Csv, &mut before).unwrap();
        batch.fill(5, 1500..2000, shard);
        let mut after = Vec::new();
        held.encode(0..500, RowFormat::Csv, &mut after).unwrap();
        assert_eq!(before, after);
        assert!(held.size_bytes() < 200);
    }
}
