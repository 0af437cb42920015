//! A plain HTTP endpoint: the rows as NDJSON in the body of a POST to the target URL. Any 2xx
//! answer stores the whole batch; other answers fail it as a whole.

use super::{encode_rows, status_failure, Judgement, Protocol};
use crate::rows::{Batch, RowFormat};
use crate::target::HttpTarget;

pub(crate) struct Ndjson {
    /// The target URL's query, if any: the path is the base URL's own.
    endpoint: String,
    target: String,
}

impl Ndjson {
    pub fn new(target: &HttpTarget) -> Ndjson {
        Ndjson {
            endpoint: target
                .query
                .as_ref()
                .map_or(String::new(), |query| format!("?{query}")),
            target: target.to_string(),
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
        encode_rows(batch, rows, RowFormat::Ndjson, b"", out);
    }

    fn judge(&self, status: u16, body: &[u8], _rows: usize) -> Judgement {
        if (200..300).contains(&status) {
            Judgement::Stored
        } else {
            Judgement::Failed(status_failure(&self.target, status, body))
        }
    }
}
