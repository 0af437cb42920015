//! `ingest_chunk`: the ingest chunker (`src/ingest/chunk.rs`) on arbitrary UTF-8 text, any valid
//! size (1..=64) and overlap (0..=size/2), by chars and by words.
//!
//! Checked against the rule documented on `Chunker::chunks`:
//! - blank text has no chunks; otherwise the first chunk starts at 0, the last ends at the end;
//! - every chunk is non-empty, on char boundaries, and holds at most `size` units (chars, or
//!   whitespace-separated words);
//! - each later chunk starts after the previous one starts and at or before it ends, and repeats
//!   exactly `overlap` units of it; so the first chunk followed by every later chunk without its
//!   overlap is the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::parts::{ChunkBy, Chunker};

fn units(text: &str, by: ChunkBy) -> usize {
    match by {
        ChunkBy::Chars => text.chars().count(),
        ChunkBy::Words => text.split_whitespace().count(),
    }
}

fuzz_target!(|input: (u8, u8, bool, &str)| {
    let (size, overlap, words, text) = input;
    let size = usize::from(size % 64) + 1;
    let overlap = usize::from(overlap) % (size / 2 + 1);
    let by = if words {
        ChunkBy::Words
    } else {
        ChunkBy::Chars
    };
    let chunker = Chunker::new(size, overlap, by).expect("a valid size and overlap");
    let chunks = chunker.chunks(text);
    if text.trim().is_empty() {
        assert!(chunks.is_empty(), "chunks of a blank text");
        return;
    }
    assert!(!chunks.is_empty());
    assert_eq!(chunks[0].start, 0);
    assert_eq!(chunks.last().unwrap().end, text.len());
    let mut rebuilt = String::new();
    for (i, chunk) in chunks.iter().enumerate() {
        assert!(chunk.start < chunk.end, "an empty chunk {chunk:?}");
        let chunk_text = text.get(chunk.clone()).expect("char boundaries");
        assert!(
            units(chunk_text, by) <= size,
            "a chunk of more than {size} units"
        );
        if i == 0 {
            rebuilt.push_str(chunk_text);
            continue;
        }
        let previous = &chunks[i - 1];
        assert!(
            previous.start < chunk.start && chunk.start <= previous.end,
            "chunks {previous:?} then {chunk:?}"
        );
        let repeated = &text[chunk.start..previous.end];
        assert_eq!(units(repeated, by), overlap, "overlap of chunk {i}");
        rebuilt.push_str(&text[previous.end..chunk.end]);
    }
    assert_eq!(rebuilt, text);
});
