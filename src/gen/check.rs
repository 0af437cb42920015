//! The CHECK constraints gen understands, read from their definitions as the catalog prints them
//! (`CHECK ((total >= (0)::numeric))`): bounds (`>=`, `>`, `<=`, `<`, `BETWEEN`), `IN (…)`,
//! `length(col) <= n` and `col <> ''`, joined by `AND`. Anything else is not understood: the
//! caller names it at the start.

/// One understood rule about a column's values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rule {
    AtLeast(f64),
    Above(f64),
    AtMost(f64),
    Below(f64),
    OneOf(Vec<String>),
    MinLength(u32),
    MaxLength(u32),
    NotEmpty,
}

/// The rules of a CHECK definition, each with the column it constrains (`VALUE` in a domain's
/// check), or `None` when any part of it is not understood.
pub(crate) fn parse(definition: &str) -> Option<Vec<(String, Rule)>> {
    let body = definition.trim().strip_prefix("CHECK")?.trim();
    let body = body.strip_suffix("NOT VALID").unwrap_or(body).trim();
    let body = without_casts(body);
    let mut rules = Vec::new();
    for conjunct in split_and(strip_outer(&body)) {
        rules.push(rule(strip_outer(conjunct))?);
    }
    Some(rules)
}

fn rule(text: &str) -> Option<(String, Rule)> {
    if let Some((column, list)) = text.split_once(" = ANY ") {
        let list = strip_outer(list.trim());
        let items = list.strip_prefix("ARRAY[")?.strip_suffix(']')?;
        let values = split_top(items, ", ")
            .into_iter()
            .map(literal_text)
            .collect::<Option<Vec<_>>>()?;
        return Some((identifier(column)?, Rule::OneOf(values)));
    }
    let (left, operator, right) = comparison(text)?;
    if let Some(column) = length_of(left) {
        let n: f64 = literal_text(right)?.parse().ok()?;
        let rule = match operator {
            "<=" => Rule::MaxLength(n as u32),
            "<" => Rule::MaxLength((n as u32).checked_sub(1)?),
            ">=" => Rule::MinLength(n as u32),
            ">" => Rule::MinLength(n as u32 + 1),
            _ => return None,
        };
        return Some((column, rule));
    }
    let (column, operator, value) = match identifier(left) {
        Some(column) => (column, operator, right),
        None => (identifier(right)?, flip(operator)?, left),
    };
    let value = literal_text(value)?;
    let number = value.parse::<f64>();
    let rule = match (operator, number) {
        ("<>" | "!=", _) if value.is_empty() => Rule::NotEmpty,
        ("=", _) => Rule::OneOf(vec![value]),
        (">=", Ok(n)) => Rule::AtLeast(n),
        (">", Ok(n)) => Rule::Above(n),
        ("<=", Ok(n)) => Rule::AtMost(n),
        ("<", Ok(n)) => Rule::Below(n),
        _ => return None,
    };
    Some((column, rule))
}

fn flip(operator: &str) -> Option<&'static str> {
    Some(match operator {
        ">=" => "<=",
        ">" => "<",
        "<=" => ">=",
        "<" => ">",
        "=" => "=",
        "<>" => "<>",
        _ => return None,
    })
}

/// `left OP right` at the top level (outside quotes and parentheses).
fn comparison(text: &str) -> Option<(&str, &'static str, &str)> {
    for operator in [" >= ", " <= ", " <> ", " != ", " > ", " < ", " = "] {
        if let Some(at) = find_top(text, operator) {
            return Some((
                text[..at].trim(),
                operator.trim(),
                text[at + operator.len()..].trim(),
            ));
        }
    }
    None
}

/// `length(col)` or `char_length(col)`: the column.
fn length_of(text: &str) -> Option<String> {
    let inner = text
        .strip_prefix("length(")
        .or_else(|| text.strip_prefix("char_length("))?
        .strip_suffix(')')?;
    identifier(inner)
}

/// A column name: `col`, `(col)`, `"Col"`.
fn identifier(text: &str) -> Option<String> {
    let text = strip_outer(text.trim());
    if let Some(quoted) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        return Some(quoted.replace("\"\"", "\""));
    }
    let mut chars = text.chars();
    let first = chars.next()?;
    (first.is_alphabetic() || first == '_')
        .then_some(())
        .filter(|()| chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|()| !matches!(text, "true" | "false" | "NULL"))?;
    Some(text.to_string())
}

