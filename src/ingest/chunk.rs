//! The chunker of `loader ingest`: cuts a document's text into overlapping chunks, given as byte
//! ranges into the text, and says how much of each chunk repeats the previous one.
//!
//! The rule: the text is a sequence of units, chars or words (a word is a run of non-whitespace;
//! its unit takes the whitespace after it, the first unit also any before it). A chunk holds at
//! most `size` units; when more remain, it ends at the last unit boundary more than `size / 2`
//! units in that ends a paragraph (after `\n\n` or `\n\r\n`; for words, after a word whose
//! whitespace holds two line feeds), else a sentence (`.`, `!` or `?`, then whitespace), else
//! (chars only) after whitespace, else after `size` units. The next chunk starts `overlap` units
//! before that end. Text that is empty or only whitespace has no chunks.

use std::ops::Range;
use std::str::CharIndices;

/// What a chunk's size and overlap count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChunkBy {
    /// Unicode scalar values (Rust `char`s).
    Chars,
    /// Words: a run of non-whitespace with the whitespace after it.
    Words,
}

/// Cuts texts into chunks of at most `size` units, each after the first repeating the last
/// `overlap` units of the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunker {
    size: usize,
    overlap: usize,
    by: ChunkBy,
}

/// Why a size and overlap make no [`Chunker`]; worded to follow `--chunk-size N: `.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkerError {
    /// The size is 0.
    #[error("must be at least 1")]
    NoSize,
    /// The overlap is more than half the size (rounded down).
    #[error("--overlap must be at most half of --chunk-size")]
    OverlapOverHalf,
}

impl Chunker {
    /// A chunker of `size` units per chunk and `overlap` units shared by consecutive chunks;
    /// `Err` when `size` is 0 or `overlap` is more than `size / 2` (rounded down).
    pub fn new(size: usize, overlap: usize, by: ChunkBy) -> Result<Chunker, ChunkerError> {
        if size == 0 {
            return Err(ChunkerError::NoSize);
        }
        if overlap > size / 2 {
            return Err(ChunkerError::OverlapOverHalf);
        }
        Ok(Chunker { size, overlap, by })
    }

    /// Units per chunk (`--chunk-size`).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Units shared by consecutive chunks (`--overlap`).
    pub fn overlap(&self) -> usize {
        self.overlap
    }

    /// What a unit is (`--chunk-by`).
    pub fn by(&self) -> ChunkBy {
        self.by
    }

    /// The chunks of `text` as byte ranges into it, in order, each non-empty and on char
    /// boundaries: none when `text` is empty or only whitespace. The first starts at 0, the last
    /// ends at `text.len()`, and each later one starts where the previous one's last `overlap`
    /// units begin.
    ///
    /// Linear in `text.len()` plus the number of chunks times `overlap`; allocates only the result.
    pub fn chunks(&self, text: &str) -> Vec<Range<usize>> {
        if text.trim().is_empty() {
            return Vec::new();
        }
        match self.by {
            ChunkBy::Chars => self.cut(text, CharUnits::new(text)),
            ChunkBy::Words => self.cut(text, WordUnits::new(text)),
        }
    }

    /// The byte length of the overlap at the start of `chunk`, the `index`-th range of
    /// [`chunks`](Self::chunks) of `text`: the part it repeats from the previous chunk, 0 for the
    /// first. It equals `chunks[index - 1].end - chunk.start`, so the first chunk followed by every
    /// later chunk without its overlap is `text`.
    #[cfg(test)]
    pub fn overlap_bytes(&self, text: &str, chunk: &Range<usize>, index: usize) -> usize {
        if index == 0 || self.overlap == 0 {
            return 0;
        }
        let chunk_text = &text[chunk.clone()];
        let unit = match self.by {
            ChunkBy::Chars => CharUnits::new(chunk_text).nth(self.overlap - 1),
            ChunkBy::Words => WordUnits::new(chunk_text).nth(self.overlap - 1),
        };
        unit.map_or(chunk.len(), |(end, _)| end)
    }

