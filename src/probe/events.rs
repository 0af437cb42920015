//! The events and tokens of a streamed answer's body: the body is cut into events as it arrives
//! (server-sent events or one JSON document a line), and each event's payload is checked for a
//! token (a piece of generated text), so that the probe can time the first event and token.

use std::fmt;
use std::marker::PhantomData;
use std::ops::AddAssign;

use memchr::memmem::Finder;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// How the body of a streamed answer is cut into events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// text/event-stream: events end at a blank line (\n\n, \r\n\r\n or \r\r); lines starting
    /// with ':' are comments (keep-alives) and make no event; an event's payload is its `data:`
    /// lines joined with '\n' (one optional space after the colon removed); an event with no data
    /// line (only `event:`/`id:`/`retry:` fields) is an event but never a token. `data: [DONE]`
    /// is an event, not a token.
    Sse,
    /// application/x-ndjson or application/jsonl: every line that is not blank is one event whose
    /// payload is the line (without a '\r' before its '\n').
    Ndjson,
}

impl Framing {
    /// The framing a Content-Type header value announces (case-insensitive, parameters such as
    /// `; charset=utf-8` ignored): text/event-stream → Sse; application/x-ndjson,
    /// application/ndjson, application/jsonl, application/x-jsonlines → Ndjson; else None.
    pub(crate) fn of_content_type(value: &[u8]) -> Option<Framing> {
        let media_type = value.split(|&byte| byte == b';').next()?.trim_ascii();
        let is = |name: &str| media_type.eq_ignore_ascii_case(name.as_bytes());
        if is("text/event-stream") {
            Some(Framing::Sse)
        } else if is("application/x-ndjson")
            || is("application/ndjson")
            || is("application/jsonl")
            || is("application/x-jsonlines")
        {
            Some(Framing::Ndjson)
        } else {
            None
        }
    }
}

/// Which events carry a token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenRule {
    /// OpenAI-compatible: the payload is JSON and `choices[0].delta.content` or
    /// `choices[0].text` is a non-empty string. (Also accept Ollama-style NDJSON
    /// `message.content` / `response` non-empty strings.)
    OpenAi,
    /// The payload is JSON and the value at this JSON pointer (RFC 6901, e.g. `/choices/0/text`)
    /// is present and not null, not "" , not false. A pointer that is neither empty (the whole
    /// payload) nor starts with '/' points at nothing.
    Pointer(String),
}

/// What one piece of body completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Seen {
    /// Events the piece completed.
    pub events: u32,
    /// The events among them that carry a token.
    pub tokens: u32,
}

impl AddAssign for Seen {
    fn add_assign(&mut self, other: Seen) {
        self.events += other.events;
        self.tokens += other.tokens;
    }
}

/// The parser of one answer; `reset()` makes it ready for the next answer and keeps its buffers.
pub(crate) struct EventParser {
    framing: Framing,
    tokens: TokenTest,
    /// The unfinished line the bytes fed so far end in.
    line: Vec<u8>,
    /// SSE: the data lines of the event being read, joined with '\n'.
    data: Vec<u8>,
    /// SSE: the event being read has a field line, data or not.
    in_event: bool,
    /// SSE: the event being read has a data line (perhaps an empty one).
    has_data: bool,
    /// SSE: the last feed ended in '\r', so a '\n' starting the next one ends no line.
    after_cr: bool,
    /// No line of this answer is complete yet: a UTF-8 byte order mark may open the first.
    at_body_start: bool,
}

/// A UTF-8 byte order mark, which a body may start with and which is no part of its first line.
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

impl EventParser {
    pub(crate) fn new(framing: Framing, rule: TokenRule) -> EventParser {
        EventParser {
            framing,
            tokens: TokenTest::new(rule),
            line: Vec::new(),
            data: Vec::new(),
            in_event: false,
            has_data: false,
            after_cr: false,
            at_body_start: true,
        }
    }