/// A literal's text: `'a''b'` → `a'b`, `(-5)` → `-5`, `0.5` → `0.5`.
fn literal_text(text: &str) -> Option<String> {
    let text = strip_outer(text.trim());
    if let Some(quoted) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Some(quoted.replace("''", "'"));
    }
    let text = text.replace(' ', "");
    text.parse::<f64>().ok().map(|_| text)
}

/// The text without `::type` casts (`(0)::numeric`, `'a'::character varying`).
fn without_casts(text: &str) -> String {
    const CONTINUED: [&str; 6] = ["varying", "precision", "with", "without", "time", "zone"];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("::") {
        out.push_str(&rest[..at]);
        rest = &rest[at + 2..];
        loop {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '"')))
                .unwrap_or(rest.len());
            rest = &rest[end..];
            rest = rest.strip_prefix("[]").unwrap_or(rest);
            match rest.strip_prefix(' ') {
                Some(after) if CONTINUED.iter().any(|word| after.starts_with(word)) => rest = after,
                _ => break,
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text without parentheses that enclose all of it.
fn strip_outer(mut text: &str) -> &str {
    loop {
        text = text.trim();
        let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) else {
            return text;
        };
        // `(a) AND (b)` starts and ends with parentheses that do not match each other.
        if find_top(inner, ")").is_some() {
            return text;
        }
        text = inner;
    }
}

fn split_and(text: &str) -> Vec<&str> {
    split_top(text, " AND ")
}

/// `text` split at every top-level `separator`.
fn split_top<'a>(text: &'a str, separator: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(at) = find_top(rest, separator) {
        parts.push(&rest[..at]);
        rest = &rest[at + separator.len()..];
    }
    parts.push(rest);
    parts
}

/// Where `needle` first occurs outside quotes and parentheses (or a `)` closes more than opened).
fn find_top(text: &str, needle: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut quoted = false;
    for (at, c) in text.char_indices() {
        if !quoted && depth == 0 && text[at..].starts_with(needle) {
            return Some(at);
        }
        match c {
            '\'' => quoted = !quoted,
            '(' | '[' if !quoted => depth += 1,
            ')' | ']' if !quoted => {
                depth -= 1;
                if depth < 0 && needle == ")" {
                    return Some(at);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(definition: &str) -> Vec<(String, Rule)> {
        parse(definition).unwrap_or_else(|| panic!("{definition} is understood"))
    }

    #[test]
    fn the_catalogs_spellings_of_simple_checks_are_understood() {
        let column = |name: &str, rule| (name.to_string(), rule);
        assert_eq!(
            rules("CHECK ((total >= (0)::numeric))"),
            [column("total", Rule::AtLeast(0.0))]
        );
        assert_eq!(
            rules("CHECK (((score >= 1) AND (score <= 5)))"),
            [
                column("score", Rule::AtLeast(1.0)),
                column("score", Rule::AtMost(5.0))
            ]
        );
        assert_eq!(
            rules("CHECK (((code)::text = ANY ((ARRAY['a'::character varying, 'b''c'::character varying])::text[])))"),
            [column("code", Rule::OneOf(vec!["a".into(), "b'c".into()]))]
        );
        assert_eq!(
            rules("CHECK ((length((code)::text) <= 8))"),
            [column("code", Rule::MaxLength(8))]
        );
        assert_eq!(
            rules("CHECK ((name <> ''::text))"),
            [column("name", Rule::NotEmpty)]
        );
        assert_eq!(
            rules("CHECK ((qty > '-5'::integer))"),
            [column("qty", Rule::Above(-5.0))]
        );
        assert_eq!(
            rules("CHECK ((0 < qty))"),
            [column("qty", Rule::Above(0.0))]
        );
        assert_eq!(
            rules("CHECK ((VALUE >= 0))"),
            [column("VALUE", Rule::AtLeast(0.0))]
        );
        assert_eq!(
            rules("CHECK ((\"Weird Name\" < 10.5))"),
            [column("Weird Name", Rule::Below(10.5))]
        );
    }

    #[test]
    fn anything_else_is_not_understood() {
        for definition in [
            "CHECK ((a < b))",
            "CHECK (((a > 0) OR (b > 0)))",
            "CHECK ((lower(name) = name))",
            "CHECK ((a IS NOT NULL))",
        ] {
            assert_eq!(parse(definition), None, "{definition}");
        }
    }
}