    /// The chunks of `text`, a non-blank text whose units `units` yields in order. Each unit is
    /// read once: the window of the next chunk always ends past the units read so far.
    fn cut(
        &self,
        text: &str,
        mut units: impl Iterator<Item = (usize, Break)>,
    ) -> Vec<Range<usize>> {
        let mut chunks = Vec::new();
        // The chunk's first unit, and its byte offset.
        let (mut start, mut start_byte) = (0usize, 0);
        // The last unit boundary read, as a unit index and a byte offset.
        let (mut read, mut read_byte) = (0, 0);
        // Per `Break` level above `Inside`, the last boundary read at that level or higher.
        let mut last = [(0, 0); 3];
        loop {
            let end_max = start.saturating_add(self.size);
            while read < end_max {
                let Some((byte, level)) = units.next() else {
                    break;
                };
                read += 1;
                read_byte = byte;
                // `Space` updates one level, `Sentence` two, `Paragraph` all three.
                last[..level as usize].fill((read, byte));
            }
            // The last unit ends the text (trailing whitespace ends the last word's unit).
            if read_byte == text.len() {
                chunks.push(start_byte..text.len());
                return chunks;
            }
            // `last` holds the greatest boundary of each level up to `end_max`: it is in the
            // window when it is past the window's lower bound; a unit index of 0 never is.
            let end_min = start + self.size / 2;
            let (end, end_byte) = last
                .iter()
                .rev()
                .copied()
                .find(|&(unit, _)| unit > end_min)
                .unwrap_or((read, read_byte));
            chunks.push(start_byte..end_byte);
            // `end > start + size / 2 >= start + overlap`: every chunk makes progress.
            start = end - self.overlap;
            start_byte = self.back(text, end_byte);
        }
    }

    /// The byte offset `overlap` units before the unit boundary at `end`, which is not the end of
    /// the text and is at least `overlap + 1` units into it.
    fn back(&self, text: &str, end: usize) -> usize {
        match self.by {
            ChunkBy::Chars => text[..end]
                .char_indices()
                .rev()
                .take(self.overlap)
                .last()
                .map_or(end, |(at, _)| at),
            // Each step back skips a unit's trailing whitespace, then its word; the unit reached is
            // never the first, so it starts at its word.
            ChunkBy::Words => (0..self.overlap).fold(end, |at, _| {
                text[..at]
                    .trim_end_matches(char::is_whitespace)
                    .trim_end_matches(|c: char| !c.is_whitespace())
                    .len()
            }),
        }
    }
}

/// What the boundary at the end of a unit ends, in increasing order of preference for a cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Break {
    /// The middle of a word (chars only).
    Inside = 0,
    /// Whitespace: after a whitespace char, or after any word.
    Space = 1,
    /// A sentence: after `.`, `!` or `?` and a whitespace char, or after a word ending so.
    Sentence = 2,
    /// A paragraph: after `\n\n` or `\n\r\n`, or after a word and whitespace with two line feeds.
    Paragraph = 3,
}

/// The char units of a text: the byte offset where each ends and what that end ends.
struct CharUnits<'a> {
    text: &'a str,
    chars: CharIndices<'a>,
}

impl<'a> CharUnits<'a> {
    fn new(text: &'a str) -> CharUnits<'a> {
        let chars = text.char_indices();
        CharUnits { text, chars }
    }

    /// What the boundary after the whitespace char `c` at byte `at` ends.
    fn space(&self, at: usize, c: char) -> Break {
        // The marks looked for are ASCII, so bytes suffice: no other char contains their bytes.
        let before = &self.text.as_bytes()[..at];
        if c == '\n' && (before.ends_with(b"\n") || before.ends_with(b"\n\r")) {
            Break::Paragraph
        } else if matches!(before.last(), Some(b'.' | b'!' | b'?')) {
            Break::Sentence
        } else {
            Break::Space
        }
    }
}

impl Iterator for CharUnits<'_> {
    type Item = (usize, Break);

    // Called once per char of the text: inlining it into `Chunker::cut` makes chunking 1.5x faster.
    #[inline(always)]
    fn next(&mut self) -> Option<(usize, Break)> {
        let (at, c) = self.chars.next()?;
        let level = if c.is_whitespace() {
            self.space(at, c)
        } else {
            Break::Inside
        };
        Some((at + c.len_utf8(), level))
    }
}