    /// Forgets the answer read so far (an unfinished event never counts).
    pub(crate) fn reset(&mut self) {
        self.line.clear();
        self.data.clear();
        self.in_event = false;
        self.has_data = false;
        self.after_cr = false;
        self.at_body_start = true;
    }

    /// Feeds body bytes (already de-chunked) as they arrived; returns how many events and how
    /// many of them tokens the bytes completed. An event split across feeds is completed by the
    /// feed that brings its end.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Seen {
        let mut seen = Seen::default();
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(end) = self.line_end(bytes) {
            let mut next = end + 1;
            if bytes[end] == b'\r' {
                match bytes.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let line = &bytes[..end];
            if self.line.is_empty() {
                self.complete_line(line, &mut seen);
            } else {
                // Taking the buffer out and back keeps its capacity.
                let mut pending = std::mem::take(&mut self.line);
                extend_capped(&mut pending, line);
                self.complete_line(&pending, &mut seen);
                pending.clear();
                self.line = pending;
            }
            bytes = &bytes[next..];
        }
        extend_capped(&mut self.line, bytes);
        seen
    }

    /// The answer ended: an unfinished last event (SSE without the final blank line, an NDJSON
    /// line without '\n') counts now. The parser is then ready for the next answer.
    pub(crate) fn finish(&mut self) -> Seen {
        let mut seen = Seen::default();
        if !self.line.is_empty() {
            let pending = std::mem::take(&mut self.line);
            self.complete_line(&pending, &mut seen);
            self.line = pending;
        }
        if self.framing == Framing::Sse {
            self.complete_line(b"", &mut seen);
        }
        self.reset();
        seen
    }

    /// Where the first line in `bytes` ends: at '\n', or for SSE also at a lone '\r'.
    fn line_end(&self, bytes: &[u8]) -> Option<usize> {
        match self.framing {
            Framing::Sse => memchr::memchr2(b'\n', b'\r', bytes),
            Framing::Ndjson => memchr::memchr(b'\n', bytes),
        }
    }

    /// Reads one whole line, without its line end.
    fn complete_line(&mut self, mut line: &[u8], seen: &mut Seen) {
        if self.at_body_start {
            self.at_body_start = false;
            line = line.strip_prefix(BYTE_ORDER_MARK).unwrap_or(line);
        }
        match self.framing {
            Framing::Ndjson => {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.trim_ascii().is_empty() {
                    seen.events += 1;
                    seen.tokens += u32::from(self.tokens.carries_token(line));
                }
            }
            Framing::Sse if line.is_empty() => {
                if self.in_event {
                    seen.events += 1;
                    seen.tokens +=
                        u32::from(self.has_data && self.tokens.carries_token(&self.data));
                }
                self.data.clear();
                self.in_event = false;
                self.has_data = false;
            }
            Framing::Sse if line[0] == b':' => {}
            Framing::Sse => {
                self.in_event = true;
                let (field, value) = match memchr::memchr(b':', line) {
                    Some(colon) => {
                        let value = &line[colon + 1..];
                        (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                    }
                    None => (line, &b""[..]),
                };
                if field == b"data" {
                    if self.has_data {
                        extend_capped(&mut self.data, b"\n");
                    }
                    extend_capped(&mut self.data, value);
                    self.has_data = true;
                }
            }
        }
    }
}

/// The most bytes of one line or one event's data kept: a stream that never ends a line cannot
/// grow a user's memory for as long as `--timeout` allows; a longer event is judged on its first
/// MiB (and, its JSON cut, carries no token).
const MAX_EVENT_BYTES: usize = 1 << 20;

/// Appends `bytes` to `kept` up to [`MAX_EVENT_BYTES`].
fn extend_capped(kept: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_EVENT_BYTES.saturating_sub(kept.len());
    kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// A [`TokenRule`] made ready to test payloads: a quick byte search rules most payloads out
/// before any is parsed as JSON.
struct TokenTest {
    /// A payload with none of these quoted keys holds no token; when empty, every payload is
    /// parsed. (A key the server wrote with needless `\u` escapes is missed.)
    keys: Vec<Finder<'static>>,
    rule: TokenRule,
}

impl TokenTest {
    fn new(rule: TokenRule) -> TokenTest {
        let keys = match &rule {
            TokenRule::OpenAi => [&b"\"content\""[..], b"\"text\"", b"\"response\""]
                .into_iter()
                .map(Finder::new)
                .collect(),
            // The pointer's last object key.
            TokenRule::Pointer(pointer) => last_object_key(pointer)
                .map(|key| Finder::new(&key).into_owned())
                .into_iter()
                .collect(),
        };
        TokenTest { keys, rule }
    }

    fn carries_token(&self, payload: &[u8]) -> bool {
        if !self.keys.is_empty() && self.keys.iter().all(|key| key.find(payload).is_none()) {
            return false;
        }
        match &self.rule {
            TokenRule::OpenAi => {
                serde_json::from_slice::<OpenAiChunk>(payload).is_ok_and(|chunk| chunk.has_text())
            }
            TokenRule::Pointer(pointer) => value_at(payload, pointer)
                .is_some_and(|value| !matches!(value.get(), "null" | "false" | "\"\"")),
        }
    }
}

/// The value a JSON pointer points at in a payload, borrowed from it; None when the payload is
/// not JSON or the value is missing. The payload is read once, skipping what the pointer passes
/// by.
fn value_at<'a>(payload: &'a [u8], pointer: &str) -> Option<&'a RawValue> {
    let tokens = match pointer {
        "" => None,
        pointer => Some(pointer.strip_prefix('/')?),
    };
    let mut document = serde_json::Deserializer::from_slice(payload);
    let value = At { tokens }.deserialize(&mut document).ok()?;
    document.end().ok()?;
    value
}

