//! A plain HTTP endpoint: the rows as NDJSON in the body of a POST to the target URL. Any 2xx
//! answer stores the whole batch; other answers fail it as a whole.

use super::{encode_rows, query_suffix, status_failure, HttpClient, Judgement, Protocol};
use crate::rows::{Batch, RowFormat};

pub(crate) struct Ndjson {
    /// The target URL's query, if any: the path is the base URL's own.
    endpoint: String,
}

impl Ndjson {
    pub(crate) fn new(client: &HttpClient) -> Ndjson {
        Ndjson {
            endpoint: query_suffix(client),
        }
    }
}

impl Protocol for Ndjson {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn content_type(&self) -> &'static str {
        "application/x-ndjson"
    }

    fn body(&self, batch: &dyn Batch, rows: &[usize], out: &mut Vec<u8>) {
        encode_rows(batch, rows, RowFormat::Ndjson, out);
    }

    fn judge(&self, target: &str, status: u16, body: &[u8], _rows: usize) -> Judgement {
        judge(target, status, body)
    }
}

/// What a plain endpoint's answer means: any 2xx stores the whole batch.
pub(super) fn judge(target: &str, status: u16, body: &[u8]) -> Judgement {
    if (200..300).contains(&status) {
        Judgement::Stored
    } else {
        Judgement::Failed(status_failure(target, status, body))
    }
}
