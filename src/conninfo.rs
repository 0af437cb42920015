//! Connection strings as users type them: libpq's key=value lexing (quoted values, backslash
//! escapes), percent-decoding of URL parts, and the redaction of every password in them, used on
//! anything that echoes what the user typed.

/// Decodes `%XX` escapes (user names and passwords in URLs); other text is kept as it is.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `key=value` pair at the start of a DSN: its length, its key and its value unescaped;
/// None when it is malformed.
pub(crate) fn dsn_pair(text: &str) -> Option<(usize, &str, String)> {
    let key_len = text
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(text.len());
    let after_equals = text[key_len..].trim_start().strip_prefix('=')?.trim_start();
    let value_start = text.len() - after_equals.len();
    let (value_len, value) = dsn_value(after_equals)?;
    Some((value_start + value_len, &text[..key_len], value))
}

/// The value at the start of `text` in a key=value DSN, as libpq reads it: single-quoted, or a
/// word up to whitespace, with backslash escapes in both. Returns its length in `text` and its
/// unescaped content; None for an unclosed quote.
pub(crate) fn dsn_value(text: &str) -> Option<(usize, String)> {
    let quoted = text.starts_with('\'');
    let mut value = String::new();
    let mut chars = text.char_indices().skip(usize::from(quoted));
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => value.extend(chars.next().map(|(_, escaped)| escaped)),
            '\'' if quoted => return Some((i + 1, value)),
            c if c.is_whitespace() && !quoted => return Some((i, value)),
            c => value.push(c),
        }
    }
    (!quoted).then_some((text.len(), value))
}

/// Removes passwords from a target string: the userinfo password of a URL and `password=…` of a
/// key=value DSN. Used on anything that echoes what the user typed.
pub(crate) fn redact(text: &str) -> String {
    if let Some((scheme, rest)) = text.split_once("://") {
        // The userinfo ends at the last `@`: a password may itself hold `/`, `?`, `#` or `@`.
        // Cutting there may hide more than the password in odd URLs, never less.
        if let Some((userinfo, after)) = rest.rsplit_once('@') {
            if let Some((user, _password)) = userinfo.split_once(':') {
                return redact_query_password(&format!("{scheme}://{user}:***@{after}"));
            }
        }
        return redact_query_password(text);
    }
    redact_key_value_password(text)
}

/// Replaces the value of every `password=` in a URL query.
pub(crate) fn redact_query_password(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("password=") {
        let value_start = start + "password=".len();
        let value_end = rest[value_start..]
            .find('&')
            .map_or(rest.len(), |i| value_start + i);
        out.push_str(&rest[..value_start]);
        out.push_str("***");
        rest = &rest[value_end..];
    }
    out.push_str(rest);
    out
}

fn redact_key_value_password(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("password") {
        let after_key = rest[start + "password".len()..].trim_start();
        let Some(value) = after_key.strip_prefix('=') else {
            out.push_str(&rest[..start + "password".len()]);
            rest = &rest[start + "password".len()..];
            continue;
        };
        out.push_str(&rest[..start]);
        out.push_str("password=***");
        let value = value.trim_start();
        let value_len = dsn_value(value).map_or(value.len(), |(len, _)| len);
        rest = &value[value_len..];
    }
    out.push_str(rest);
    mask_unknown_keys(&out)
}

/// The keys of a libpq connection string: a value under any other key (`pasword=…`, a typo) is
/// shown as `***`, since it may be the secret the user meant to give.
const KNOWN_KEYS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "options",
    "application_name",
    "fallback_application_name",
    "connect_timeout",
    "client_encoding",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslmode",
    "sslnegotiation",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslcrl",
    "sslcompression",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "channel_binding",
    "gssencmode",
    "requirepeer",
    "krbsrvname",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
    "replication",
];

/// A key=value DSN with the values of unknown keys as `***`; from a pair it cannot read on, the
/// rest as it is.
fn mask_unknown_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        out.push_str(&rest[..rest.len() - trimmed.len()]);
        rest = trimmed;
        let Some((len, key, _)) = dsn_pair(rest).filter(|_| !rest.is_empty()) else {
            out.push_str(rest);
            return out;
        };
        if KNOWN_KEYS.contains(&key) {
            out.push_str(&rest[..len]);
        } else {
            out.push_str(key);
            out.push_str("=***");
        }
        rest = &rest[len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_under_an_unknown_key_is_masked_as_a_possible_secret() {
        assert_eq!(
            redact("host=h pasword=s3cret user=u"),
            "host=h pasword=*** user=u"
        );
        assert_eq!(
            redact("host=h passwd = 'a b' dbname=d"),
            "host=h passwd=*** dbname=d"
        );
        assert_eq!(redact("host=h port=5432"), "host=h port=5432");
    }

    #[test]
    fn redaction_covers_urls_and_key_values() {
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact("postgres://u@h/db?password=pw&x=1"),
            "postgres://u@h/db?password=***&x=1"
        );
        assert_eq!(
            redact("host=h password=pw user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact("host=h password = 'p w' user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgres://u:pa/ss#x@h:bad/db"),
            "postgres://u:***@h:bad/db"
        );
        assert_eq!(
            redact("host=h password='a\\'b c' user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(redact("password='unclosed secret"), "password=***");
        assert_eq!(
            redact("host=h password=se\\ cret user=u"),
            "host=h password=*** user=u"
        );
    }
}
