//! [`ChunkBatch`]: whole documents' chunks as rows of the ingest schema (`doc_id`, `chunk_index`,
//! `text`, `meta`, and `embedding` when chunks are embedded), encoded in every row format. A
//! batch never splits a document, so the documents it lists are loaded whole when it commits.

use std::borrow::Cow;
use std::io::Write as _;
use std::ops::Range;

use super::ChunkedDocument;
use crate::encode::{self, binary};
use crate::reject::{Reject, RowOrigin};
use crate::rows::{
    Batch, Column, DocumentRecord, RowEncoders, RowFormat, Schema, SqlType, Unencodable,
};

/// The columns of ingest rows; `embedding` only when chunks are embedded.
pub(crate) fn schema(embedded: bool) -> Schema {
    let mut columns = vec![
        Column::fixed("doc_id", SqlType::Text),
        Column::fixed("chunk_index", SqlType::Int4),
        Column::fixed("text", SqlType::Text),
        Column::fixed("meta", SqlType::Jsonb),
    ];
    if embedded {
        columns.push(Column::fixed("embedding", SqlType::Float4Array));
    }
    Schema {
        columns: Cow::Owned(columns),
    }
}

/// Whole documents cut into chunks: one row per chunk.
#[derive(Default, Clone)]
pub(crate) struct ChunkBatch {
    pub seq: u64,
    documents: Vec<ChunkedDocument>,
    /// Row → (document, chunk).
    rows: Vec<(u32, u32)>,
    records: Vec<DocumentRecord>,
    /// Documents rejected before chunking (not fetched, not JSON, no text, a repeated id).
    pub rejected: Vec<Reject>,
    embedded: bool,
}

impl ChunkBatch {
    pub(crate) fn new(seq: u64, embedded: bool) -> ChunkBatch {
        ChunkBatch {
            seq,
            embedded,
            ..ChunkBatch::default()
        }
    }

    /// Adds a document and all its chunks.
    pub(crate) fn push(&mut self, document: ChunkedDocument) {
        let index = self.documents.len() as u32;
        self.rows
            .extend((0..document.chunks.len() as u32).map(|chunk| (index, chunk)));
        self.records.push(DocumentRecord {
            id: document.document.id.clone(),
            source: document.document.source.clone(),
            chunks: document.chunks.len() as u32,
        });
        self.documents.push(document);
    }

    /// Documents in the batch, loaded or rejected.
    pub(crate) fn document_count(&self) -> usize {
        self.documents.len() + self.rejected.len()
    }

    fn chunk(&self, row: usize) -> (&ChunkedDocument, usize, &str) {
        let (document, chunk) = self.rows[row];
        let document = &self.documents[document as usize];
        let chunk = chunk as usize;
        let range: Range<usize> = document.chunks[chunk].clone();
        (document, chunk, &document.document.text[range])
    }

    /// The row's embedding, when chunks are embedded.
    fn embedding(&self, row: usize) -> Option<&[f32]> {
        let (document, chunk) = self.rows[row];
        self.embedded
            .then(|| self.documents[document as usize].embedding(chunk as usize))
    }
}

/// Appends `values` as `{v1,v2}` (PostgreSQL array text) or `[v1,v2]` (JSON).
fn float_list(out: &mut Vec<u8>, values: &[f32], open: u8, close: u8) {
    out.push(open);
    encode::separated(out, b',', values, |out, value| {
        let _ = write!(out, "{value}");
    });
    out.push(close);
}

/// Appends `values` as the CSV field `[v1,v2]`, quoted as [`encode::csv_field`] quotes it, without
/// a buffer of its own: a list of two or more holds a comma, and numbers hold no quote or line
/// break.
fn csv_float_list(out: &mut Vec<u8>, values: &[f32]) {
    let quoted = values.len() > 1;
    if quoted {
        out.push(b'"');
    }
    float_list(out, values, b'[', b']');
    if quoted {
        out.push(b'"');
    }
}

/// One row's values: a chunk of a document.
pub(crate) struct ChunkRow<'a> {
    id: &'a str,
    chunk: usize,
    text: &'a str,
    /// The document's `--meta` fields, a JSON object.
    meta: Option<&'a str>,
    embedding: Option<&'a [f32]>,
}

impl RowEncoders for ChunkBatch {
    type Row<'a> = ChunkRow<'a>;

