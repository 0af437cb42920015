//! `target`: `Target::parse`, `Target::resolve` and `redact` (`src/target/`, through
//! `fuzzing::target_texts`) on targets built from
//! structured parts (scheme, user, password, hosts, port, database or path, query), plus raw
//! arbitrary text; the environment lookup returns nothing.
//!
//! The password is drawn from letters no other part, and no message of loader's, uses (non-ASCII
//! letters such as `Æ`), mixed with the URL and DSN specials (`@ : / ? # % , & = ' \` and space).
//! It goes where a user puts one: a URL's userinfo (percent-encoded or as typed), a URL's
//! `password=` query parameter (encoded), or a key=value DSN's `password=` (quoted when it must
//! be). Invariant: none of those letters (so no part of the password) appears in the `Display`
//! or `Debug` of a parsed target, of each of its hosts, its base URLs, or in any error message,
//! nor in `redact(text)`. Raw text checks only that nothing panics.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use loader::fuzzing;

/// The password's own letters: nothing else in the input or in loader's messages holds them.
const SECRET: [char; 8] = ['Æ', 'Ø', 'Å', 'Þ', 'Ð', 'ß', 'Ł', 'Ħ'];
const SPECIALS: [char; 12] = ['@', ':', '/', '?', '#', '%', ',', '&', '=', '\'', '\\', ' '];
const WORD: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789._-";

#[derive(Arbitrary, Debug)]
enum Place {
    /// `scheme://user:password@host…`, specials percent-encoded.
    UserinfoEncoded,
    /// `scheme://user:password@host…`, as typed.
    UserinfoRaw,
    /// `…?password=…`, encoded.
    Query,
    /// `host=… password=…` (PostgreSQL only; quoted when it must be).
    KeyValue,
}

#[derive(Arbitrary, Debug)]
struct Parts {
    scheme: u8,
    https: bool,
    user: Vec<u8>,
    /// Each byte a letter of `SECRET` or, for a high byte, one of `SPECIALS`.
    password: Vec<u8>,
    place: Place,
    hosts: Vec<Vec<u8>>,
    port: Option<u16>,
    path: Vec<u8>,
    query: Vec<(Vec<u8>, Vec<u8>)>,
    /// Resolve as two `--target` values, or as one comma list, with a second target.
    second: Option<(bool, Vec<u8>)>,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Parts(Parts),
    Raw(String),
}

fn word(bytes: &[u8], fallback: &str) -> String {
    let word: String = bytes
        .iter()
        .take(12)
        .map(|b| WORD[usize::from(*b) % WORD.len()] as char)
        .collect();
    if word.is_empty() {
        fallback.to_string()
    } else {
        word
    }
}

fn percent_encode(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            c if SPECIALS.contains(&c) => format!("%{:02X}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// A DSN value: bare when it can be, else single-quoted with `\'` and `\\`.
fn dsn_value(text: &str) -> String {
    if !text.is_empty() && !text.contains([' ', '\'', '\\']) {
        return text.to_string();
    }
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn leaks(text: &str) -> bool {
    text.contains(SECRET)
}

fn check(text: &str, input: &str) {
    assert!(
        !leaks(text),
        "shows the password: {text:?} (from {input:?})"
    );
}

/// The target text, and the `--target` values to resolve with it.
fn build(parts: &Parts) -> Option<(String, Vec<String>)> {
    let password: String = parts
        .password
        .iter()
        .take(24)
        .map(|&b| match b {
            0..=199 => SECRET[usize::from(b) % SECRET.len()],
            _ => SPECIALS[usize::from(b) % SPECIALS.len()],
        })
        .collect();
    // At least six letters of the password's own: a leak of any of them is seen.
    if password.chars().filter(|c| SECRET.contains(c)).count() < 6 {
        return None;
    }
    let user = word(&parts.user, "u");
    let hosts: Vec<String> = parts.hosts.iter().take(3).map(|h| word(h, "h")).collect();
    let hosts = if hosts.is_empty() {
        vec!["h".to_string()]
    } else {
        hosts
    };
    let port = parts.port.map(|p| format!(":{p}")).unwrap_or_default();
    let authority_hosts: Vec<String> = hosts.iter().map(|h| format!("{h}{port}")).collect();
    let path = word(&parts.path, "db");
    let mut query: Vec<String> = parts
        .query
        .iter()
        .take(3)
        .map(|(k, v)| format!("{}={}", word(k, "k"), word(v, "v")))
        .collect();
    let scheme = match parts.scheme % 7 {
        0 | 1 => "postgres",
        2 => "crate+http",
        3 => "es+http",
        4 => "opensearch+http",
        5 => "clickhouse+http",
        _ => "http",
    };
    let scheme = match (scheme, parts.https) {
        ("postgres", true) => "postgresql".to_string(),
        ("postgres", false) => "postgres".to_string(),
        (s, true) => format!("{s}s"),
        (s, false) => s.to_string(),
    };
    let text = match parts.place {
        Place::KeyValue => {
            let mut dsn = format!(
                "host={} user={user} password={} dbname={path}",
                hosts.join(","),
                dsn_value(&password)
            );
            if let Some(p) = parts.port {
                dsn.push_str(&format!(" port={p}"));
            }
            dsn
        }
        ref place => {
            let userinfo = match place {
                Place::UserinfoEncoded => format!("{user}:{}@", percent_encode(&password)),
                Place::UserinfoRaw => format!("{user}:{password}@"),
                _ => {
                    query.insert(
                        query.len() / 2,
                        format!("password={}", percent_encode(&password)),
                    );
                    format!("{user}@")
                }
            };
            let query = if query.is_empty() {
                String::new()
            } else {
                format!("?{}", query.join("&"))
            };
            format!(
                "{scheme}://{userinfo}{}/{path}{query}",
                authority_hosts.join(",")
            )
        }
    };
    let args = match &parts.second {
        None => vec![text.clone()],
        Some((comma, host)) => {
            let other = format!("{scheme}://{user}@{}{port}/{path}", word(host, "h2"));
            if *comma {
                vec![format!("{text},{other}")]
            } else {
                vec![text.clone(), other]
            }
        }
    };
    Some((text, args))
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw(text) => {
            let _ = fuzzing::target_texts(&text, &[text.clone()]);
        }
        Input::Parts(parts) => {
            let Some((text, args)) = build(&parts) else {
                return;
            };
            for shown in fuzzing::target_texts(&text, &args) {
                check(&shown, &text);
            }
        }
    }
});