/// The value that the rest of a JSON pointer points at inside the value being read.
struct At<'p> {
    /// The reference tokens left, '/'-separated; None when the value being read is the one.
    tokens: Option<&'p str>,
}

impl<'de> DeserializeSeed<'de> for At<'_> {
    type Value = Option<&'de RawValue>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        match self.tokens {
            None => <&RawValue>::deserialize(deserializer).map(Some),
            Some(tokens) => {
                let (token, rest) = match tokens.split_once('/') {
                    Some((token, rest)) => (token, Some(rest)),
                    None => (tokens, None),
                };
                deserializer.deserialize_any(Child { token, rest })
            }
        }
    }
}

/// Reads an object or an array for its member or element that one reference token names, and
/// in it what the rest of the pointer points at; a value of any other type has no children.
struct Child<'p> {
    token: &'p str,
    rest: Option<&'p str>,
}

impl<'de> Visitor<'de> for Child<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(named) = members.next_key_seed(KeyIs { token: self.token })? {
            // The last of duplicate keys counts, as in a `serde_json::Value`.
            if named {
                found = members.next_value_seed(At { tokens: self.rest })?;
            } else {
                members.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut elements: A) -> Result<Self::Value, A::Error> {
        // RFC 6901: an index is "0" or digits without a leading zero.
        let index = match self.token.as_bytes() {
            [b'0'] => Some(0),
            [b'1'..=b'9', rest @ ..] if rest.iter().all(u8::is_ascii_digit) => {
                self.token.parse::<usize>().ok()
            }
            _ => None,
        };
        let mut found = None;
        let mut position = 0;
        loop {
            if Some(position) == index {
                match elements.next_element_seed(At { tokens: self.rest })? {
                    Some(value) => found = value,
                    None => break,
                }
            } else if elements.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            position += 1;
        }
        Ok(found)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Whether an object key is the one a reference token names (`~1` is '/', `~0` is '~').
struct KeyIs<'t> {
    token: &'t str,
}

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        let mut key = key.as_bytes();
        let mut token = self.token.as_bytes();
        while let Some((&first, rest)) = token.split_first() {
            let (byte, rest) = match (first, rest) {
                (b'~', [b'0', rest @ ..]) => (b'~', rest),
                (b'~', [b'1', rest @ ..]) => (b'/', rest),
                _ => (first, rest),
            };
            match key.split_first() {
                Some((&named, key_rest)) if named == byte => key = key_rest,
                _ => return Ok(false),
            }
            token = rest;
        }
        Ok(key.is_empty())
    }
}