/// The word units of a text: the byte offset where each ends and what that end ends.
struct WordUnits<'a> {
    text: &'a str,
    /// Where the next unit starts.
    at: usize,
}

impl<'a> WordUnits<'a> {
    fn new(text: &'a str) -> WordUnits<'a> {
        WordUnits { text, at: 0 }
    }
}

impl Iterator for WordUnits<'_> {
    type Item = (usize, Break);

    fn next(&mut self) -> Option<(usize, Break)> {
        let rest = &self.text[self.at..];
        // Whitespace before a word only begins the first unit: later ones start at their word.
        let (mut last, mut after_word, mut line_feeds, mut end) = (None, false, 0, rest.len());
        for (at, c) in rest.char_indices() {
            if c.is_whitespace() {
                after_word |= last.is_some();
                line_feeds += usize::from(after_word && c == '\n');
            } else if after_word {
                end = at;
                break;
            } else {
                last = Some(c);
            }
        }
        let level = match last? {
            _ if line_feeds >= 2 => Break::Paragraph,
            '.' | '!' | '?' => Break::Sentence,
            _ => Break::Space,
        };
        self.at += end;
        Some((self.at, level))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chunker(size: usize, overlap: usize, by: ChunkBy) -> Chunker {
        Chunker::new(size, overlap, by).unwrap()
    }

    fn texts<'a>(text: &'a str, chunks: &[Range<usize>]) -> Vec<&'a str> {
        chunks.iter().map(|chunk| &text[chunk.clone()]).collect()
    }

    /// The units of `text` by the rule's own words, independent of `CharUnits` and `WordUnits`.
    fn count_units(text: &str, by: ChunkBy) -> usize {
        match by {
            ChunkBy::Chars => text.chars().count(),
            ChunkBy::Words => text.split_whitespace().count(),
        }
    }

    /// The rule, written plainly: every unit boundary in a `Vec`, each window scanned afresh.
    fn reference(text: &str, size: usize, overlap: usize, by: ChunkBy) -> Vec<Range<usize>> {
        if text.trim().is_empty() {
            return Vec::new();
        }
        let bounds: Vec<usize> = match by {
            ChunkBy::Chars => text.char_indices().map(|(at, _)| at).collect(),
            ChunkBy::Words => text
                .char_indices()
                .filter(|&(at, c)| {
                    !c.is_whitespace() && (at == 0 || text[..at].ends_with(char::is_whitespace))
                })
                .map(|(at, _)| at)
                .collect(),
        };
        // Unit boundaries: 0, the start of every unit but the first, the end of the text.
        let mut bounds: Vec<usize> = bounds.into_iter().skip(1).collect();
        bounds.insert(0, 0);
        bounds.push(text.len());
        let paragraph = |b: usize| match by {
            ChunkBy::Chars => text[..b].ends_with("\n\n") || text[..b].ends_with("\n\r\n"),
            ChunkBy::Words => {
                let before = &text[..b];
                let word_end = before.trim_end().len();
                before[word_end..].matches('\n').count() >= 2
            }
        };
        let sentence = |b: usize| match by {
            ChunkBy::Chars => {
                let mut rev = text[..b].chars().rev();
                rev.next().is_some_and(char::is_whitespace)
                    && rev.next().is_some_and(|c| matches!(c, '.' | '!' | '?'))
            }
            ChunkBy::Words => text[..b].trim_end().ends_with(['.', '!', '?']),
        };
        let space = |b: usize| match by {
            ChunkBy::Chars => text[..b].ends_with(char::is_whitespace),
            ChunkBy::Words => true,
        };
        let n = bounds.len() - 1;
        let (mut chunks, mut s) = (Vec::new(), 0);
        loop {
            if n - s <= size {
                chunks.push(bounds[s]..bounds[n]);
                return chunks;
            }
            let window = || (s + size / 2 + 1..=s + size).rev();
            let e = window()
                .find(|&e| paragraph(bounds[e]))
                .or_else(|| window().find(|&e| sentence(bounds[e])))
                .or_else(|| window().find(|&e| space(bounds[e])))
                .unwrap_or(s + size);
            chunks.push(bounds[s]..bounds[e]);
            s = e - overlap;
        }
    }

    /// Chunks by the formula for a text without whitespace: 1, or 1 plus one per `size - overlap`
    /// units (rounded up) past the first `size`.
    fn hard_cut_count(n: usize, size: usize, overlap: usize) -> usize {
        if n <= size {
            1
        } else {
            1 + (n - size).div_ceil(size - overlap)
        }
    }

    #[test]
    fn new_rejects_size_zero_and_overlap_over_half() {
        assert_eq!(
            Chunker::new(0, 0, ChunkBy::Chars).map_err(|err| err.to_string()),
            Err("must be at least 1".to_owned())
        );
        for (size, overlap) in [(10, 6), (1, 1), (3, 2), (2, 2)] {
            assert_eq!(
                Chunker::new(size, overlap, ChunkBy::Words).map_err(|err| err.to_string()),
                Err("--overlap must be at most half of --chunk-size".to_owned())
            );
        }
        for (size, overlap) in [
            (10, 5),
            (1, 0),
            (3, 1),
            (2, 1),
            (usize::MAX, usize::MAX / 2),
        ] {
            assert!(Chunker::new(size, overlap, ChunkBy::Chars).is_ok());
        }
    }

    #[test]
    fn empty_and_whitespace_text_have_no_chunks() {
        for by in [ChunkBy::Chars, ChunkBy::Words] {
            for text in ["", " ", "\n\n", " \t\r\n \u{a0}\u{3000}"] {
                assert_eq!(chunker(4, 1, by).chunks(text), Vec::<Range<usize>>::new());
            }
        }
    }

    #[test]
    fn short_text_is_one_chunk() {
        let one = |size, overlap, by, text: &str| {
            texts(text, &chunker(size, overlap, by).chunks(text)) == [text]
        };
        for by in [ChunkBy::Chars, ChunkBy::Words] {
            let text = "  Hello, world. Bye!\n\n";
            assert!(one(22, 3, by, text));
            assert!(one(usize::MAX, usize::MAX / 2, by, text));
        }
        // Exactly `size` units is still one chunk; one more is two.
        assert!(one(5, 2, ChunkBy::Chars, "abcde"));
        assert_eq!(chunker(5, 2, ChunkBy::Chars).chunks("abcdef"), [0..5, 3..6]);
        assert!(one(2, 0, ChunkBy::Words, " ab cd "));
        assert!(!one(2, 0, ChunkBy::Words, " ab cd e"));
    }

    #[test]
    fn hard_cuts_follow_the_count_formula() {
        for n in 1..80 {
            for size in 1..25 {
                for overlap in 0..=size / 2 {
                    let expected = hard_cut_count(n, size, overlap);
                    let chars = "x".repeat(n);
                    let chunks = chunker(size, overlap, ChunkBy::Chars).chunks(&chars);
                    assert_eq!(
                        chunks.len(),
                        expected,
                        "n {n} size {size} overlap {overlap}"
                    );
                    // The same count in words: no word ends a sentence or a paragraph.
                    let words = "w ".repeat(n);
                    let chunks = chunker(size, overlap, ChunkBy::Words).chunks(&words);
                    assert_eq!(
                        chunks.len(),
                        expected,
                        "n {n} size {size} overlap {overlap}"
                    );
                }
            }
        }
        let chunks = chunker(4, 1, ChunkBy::Chars).chunks("abcdefghij");
        assert_eq!(texts("abcdefghij", &chunks), ["abcd", "defg", "ghij"]);
    }

    #[test]
    fn paragraphs_of_p_chars_give_one_chunk_each() {
        // k paragraphs, each P - 2 non-whitespace chars then "\n\n" (P chars): with
        // size / 2 < P and P + overlap <= size, exactly k chunks, each ending at a paragraph's end.
        // Without the last "\n\n" (P - 2 chars for the last paragraph) it takes size / 2 < P - 1.
        for p in 3..30 {
            for size in p..2 * p {
                for overlap in 0..=(size / 2).min(size - p) {
                    for k in 1..6 {
                        let body = "y".repeat(p - 2);
                        let text = format!("{body}\n\n").repeat(k);
                        let chunks = chunker(size, overlap, ChunkBy::Chars).chunks(&text);
                        assert_eq!(chunks.len(), k, "P {p} size {size} overlap {overlap} k {k}");
                        for (i, chunk) in chunks.iter().enumerate() {
                            assert_eq!(chunk.end, (i + 1) * p);
                        }
                        if size / 2 < p - 1 {
                            let text = &text[..text.len() - 2];
                            let chunks = chunker(size, overlap, ChunkBy::Chars).chunks(text);
                            assert_eq!(chunks.len(), k, "P {p} size {size} overlap {overlap}");
                        }
                    }
                }
            }
        }
        // The trailing-separator-free form needs the tighter bound: 2 paragraphs, 1 chunk.
        assert_eq!(chunker(7, 0, ChunkBy::Chars).chunks("yy\n\nyy").len(), 1);
    }

    #[test]
    fn a_sentence_end_is_preferred_over_later_whitespace() {
        let text = "One two. Three four five six";
        let chunks = chunker(16, 2, ChunkBy::Chars).chunks(text);
        assert_eq!(texts(text, &chunks)[0], "One two. ");
        // Outside the window's back half, the sentence end gives way to the last whitespace.
        let chunks = chunker(20, 2, ChunkBy::Chars).chunks(text);
        assert_eq!(texts(text, &chunks)[0], "One two. Three four ");
        // `?` and `!` end sentences too; a period inside a word does not.
        let text = "Why? Because x.y is here";
        assert_eq!(
            texts(text, &chunker(8, 0, ChunkBy::Chars).chunks(text))[0],
            "Why? "
        );
        assert_eq!(
            texts(text, &chunker(20, 0, ChunkBy::Chars).chunks(text))[0],
            "Why? Because x.y is "
        );
    }

    #[test]
    fn a_paragraph_end_is_preferred_over_a_later_sentence_end() {
        let text = "Intro line\n\nFirst. Second. Third words here";
        let chunks = chunker(22, 4, ChunkBy::Chars).chunks(text);
        assert_eq!(texts(text, &chunks)[0], "Intro line\n\n");
        // The next chunk repeats the last 4 chars.
        assert_eq!(&text[chunks[1].start..chunks[0].end], "ne\n\n");
        let text = "Intro line\r\n\r\nFirst. Second. Third words here";
        let chunks = chunker(26, 0, ChunkBy::Chars).chunks(text);
        assert_eq!(texts(text, &chunks)[0], "Intro line\r\n\r\n");
        // A single line feed is only whitespace.
        let text = "Intro line\nFirst. Second. Third";
        let chunks = chunker(24, 0, ChunkBy::Chars).chunks(text);
        assert_eq!(texts(text, &chunks)[0], "Intro line\nFirst. ");
    }

    #[test]
    fn multibyte_chars_are_one_unit_and_never_split() {
        let text = "é日本😀".repeat(10);
        for size in 1..12 {
            for overlap in 0..=size / 2 {
                let chunks = chunker(size, overlap, ChunkBy::Chars).chunks(&text);
                assert_eq!(chunks.len(), hard_cut_count(40, size, overlap));
                for chunk in &chunks {
                    assert!(text.is_char_boundary(chunk.start) && text.is_char_boundary(chunk.end));
                    assert!(text[chunk.clone()].chars().count() <= size);
                }
            }
        }
        let chunks = chunker(3, 1, ChunkBy::Chars).chunks("é日本😀é");
        assert_eq!(texts("é日本😀é", &chunks), ["é日本", "本😀é"]);
        // Whitespace other than ASCII counts too.
        let text = "日本語\u{3000}です。終わり";
        let chunks = chunker(6, 0, ChunkBy::Chars).chunks(text);
        assert_eq!(texts(text, &chunks), ["日本語\u{3000}", "です。終わり"]);
    }

    #[test]
    fn words_count_size_and_overlap_in_words() {
        let text = "one two three four five six seven";
        let chunks = chunker(3, 1, ChunkBy::Words).chunks(text);
        assert_eq!(
            texts(text, &chunks),
            ["one two three ", "three four five ", "five six seven"]
        );
        let by = chunker(3, 1, ChunkBy::Words);
        let overlaps: Vec<usize> = (0..3)
            .map(|i| by.overlap_bytes(text, &chunks[i], i))
            .collect();
        assert_eq!(overlaps, [0, "three ".len(), "five ".len()]);
        // Leading whitespace belongs to the first unit, trailing whitespace to the last.
        let text = "\n  alpha\tbeta  gamma \n";
        let chunks = chunker(2, 0, ChunkBy::Words).chunks(text);
        assert_eq!(texts(text, &chunks), ["\n  alpha\tbeta  ", "gamma \n"]);
        // A word ending in `.`, `!` or `?` ends a sentence; two line feeds after a word, a paragraph.
        let text = "a b. c d e";
        assert_eq!(
            texts(text, &chunker(3, 0, ChunkBy::Words).chunks(text))[0],
            "a b. "
        );
        let text = "a b c\n \n d. e f g h";
        let chunks = chunker(5, 1, ChunkBy::Words).chunks(text);
        assert_eq!(
            texts(text, &chunks),
            ["a b c\n \n ", "c\n \n d. e f g ", "g h"]
        );
    }

    #[test]
    fn overlap_bytes_is_what_the_previous_chunk_shares() {
        let text = "Le café. 日本 est loin!\n\nFin du texte ici, vraiment.";
        for by in [ChunkBy::Chars, ChunkBy::Words] {
            let chunker = chunker(6, 3, by);
            let chunks = chunker.chunks(text);
            assert!(chunks.len() > 2);
            assert_eq!(chunker.overlap_bytes(text, &chunks[0], 0), 0);
            for i in 1..chunks.len() {
                let shared = chunks[i - 1].end - chunks[i].start;
                assert_eq!(chunker.overlap_bytes(text, &chunks[i], i), shared);
                assert_eq!(
                    count_units(&text[chunks[i].start..chunks[i - 1].end], by),
                    3
                );
            }
        }
    }

    /// Text from words, spaces, line and paragraph breaks, sentence ends and multibyte chars.
    fn text() -> impl Strategy<Value = String> {
        let separator = prop::sample::select(
            &[
                " ", " ", " ", "\n", "\n\n", "\r\n\r\n", ". ", "!", "? ", "\t", "é", "日本", "😀",
                "\u{3000}",
            ][..],
        );
        let piece = prop_oneof!["[a-zA-Z]{1,9}", separator.prop_map(str::to_owned)];
        prop::collection::vec(piece, 0..200).prop_map(|pieces| pieces.concat())
    }

    fn settings() -> impl Strategy<Value = (usize, usize, ChunkBy)> {
        let by = prop_oneof![Just(ChunkBy::Chars), Just(ChunkBy::Words)];
        (1usize..200, by).prop_flat_map(|(size, by)| (Just(size), 0..=size / 2, Just(by)))
    }

    proptest! {
        #[test]
        fn chunks_keep_the_rule((size, overlap, by) in settings(), text in text()) {
            let chunker = chunker(size, overlap, by);
            let chunks = chunker.chunks(&text);
            // (d) Deterministic, and (beyond) exactly the rule as the reference states it.
            prop_assert_eq!(&chunks, &chunker.chunks(&text));
            prop_assert_eq!(&chunks, &reference(&text, size, overlap, by));
            prop_assert_eq!(chunks.is_empty(), text.trim().is_empty());
            let mut whole = String::new();
            for (i, chunk) in chunks.iter().enumerate() {
                // (c) Non-empty, on char boundaries.
                prop_assert!(chunk.start < chunk.end && chunk.end <= text.len());
                prop_assert!(text.is_char_boundary(chunk.start));
                prop_assert!(text.is_char_boundary(chunk.end));
                // (b) At most `size` units.
                prop_assert!(count_units(&text[chunk.clone()], by) <= size);
                // (a) Each later chunk repeats exactly `overlap` units ending the previous one.
                let overlap_bytes = chunker.overlap_bytes(&text, chunk, i);
                if i > 0 {
                    let previous = &chunks[i - 1];
                    prop_assert!(previous.start < chunk.start);
                    prop_assert_eq!(chunk.start + overlap_bytes, previous.end);
                    prop_assert_eq!(count_units(&text[chunk.start..previous.end], by), overlap);
                }
                whole.push_str(&text[chunk.start + overlap_bytes..chunk.end]);
            }
            if !chunks.is_empty() {
                prop_assert_eq!(whole, text);
            }
        }
    }
}
