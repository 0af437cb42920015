//! The live progress line of every mode: its fields, each with a rank, fitted into a width by
//! dropping the least needed fields first (never by wrapping), with a bar that takes the room
//! left over; the same fields unfitted for the plain lines written when stderr is not a terminal.
//! It also owns the spellings the line shares: a share of a total, a time left, megabytes.

use std::io::IsTerminal;
use std::time::Duration;

/// The narrowest bar worth drawing, brackets included.
const NARROWEST_BAR: usize = 12;
/// The width assumed for a terminal that does not tell its own.
const DEFAULT_WIDTH: usize = 80;
/// Between two fields.
const GAP: &str = "  ";

/// One progress line, its fields in the order they are shown.
#[derive(Debug, Default)]
pub(crate) struct ProgressLine {
    parts: Vec<Part>,
}

#[derive(Debug)]
struct Part {
    /// Lower ranks are kept longer; rank 0 is never dropped.
    rank: u8,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Text(String),
    /// A bar filled to this share of its width, drawn only on a terminal.
    Bar(f64),
}

impl ProgressLine {
    /// Adds a field; among the fields that do not fit, the ones of the highest rank go first.
    pub(crate) fn field(&mut self, rank: u8, text: impl Into<String>) -> &mut ProgressLine {
        self.parts.push(Part {
            rank,
            kind: Kind::Text(text.into()),
        });
        self
    }

    /// Adds a bar filled to `share` (0 to 1), which takes whatever width the kept fields leave.
    pub(crate) fn bar(&mut self, rank: u8, share: f64) -> &mut ProgressLine {
        self.parts.push(Part {
            rank,
            kind: Kind::Bar(share.clamp(0.0, 1.0)),
        });
        self
    }

    /// Every text field, for a plain line.
    pub(crate) fn plain(&self) -> String {
        let texts: Vec<&str> = self
            .parts
            .iter()
            .filter_map(|part| match &part.kind {
                Kind::Text(text) => Some(text.as_str()),
                Kind::Bar(_) => None,
            })
            .collect();
        texts.join(GAP)
    }

    /// The line in at most `width` columns: the fields of the highest ranks dropped until the rest
    /// fits, the bar given the room that is left (or dropped when that is too little), and a
    /// field of rank 0 that alone is too wide cut at the width.
    pub(crate) fn fit(&self, width: usize) -> String {
        let mut kept: Vec<bool> = vec![true; self.parts.len()];
        let mut ranks: Vec<u8> = self.parts.iter().map(|part| part.rank).collect();
        ranks.sort_unstable();
        ranks.dedup();
        while self.width_of(&kept, NARROWEST_BAR) > width {
            let Some(&highest) = ranks.last().filter(|rank| **rank > 0) else {
                break;
            };
            ranks.pop();
            for (keep, part) in kept.iter_mut().zip(&self.parts) {
                if part.rank == highest {
                    *keep = false;
                }
            }
        }
        let bar_width = width.saturating_sub(self.width_of(&kept, 0) + GAP.len());
        let mut shown = Vec::new();
        for (part, keep) in self.parts.iter().zip(&kept) {
            match (&part.kind, keep) {
                (_, false) => {}
                (Kind::Text(text), true) => shown.push(text.clone()),
                (Kind::Bar(share), true) => shown.push(draw_bar(*share, bar_width)),
            }
        }
        shown.retain(|text| !text.is_empty());
        shown.join(GAP).chars().take(width).collect()
    }

    /// Columns the `kept` parts take, with the bar counted as `bar` columns (and no gap when 0).
    fn width_of(&self, kept: &[bool], bar: usize) -> usize {
        let widths: Vec<usize> = self
            .parts
            .iter()
            .zip(kept)
            .filter(|(_, keep)| **keep)
            .map(|(part, _)| match &part.kind {
                Kind::Text(text) => text.chars().count(),
                Kind::Bar(_) => bar,
            })
            .filter(|width| *width > 0)
            .collect();
        widths.iter().sum::<usize>() + GAP.len() * widths.len().saturating_sub(1)
    }
}

/// The columns a progress line may take on stderr: the terminal's width less one (a line of
/// exactly the width makes some terminals wrap), 80 when it does not tell; none when stderr is
/// not a terminal, where plain lines are written.
pub(crate) fn stderr_width() -> Option<usize> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let width = terminal_size::terminal_size_of(std::io::stderr())
        .map_or(DEFAULT_WIDTH, |(width, _)| usize::from(width.0));
    Some(width.saturating_sub(1))
}