/// The last object key a JSON pointer names, quoted as JSON writes it: the last reference token
/// that cannot be an array index and that no server would escape (no quote, backslash, control
/// character, '/' or anything not ASCII). None when there is none.
fn last_object_key(pointer: &str) -> Option<Vec<u8>> {
    let could_be_index =
        |token: &str| token.bytes().all(|byte| byte.is_ascii_digit()) || token == "-";
    let written_plainly = |key: &str| {
        !key.bytes()
            .any(|byte| matches!(byte, b'"' | b'\\' | b'/' | ..0x20 | 0x80..))
    };
    let key = pointer
        .strip_prefix('/')?
        .rsplit('/')
        .filter(|token| !could_be_index(token))
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
        .find(|key| written_plainly(key))?;
    Some(format!("\"{key}\"").into_bytes())
}

/// The parts of an OpenAI-compatible (or Ollama) streamed chunk that may hold generated text,
/// borrowed from the payload.
#[derive(Deserialize)]
struct OpenAiChunk<'a> {
    #[serde(borrow)]
    choices: Option<FirstChoice<'a>>,
    /// Ollama's /api/chat.
    #[serde(borrow)]
    message: Option<OllamaMessage<'a>>,
    /// Ollama's /api/generate.
    #[serde(borrow)]
    response: Option<&'a RawValue>,
}

impl OpenAiChunk<'_> {
    fn has_text(&self) -> bool {
        let choice = self.choices.as_ref().and_then(|choices| choices.0.as_ref());
        let delta = choice.and_then(|choice| choice.delta.as_ref());
        [
            delta.and_then(|delta| delta.content),
            choice.and_then(|choice| choice.text),
            self.message.as_ref().and_then(|message| message.content),
            self.response,
        ]
        .into_iter()
        .flatten()
        .any(is_non_empty_string)
    }
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    /// Completions (not chat) streams.
    #[serde(borrow)]
    text: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct OllamaMessage<'a> {
    #[serde(borrow)]
    content: Option<&'a RawValue>,
}

/// A JSON string with at least one character, as written in the payload.
fn is_non_empty_string(value: &RawValue) -> bool {
    let json = value.get();
    json.starts_with('"') && json != "\"\""
}