    #[inline]
    fn rows(&self, rows: Range<usize>) -> impl Iterator<Item = ChunkRow<'_>> {
        rows.map(|row| {
            let (document, chunk, text) = self.chunk(row);
            ChunkRow {
                id: document.document.id.as_str(),
                chunk,
                text,
                meta: document.document.meta.as_deref(),
                embedding: self.embedding(row),
            }
        })
    }

    #[inline]
    fn binary_fields(&self) -> i16 {
        if self.embedded {
            5
        } else {
            4
        }
    }

    #[inline]
    fn binary(&self, row: ChunkRow<'_>, out: &mut Vec<u8>) -> Result<(), Unencodable> {
        binary::text(out, row.id);
        binary::int4(out, row.chunk as i32);
        binary::text(out, row.text);
        match row.meta {
            Some(meta) => binary::jsonb(out, meta.as_bytes()),
            None => binary::null(out),
        }
        if let Some(embedding) = row.embedding {
            binary::float4_array(out, embedding);
        }
        Ok(())
    }

    #[inline]
    fn copy_text(&self, row: ChunkRow<'_>, out: &mut Vec<u8>) {
        encode::copy_text(out, row.id.as_bytes());
        out.push(b'\t');
        encode::integer(out, row.chunk);
        out.push(b'\t');
        encode::copy_text(out, row.text.as_bytes());
        out.push(b'\t');
        match row.meta {
            Some(meta) => encode::copy_text(out, meta.as_bytes()),
            None => out.extend_from_slice(b"\\N"),
        }
        if let Some(embedding) = row.embedding {
            out.push(b'\t');
            float_list(out, embedding, b'{', b'}');
        }
    }

    #[inline]
    fn sql_values(&self, row: ChunkRow<'_>, out: &mut Vec<u8>) {
        encode::quoted(out, row.id.as_bytes(), b'\'');
        out.push(b',');
        encode::integer(out, row.chunk);
        out.push(b',');
        encode::quoted(out, row.text.as_bytes(), b'\'');
        out.push(b',');
        match row.meta {
            Some(meta) => encode::quoted(out, meta.as_bytes(), b'\''),
            None => out.extend_from_slice(b"NULL"),
        }
        if let Some(embedding) = row.embedding {
            out.extend_from_slice(b",'");
            float_list(out, embedding, b'{', b'}');
            out.push(b'\'');
        }
    }

    #[inline]
    fn csv(&self, row: ChunkRow<'_>, out: &mut Vec<u8>) {
        encode::csv_field(out, row.id.as_bytes());
        out.push(b',');
        encode::integer(out, row.chunk);
        out.push(b',');
        encode::csv_field(out, row.text.as_bytes());
        out.push(b',');
        if let Some(meta) = row.meta {
            encode::csv_field(out, meta.as_bytes());
        }
        if let Some(embedding) = row.embedding {
            out.push(b',');
            csv_float_list(out, embedding);
        }
    }

    #[inline]
    fn json_members(&self, row: ChunkRow<'_>, format: RowFormat, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\"doc_id\":");
        encode::json_string(out, row.id);
        out.extend_from_slice(b",\"chunk_index\":");
        encode::integer(out, row.chunk);
        out.extend_from_slice(b",\"text\":");
        encode::json_string(out, row.text);
        out.extend_from_slice(b",\"meta\":");
        match row.meta {
            // ClickHouse 18 keeps JSON in a String column: send it as a string.
            Some(meta) if format == RowFormat::JsonEachRow => encode::json_string(out, meta),
            Some(meta) => out.extend_from_slice(meta.as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        if let Some(embedding) = row.embedding {
            out.extend_from_slice(b",\"embedding\":");
            float_list(out, embedding, b'[', b']');
        }
    }

    #[inline]
    fn json_array(&self, row: ChunkRow<'_>, out: &mut Vec<u8>) {
        encode::json_string(out, row.id);
        out.push(b',');
        encode::integer(out, row.chunk);
        out.push(b',');
        encode::json_string(out, row.text);
        out.push(b',');
        out.extend_from_slice(row.meta.map_or(&b"null"[..], str::as_bytes));
        if let Some(embedding) = row.embedding {
            out.push(b',');
            float_list(out, embedding, b'[', b']');
        }
    }
}

impl Batch for ChunkBatch {
    fn seq(&self) -> u64 {
        self.seq
    }

    fn size_bytes(&self) -> usize {
        self.documents
            .iter()
            .map(|chunked| chunked.document.text.len() + 4 * chunked.embeddings.len())
            .sum()
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    /// The list position of the batch's first document.
    fn first_row(&self) -> u64 {
        self.documents
            .first()
            .map_or(0, |document| document.document.ordinal)
    }

    fn encode(
        &self,
        rows: Range<usize>,
        format: RowFormat,
        out: &mut Vec<u8>,
    ) -> Result<(), Unencodable> {
        self.encode_rows(rows, format, out)
    }

    fn origin(&self, row: usize) -> RowOrigin {
        let (document, chunk, text) = self.chunk(row);
        RowOrigin {
            source: document.document.source.clone(),
            line: chunk as u64,
            record: text.to_string(),
        }
    }

    /// `doc_id:chunk_index`: the same chunk of the same document always gets the same key.
    fn row_key(&self, row: usize) -> String {
        let (document, chunk, _) = self.chunk(row);
        format!("{}:{chunk}", document.document.id)
    }

    fn invalid(&self) -> &[Reject] {
        &self.rejected
    }

    fn documents(&self) -> &[DocumentRecord] {
        &self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Document;

    fn batch(embedded: bool) -> ChunkBatch {
        let mut batch = ChunkBatch::new(4, embedded);
        batch.push(ChunkedDocument {
            document: Document {
                ordinal: 9,
                id: "d'1".into(),
                source: "http://x/1".into(),
                text: "ab\tcd,e".into(),
                meta: Some(r#"{"t":"x"}"#.into()),
            },
            chunks: vec![0..4, 3..7],
            embeddings: if embedded {
                vec![0.5, 1.0, -2.0, 0.25]
            } else {
                Vec::new()
            },
        });
        batch
    }

    fn encoded(batch: &ChunkBatch, format: RowFormat) -> String {
        let mut out = Vec::new();
        batch.encode(0..batch.len(), format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rows_are_the_chunks_of_whole_documents() {
        let batch = batch(false);
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.first_row(), 9);
        assert_eq!(batch.row_key(1), "d'1:1");
        assert_eq!(
            batch.documents(),
            [DocumentRecord {
                id: "d'1".into(),
                source: "http://x/1".into(),
                chunks: 2
            }]
        );
        assert_eq!(batch.origin(1).record, "cd,e");
    }

    #[test]
    fn csv_float_lists_are_quoted_as_csv_fields_are() {
        let lists: [&[f32]; 4] = [&[], &[0.5], &[1.0, -2.0], &[f32::NAN, f32::INFINITY, 1e-7]];
        for values in lists {
            let mut list = Vec::new();
            float_list(&mut list, values, b'[', b']');
            let mut expected = Vec::new();
            encode::csv_field(&mut expected, &list);
            let mut out = Vec::new();
            csv_float_list(&mut out, values);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    /// Encoding into a buffer that has grown to its size allocates nothing, embeddings included.
    #[test]
    fn encoding_into_a_reused_buffer_allocates_nothing() {
        let formats = RowFormat::ALL;
        let embedded = batch(true);
        let mut out = Vec::with_capacity(4096);
        let measured = allocation_counter::measure(|| {
            for format in formats {
                out.clear();
                embedded
                    .encode(0..embedded.len(), format, &mut out)
                    .unwrap();
            }
        });
        assert_eq!(measured.count_total, 0, "{measured:?}");
    }

    #[test]
    fn encodes_every_format() {
        let plain = batch(false);
        assert_eq!(
            encoded(&plain, RowFormat::CopyText),
            "d'1\t0\tab\\tc\t{\"t\":\"x\"}\nd'1\t1\tcd,e\t{\"t\":\"x\"}\n"
        );
        assert_eq!(
            encoded(&plain, RowFormat::SqlValues),
            "('d''1',0,'ab\tc','{\"t\":\"x\"}'),('d''1',1,'cd,e','{\"t\":\"x\"}')"
        );
        assert_eq!(
            encoded(&plain, RowFormat::Csv),
            "d'1,0,ab\tc,\"{\"\"t\"\":\"\"x\"\"}\"\nd'1,1,\"cd,e\",\"{\"\"t\"\":\"\"x\"\"}\"\n"
        );
        let embedded = batch(true);
        assert_eq!(
            encoded(&embedded, RowFormat::Ndjson).lines().next(),
            Some(
                r#"{"doc_id":"d'1","chunk_index":0,"text":"ab\tc","meta":{"t":"x"},"embedding":[0.5,1]}"#
            )
        );
        assert_eq!(
            encoded(&embedded, RowFormat::JsonEachRow).lines().nth(1),
            Some(
                r#"{"doc_id":"d'1","chunk_index":1,"text":"cd,e","meta":"{\"t\":\"x\"}","embedding":[-2,0.25]}"#
            )
        );
        assert_eq!(
            encoded(&embedded, RowFormat::JsonArrays),
            r#"["d'1",0,"ab\tc",{"t":"x"},[0.5,1]],["d'1",1,"cd,e",{"t":"x"},[-2,0.25]]"#
        );
        let binary = {
            let mut out = Vec::new();
            embedded
                .encode(0..1, RowFormat::CopyBinary, &mut out)
                .unwrap();
            out
        };
        // 5 fields; the array field is 20 header bytes and 2 × (4 + 4).
        assert_eq!(&binary[..2], &5i16.to_be_bytes());
        assert_eq!(
            &binary[binary.len() - 40..binary.len() - 36],
            &36i32.to_be_bytes()
        );
        assert_eq!(&binary[binary.len() - 4..], &1.0f32.to_bits().to_be_bytes());
    }
}
