//! The text encoding of copy-mode input: UTF-8 as it is, or Latin-1 / Windows-1252 turned into
//! UTF-8 as it is read (encoding_rs), so that the splitter, the parser and every target see UTF-8
//! only.

use std::io::{self, Read};

/// The encoding of the input files (`--encoding`, else sniffed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// UTF-8, with or without a byte order mark.
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    /// Windows-1252, the superset of Latin-1 (ISO-8859-1) that files labelled Latin-1 hold.
    #[value(
        name = "latin1",
        alias = "latin-1",
        alias = "iso-8859-1",
        alias = "windows-1252",
        alias = "cp1252"
    )]
    Latin1,
}

impl Encoding {
    /// How `--sniff` names it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Latin1 => "Windows-1252 (Latin-1), transcoded to UTF-8",
        }
    }

    /// `input` as UTF-8.
    pub(crate) fn decode(self, input: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
        match self {
            Encoding::Utf8 => input,
            Encoding::Latin1 => Box::new(Transcoder::new(input)),
        }
    }

    /// `bytes` as UTF-8 (a sample, decoded whole).
    pub(crate) fn decode_all(self, bytes: Vec<u8>) -> Vec<u8> {
        match self {
            Encoding::Utf8 => bytes,
            Encoding::Latin1 => {
                let (text, _, _) = encoding_rs::WINDOWS_1252.decode(&bytes);
                text.into_owned().into_bytes()
            }
        }
    }
}

/// Bytes read from the input at a time.
const READ_BYTES: usize = 1 << 16;

/// A Windows-1252 stream read as UTF-8. Every byte has a character in Windows-1252, so decoding
/// never fails.
struct Transcoder {
    input: Box<dyn Read + Send>,
    decoder: encoding_rs::Decoder,
    raw: Vec<u8>,
    decoded: Vec<u8>,
    /// How much of `decoded` was handed out.
    taken: usize,
    at_end: bool,
}

impl Transcoder {
    fn new(input: Box<dyn Read + Send>) -> Transcoder {
        Transcoder {
            input,
            decoder: encoding_rs::WINDOWS_1252.new_decoder_without_bom_handling(),
            raw: vec![0; READ_BYTES],
            decoded: Vec::new(),
            taken: 0,
            at_end: false,
        }
    }
}

impl Read for Transcoder {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.taken == self.decoded.len() && !self.at_end {
            let read = self.input.read(&mut self.raw)?;
            self.at_end = read == 0;
            let room = self
                .decoder
                .max_utf8_buffer_length(read)
                .unwrap_or(read * 3 + 16);
            self.decoded.clear();
            self.decoded.resize(room, 0);
            self.taken = 0;
            let (_, consumed, written, _) =
                self.decoder
                    .decode_to_utf8(&self.raw[..read], &mut self.decoded, self.at_end);
            debug_assert_eq!(consumed, read, "the buffer has room for the whole read");
            self.decoded.truncate(written);
        }
        let count = out.len().min(self.decoded.len() - self.taken);
        out[..count].copy_from_slice(&self.decoded[self.taken..self.taken + count]);
        self.taken += count;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_becomes_utf8_across_small_reads() {
        let latin1: &[u8] = b"caf\xe9,\x80\n";
        let mut text = String::new();
        Encoding::Latin1
            .decode(Box::new(latin1))
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "café,€\n");
        assert_eq!(
            Encoding::Latin1.decode_all(latin1.to_vec()),
            "café,€\n".as_bytes()
        );
    }
}