/// The first element of the `choices` array, read without collecting the others.
struct FirstChoice<'a>(Option<Choice<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstChoice<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FirstElement<'a>(PhantomData<Choice<'a>>);

        impl<'de: 'a, 'a> Visitor<'de> for FirstElement<'a> {
            type Value = FirstChoice<'a>;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an array of choices")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut choices: A) -> Result<Self::Value, A::Error> {
                let first = choices.next_element()?;
                while choices.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstChoice(first))
            }
        }

        deserializer.deserialize_seq(FirstElement(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_never_ends_is_kept_to_a_mebibyte() {
        let mut parser = EventParser::new(Framing::Ndjson, TokenRule::OpenAi);
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..40 {
            assert_eq!(parser.feed(&chunk), Seen::default());
        }
        assert_eq!(parser.line.len(), MAX_EVENT_BYTES);
        assert_eq!(
            parser.finish(),
            Seen {
                events: 1,
                tokens: 0
            }
        );
    }
    use proptest::prelude::*;

    /// An OpenAI chat stream: the role, three pieces of text, an empty piece, the end.
    const CHAT_STREAM: &str = concat!(
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\n!\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},",
        "\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );

    fn seen(events: u32, tokens: u32) -> Seen {
        Seen { events, tokens }
    }

    /// Everything the body completes, fed whole and then finished.
    fn totals(framing: Framing, rule: TokenRule, body: &str) -> Seen {
        let mut parser = EventParser::new(framing, rule);
        let mut total = parser.feed(body.as_bytes());
        total += parser.finish();
        total
    }

    fn openai_sse(body: &str) -> Seen {
        totals(Framing::Sse, TokenRule::OpenAi, body)
    }

    #[test]
    fn a_chat_stream_has_six_events_and_three_tokens() {
        let mut parser = EventParser::new(Framing::Sse, TokenRule::OpenAi);
        assert_eq!(parser.feed(CHAT_STREAM.as_bytes()), seen(6, 3));
        assert_eq!(parser.finish(), seen(0, 0));
    }

    #[test]
    fn a_chat_stream_fed_one_byte_at_a_time_counts_alike() {
        let mut parser = EventParser::new(Framing::Sse, TokenRule::OpenAi);
        let mut total = Seen::default();
        for byte in CHAT_STREAM.as_bytes() {
            let completed = parser.feed(std::slice::from_ref(byte));
            // Only the second '\n' of a blank line completes an event.
            if completed != Seen::default() {
                assert_eq!(*byte, b'\n');
            }
            total += completed;
        }
        total += parser.finish();
        assert_eq!(total, seen(6, 3));
    }

    #[test]
    fn an_event_split_across_feeds_counts_in_the_feed_that_ends_it() {
        let mut parser = EventParser::new(Framing::Sse, TokenRule::OpenAi);
        assert_eq!(parser.feed(b"data: {\"choices\":[{\"te"), seen(0, 0));
        assert_eq!(parser.feed(b"xt\":\"a\"}]}\n"), seen(0, 0));
        assert_eq!(parser.feed(b"\ndata: {\"choices\""), seen(1, 1));
        assert_eq!(parser.feed(b":[{\"text\":\"b\"}]}\n\n"), seen(1, 1));
    }

    #[test]
    fn events_end_at_crlf_and_cr_blank_lines() {
        let token = "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}";
        assert_eq!(
            openai_sse(&format!("{token}\r\n\r\n{token}\r\n\r\n")),
            seen(2, 2)
        );
        assert_eq!(openai_sse(&format!("{token}\r\r{token}\r\r")), seen(2, 2));
        // A "\r\n" split between two feeds ends one line, not two.
        let mut parser = EventParser::new(Framing::Sse, TokenRule::OpenAi);
        assert_eq!(parser.feed(format!("{token}\r").as_bytes()), seen(0, 0));
        assert_eq!(parser.feed(b"\n"), seen(0, 0));
        assert_eq!(parser.feed(b"\r"), seen(1, 1));
        assert_eq!(parser.feed(b"\n"), seen(0, 0));
        assert_eq!(parser.finish(), seen(0, 0));
        // An empty feed between the '\r' and the '\n' changes nothing.
        assert_eq!(parser.feed(format!("{token}\r").as_bytes()), seen(0, 0));
        assert_eq!(parser.feed(b""), seen(0, 0));
        assert_eq!(parser.feed(b"\n"), seen(0, 0));
        assert_eq!(parser.feed(b"\r\n"), seen(1, 1));
    }

    #[test]
    fn comment_lines_make_no_event() {
        assert_eq!(openai_sse(": ping\n\n: ping\n\n:\n\n"), seen(0, 0));
        let body = ": ping\ndata: {\"choices\":[{\"text\":\"a\"}]}\n: ping\n\n: ping\n\n";
        assert_eq!(openai_sse(body), seen(1, 1));
    }

    #[test]
    fn an_event_without_data_is_no_token() {
        assert_eq!(
            openai_sse("event: ping\n\nid: 7\nretry: 100\n\n"),
            seen(2, 0)
        );
        // Blank lines between events make no more events.
        assert_eq!(openai_sse("\n\nevent: ping\n\n\n\n\n"), seen(1, 0));
    }

    #[test]
    fn payloads_that_are_not_json_are_events_without_tokens() {
        let body = "data: text \"content\"\n\ndata: {\"text\": [1, 2\n\ndata:\n\ndata\n\n";
        assert_eq!(openai_sse(body), seen(4, 0));
        // The text must be a string.
        let body =
            "data: {\"choices\":[{\"text\":null}]}\n\ndata: {\"choices\":[{\"text\":3}]}\n\n";
        assert_eq!(openai_sse(body), seen(2, 0));
    }

    #[test]
    fn only_the_first_choice_counts() {
        let body = "data: {\"choices\":[{\"text\":\"\"},{\"text\":\"a\"}]}\n\n";
        assert_eq!(openai_sse(body), seen(1, 0));
        assert_eq!(openai_sse("data: {\"choices\":[]}\n\n"), seen(1, 0));
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        // Only the joined lines are JSON; the space after "data:" is optional and one is removed.
        let body = "data: {\"choices\":\ndata:[{\"text\":\ndata:  \"a\"}]}\n\n";
        assert_eq!(openai_sse(body), seen(1, 1));
        let pointer = TokenRule::Pointer("/a".into());
        assert_eq!(
            totals(
                Framing::Sse,
                pointer,
                "data: {\"a\":\ndata: \"x\ndata: y\"}\n\n"
            ),
            seen(1, 0),
            "a newline inside a JSON string is not JSON"
        );
        let mut parser = EventParser::new(Framing::Sse, TokenRule::OpenAi);
        parser.feed(b"data: one\ndata:two\ndata:  three\ndata\nid: 1\n");
        assert_eq!(parser.data, b"one\ntwo\n three\n");
    }

    #[test]
    fn an_unfinished_last_event_counts_at_finish() {
        let mut parser = EventParser::new(Framing::Sse, TokenRule::OpenAi);
        assert_eq!(
            parser.feed(b"data: {\"choices\":[{\"text\":\"a\"}]}\n"),
            seen(0, 0)
        );
        assert_eq!(parser.finish(), seen(1, 1));
        assert_eq!(
            parser.feed(b"data: {\"choices\":[{\"text\":\"a\"}]}"),
            seen(0, 0)
        );
        assert_eq!(parser.finish(), seen(1, 1));
        assert_eq!(parser.finish(), seen(0, 0));
    }

    #[test]
    fn reset_forgets_the_unfinished_event() {
        let mut parser = EventParser::new(Framing::Sse, TokenRule::OpenAi);
        parser.feed(b"data: {\"choices\":[{\"text\":\"a\"}]}\n");
        parser.reset();
        assert_eq!(parser.finish(), seen(0, 0));
        parser.feed(b"\xEF\xBB\xBFdata: {\"choices\":[{\"text\":\"a\"}]}\n");
        parser.reset();
        assert_eq!(parser.feed(b"\n"), seen(0, 0));
    }

    #[test]
    fn a_byte_order_mark_is_no_part_of_the_first_line() {
        let body = "\u{FEFF}data: {\"choices\":[{\"text\":\"a\"}]}\n\n";
        assert_eq!(openai_sse(body), seen(1, 1));
        let body = "\u{FEFF}{\"response\":\"a\"}\n";
        assert_eq!(totals(Framing::Ndjson, TokenRule::OpenAi, body), seen(1, 1));
    }

    #[test]
    fn ndjson_lines_are_events_and_the_last_counts_at_finish() {
        let body = concat!(
            "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n",
            "\n",
            "  \r\n",
            "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":false}\r\n",
            "{\"model\":\"m\",\"response\":\" there\",\"done\":false}\n",
            "{\"model\":\"m\",\"response\":\"\",\"done\":true}",
        );
        let mut parser = EventParser::new(Framing::Ndjson, TokenRule::OpenAi);
        assert_eq!(parser.feed(body.as_bytes()), seen(3, 2));
        assert_eq!(parser.finish(), seen(1, 0));
        // A lone '\r' ends no NDJSON line.
        let body = "{\"response\":\"a\"}\r{\"response\":\"b\"}\n";
        assert_eq!(totals(Framing::Ndjson, TokenRule::OpenAi, body), seen(1, 0));
    }

    #[test]
    fn a_pointer_picks_the_token() {
        let rule = TokenRule::Pointer("/choices/0/text".into());
        let body = concat!(
            "{\"choices\":[{\"text\":\"a\"}]}\n",
            "{\"choices\":[{\"text\":\"\"}]}\n",
            "{\"choices\":[{\"text\":null}]}\n",
            "{\"choices\":[{\"text\":false}]}\n",
            "{\"choices\":[{\"text\":0}]}\n",
            "{\"choices\":[{\"text\":{}}]}\n",
            "{\"choices\":[]}\n",
            "{\"choices\":[{\"other\":\"a\"}, {\"text\":\"a\"}]}\n",
            "not json \"text\"\n",
        );
        assert_eq!(totals(Framing::Ndjson, rule, body), seen(9, 3));
        let rule = TokenRule::Pointer("/choices/1/text".into());
        let body = concat!(
            "{\"x\":{\"text\":\"a\"},\"choices\":[{\"text\":\"a\"},{\"text\":\"\"}]}\n",
            "{\"choices\":[{\"text\":\"a\"}]}\n",
            "{\"choices\":{\"1\":{\"text\":\"a\"}}}\n",
            "{\"choices\":[[], {\"text\":\"a\"}]}\n",
            "{\"choices\":[0, {\"more\":1,\"text\":\"a\",\"text2\":2}, 2],\"n\":3}\n",
        );
        assert_eq!(totals(Framing::Ndjson, rule, body), seen(5, 3));
        let leading_zero = TokenRule::Pointer("/a/01".into());
        assert_eq!(
            totals(Framing::Ndjson, leading_zero, "{\"a\":[0,1]}\n"),
            seen(1, 0)
        );
        let duplicate = TokenRule::Pointer("/a".into());
        assert_eq!(
            totals(Framing::Ndjson, duplicate, "{\"a\":1,\"a\":null}\n"),
            seen(1, 0)
        );
        let escaped = TokenRule::Pointer("/a~1b/c".into());
        assert_eq!(
            totals(Framing::Ndjson, escaped, "{\"a\\/b\":{\"c\":1}}\n"),
            seen(1, 1)
        );
        let rule = TokenRule::Pointer("/a~1b/m~0n".into());
        let body = "data: {\"a/b\":{\"m~n\":true}}\n\ndata: {\"a/b\":{\"m~n\":false}}\n\n";
        assert_eq!(totals(Framing::Sse, rule, body), seen(2, 1));
        let whole = TokenRule::Pointer(String::new());
        assert_eq!(
            totals(Framing::Ndjson, whole, "1\n\"\"\nnull\n[]\n"),
            seen(4, 2)
        );
        let rootless = TokenRule::Pointer("choices".into());
        assert_eq!(
            totals(Framing::Ndjson, rootless, "{\"choices\":1}\n"),
            seen(1, 0)
        );
    }

    #[test]
    fn the_quick_search_looks_for_the_last_object_key() {
        let key = |pointer| last_object_key(pointer).map(|key| String::from_utf8(key).unwrap());
        assert_eq!(key("/choices/0/text").as_deref(), Some("\"text\""));
        assert_eq!(key("/items/0/-").as_deref(), Some("\"items\""));
        assert_eq!(key("/a~1b/m~0n").as_deref(), Some("\"m~n\""));
        assert_eq!(key("/0/1"), None);
        assert_eq!(key("/say \"hi\""), None);
        assert_eq!(key("/a~1b"), None, "a '/' may be written \\/");
        assert_eq!(key("/año"), None, "a server may write \\u00f1");
        assert_eq!(key("/c/año/0").as_deref(), Some("\"c\""));
        assert_eq!(key(""), None);
    }

    #[test]
    fn content_types_name_the_framing() {
        let framing = |value: &str| Framing::of_content_type(value.as_bytes());
        assert_eq!(framing("text/event-stream"), Some(Framing::Sse));
        assert_eq!(
            framing("Text/Event-Stream; charset=utf-8"),
            Some(Framing::Sse)
        );
        assert_eq!(
            framing(" text/event-stream ;charset=utf-8"),
            Some(Framing::Sse)
        );
        for ndjson in [
            "application/x-ndjson",
            "application/ndjson",
            "application/jsonl",
            "APPLICATION/X-JSONLINES",
            "application/x-ndjson; charset=UTF-8",
        ] {
            assert_eq!(framing(ndjson), Some(Framing::Ndjson), "{ndjson}");
        }
        for other in [
            "application/json",
            "text/plain",
            "text/event-streams",
            "",
            ";",
        ] {
            assert_eq!(framing(other), None, "{other}");
        }
    }

    #[test]
    fn a_warmed_up_parser_allocates_nothing() {
        /// Feeds a whole answer a few bytes at a time.
        fn answer(parser: &mut EventParser, body: &[u8]) -> Seen {
            let mut total = Seen::default();
            for piece in body.chunks(7) {
                total += parser.feed(piece);
            }
            total += parser.finish();
            total
        }
        let chat = format!("{CHAT_STREAM}: ping\n\nevent: end\n\n");
        let lines = concat!(
            "{\"m\":{\"text\":\"ab\",\"n\":[1]}}\n",
            "{\"m\":{\"text\":\"\"}}\n",
            "{\"n\":1}\n",
            "{\"m\":2}",
        );
        for (framing, rule, body, expected) in [
            (Framing::Sse, TokenRule::OpenAi, chat.as_str(), seen(7, 3)),
            (
                Framing::Ndjson,
                TokenRule::Pointer("/m/text".into()),
                lines,
                seen(4, 1),
            ),
        ] {
            let mut parser = EventParser::new(framing, rule);
            // The first answer gives the buffers their room.
            answer(&mut parser, body.as_bytes());
            let measured = allocation_counter::measure(|| {
                for _ in 0..100 {
                    assert_eq!(answer(&mut parser, body.as_bytes()), expected);
                }
            });
            assert_eq!(measured.count_total, 0, "{framing:?}: {measured:?}");
        }
    }

    /// Bodies made of the pieces streams are made of, line ends of every kind included.
    fn body() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(
            &[
                "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}",
                "data: {\"choices\":[{\"text\":\"\"}]}",
                "{\"response\":\"b\"}",
                "data: [DONE]",
                "data:",
                "event: ping",
                ": ping",
                "\u{FEFF}",
                "\n",
                "\r",
                "\r\n",
                "\n\n",
                " ",
            ][..],
        );
        prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn cutting_the_body_anywhere_changes_no_count(
            body in body(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(body.len() + 1)).collect();
            cuts.sort_unstable();
            for framing in [Framing::Sse, Framing::Ndjson] {
                for rule in [TokenRule::OpenAi, TokenRule::Pointer("/choices/0/delta".into())] {
                    let whole = totals(framing, rule.clone(), &body);
                    let mut parser = EventParser::new(framing, rule);
                    let mut cut = Seen::default();
                    let mut start = 0;
                    for &end in &cuts {
                        cut += parser.feed(&body.as_bytes()[start..end]);
                        start = end;
                    }
                    cut += parser.feed(&body.as_bytes()[start..]);
                    cut += parser.finish();
                    prop_assert_eq!(cut, whole, "{:?}", framing);
                }
            }
        }
    }
}