/// `[=====>    ]` in `width` columns, or nothing when too narrow.
fn draw_bar(share: f64, width: usize) -> String {
    if width < NARROWEST_BAR {
        return String::new();
    }
    let inside = width - 2;
    let filled = ((share * inside as f64) as usize).min(inside);
    let mut bar = String::with_capacity(width);
    bar.push('[');
    bar.push_str(&"=".repeat(filled));
    if filled < inside {
        bar.push('>');
        bar.push_str(&" ".repeat(inside - filled - 1));
    }
    bar.push(']');
    bar
}

/// `done` of `total` as `24.8%`.
pub(crate) fn percent(done: u64, total: u64) -> String {
    format!("{:.1}%", 100.0 * share(done, total))
}

/// `done` of `total` as a share from 0 to 1 (1 for an empty total).
pub(crate) fn share(done: u64, total: u64) -> f64 {
    if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).min(1.0)
    }
}

/// The time left to reach `total` from `done` at `rate` per second, in whole seconds rounded up:
/// `eta 00:01:07`, or `eta ?` while nothing has been done.
pub(crate) fn eta(done: u64, total: u64, rate: f64) -> String {
    let left = total.saturating_sub(done) as f64;
    if left == 0.0 {
        return "eta 00:00:00".into();
    }
    if rate <= 0.0 || !(left / rate).is_finite() {
        return "eta ?".into();
    }
    format!(
        "eta {}",
        clock(Duration::from_secs_f64((left / rate).min(1e9).ceil()))
    )
}

/// `01:02:03` (hours grow past two digits rather than wrap).
pub(crate) fn clock(time: Duration) -> String {
    let seconds = time.as_secs();
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Bytes as megabytes with one decimal: `12.3 MB`.
pub(crate) fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen_line() -> ProgressLine {
        let mut line = ProgressLine::default();
        line.field(0, clock(Duration::from_secs(7)))
            .bar(5, share(4_956_000, 20_000_000))
            .field(0, "4,956,000/20,000,000 rows")
            .field(0, percent(4_956_000, 20_000_000))
            .field(1, eta(4_956_000, 20_000_000, 708_000.0))
            .field(2, "now 835,773 rows/s")
            .field(4, "avg 708,000 rows/s")
            .field(6, "batches 4,956")
            .field(7, "retries 0")
            .field(8, "errors 0")
            .field(8, "rejected 0");
        line
    }

    #[test]
    fn fits_every_width_and_keeps_share_and_eta() {
        let line = gen_line();
        for width in [60, 80, 120, 200] {
            let shown = line.fit(width);
            assert!(shown.chars().count() <= width, "{width}: {shown:?}");
            assert!(shown.contains("24.8%"), "{width}: {shown:?}");
            assert!(shown.contains("eta 00:00:22"), "{width}: {shown:?}");
            assert!(!shown.contains('\n'));
        }
        assert_eq!(
            line.fit(60),
            "00:00:07  4,956,000/20,000,000 rows  24.8%  eta 00:00:22"
        );
        assert!(line.fit(80).contains("now 835,773 rows/s"));
        assert!(!line.fit(80).contains('['), "no room for a bar at 80");
        let wide = line.fit(200);
        assert!(
            wide.contains("rejected 0") && wide.contains("[====="),
            "{wide}"
        );
        assert_eq!(
            wide.chars().count(),
            200,
            "the bar takes the rest: {wide:?}"
        );
    }

    #[test]
    fn drops_the_highest_rank_first_and_cuts_a_lone_field() {
        let mut line = ProgressLine::default();
        line.field(0, "aaaa").field(2, "bbbb").field(1, "cccc");
        assert_eq!(line.fit(14), "aaaa  cccc");
        assert_eq!(line.fit(16), "aaaa  bbbb  cccc");
        assert_eq!(line.fit(3), "aaa");
    }

    #[test]
    fn plain_lines_keep_every_field_but_the_bar() {
        let plain = gen_line().plain();
        assert!(plain.starts_with("00:00:07  4,956,000/20,000,000 rows  24.8%  eta 00:00:22"));
        assert!(plain.ends_with("errors 0  rejected 0"));
        assert!(!plain.contains('['));
    }

    #[test]
    fn bar_is_filled_by_its_share() {
        assert_eq!(draw_bar(0.5, 12), "[=====>    ]");
        assert_eq!(draw_bar(1.0, 12), "[==========]");
        assert_eq!(draw_bar(0.0, 12), "[>         ]");
        assert_eq!(draw_bar(0.5, 11), "");
    }

    #[test]
    fn eta_and_clock() {
        assert_eq!(eta(0, 100, 0.0), "eta ?");
        assert_eq!(eta(100, 100, 0.0), "eta 00:00:00");
        assert_eq!(eta(50, 100, 10.0), "eta 00:00:05");
        assert_eq!(clock(Duration::from_secs(3600 * 101 + 61)), "101:01:01");
        assert_eq!(percent(0, 0), "100.0%");
        assert_eq!(megabytes(12_345_678), "12.3 MB");
    }
}
