//! The SVG report: one picture of a load in two panels, rows per second over time on top (the
//! report's throughput series, one step per kept interval) and the batch-latency histogram below
//! (log-spaced buckets, p50 and p99 marked). Drawn with plotters' SVG backend, which writes text
//! as SVG `<text>` elements: no font files are read and no system library is linked.

use std::io::{self, Write};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Report, ReportWriter};
use crate::figures::count;

/// Width and height in pixels.
const SIZE: (u32, u32) = (960, 720);
const FONT: &str = "sans-serif";
const RATE: RGBColor = RGBColor(31, 119, 180);
const AVERAGE: RGBColor = RGBColor(127, 127, 127);
const BARS: RGBColor = RGBColor(44, 160, 44);
const P50: RGBColor = RGBColor(255, 127, 14);
const P99: RGBColor = RGBColor(214, 39, 40);
const MAX: RGBColor = RGBColor(148, 103, 189);
/// The grid between labelled values: faint, so the data stands out.
const FINE_GRID: RGBAColor = RGBAColor(0, 0, 0, 0.04);

/// The report as an SVG picture.
pub(crate) struct SvgReport;

impl ReportWriter for SvgReport {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(render(report)?.as_bytes())
    }
}

type Drawn = Result<(), DrawingAreaErrorKind<io::Error>>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// The picture as SVG text.
fn render(report: &Report) -> io::Result<String> {
    let mut svg = String::new();
    draw(
        report,
        SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(),
    )
    .map_err(io::Error::other)?;
    Ok(svg)
}

fn draw(report: &Report, root: Area<'_>) -> Drawn {
    root.fill(&WHITE)?;
    let title = format!(
        "loader {}: {} rows in {:.1} s, {}",
        report.mode,
        count(report.rows_loaded),
        report.elapsed_s,
        report.outcome
    );
    let mut root = root
        .titled(&title, (FONT, 20))?
        .titled(&format!("into {}", report.setting("target")), (FONT, 14))?;
    if let Some(verdict) = &report.verdict {
        root = root.titled(&format!("bound by {}", verdict.line()), (FONT, 12))?;
    }
    let (top, bottom) = root.split_vertically(root.dim_in_pixel().1 / 2);
    throughput(report, &top)?;
    latency(report, &bottom)?;
    root.present()
}

/// Rows per second in each kept interval, as steps, and the load's average.
fn throughput(report: &Report, area: &Area<'_>) -> Drawn {
    let points: Vec<_> = report.throughput.points().collect();
    let Some(last) = points.last() else {
        return nothing(area, "no throughput samples: no worker started loading");
    };
    let end = last.seconds.max(1e-3);
    let top = points
        .iter()
        .map(|point| point.rows_per_s)
        .fold(report.rows_per_s, f64::max)
        .max(1.0)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption("throughput", (FONT, 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..end, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the start")
        .y_desc("rows/s")
        .y_label_formatter(&|rows| short(*rows))
        .light_line_style(FINE_GRID)
        .draw()?;
    let mut from = 0.0;
    let steps = points.iter().flat_map(|point| {
        let step = [(from, point.rows_per_s), (point.seconds, point.rows_per_s)];
        from = point.seconds;
        step
    });
    chart
        .draw_series(LineSeries::new(steps, RATE.stroke_width(2)))?
        .label("rows/s in the interval")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RATE.stroke_width(2)));
    let average = report.rows_per_s;
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, average), (end, average)],
            6,
            4,
            AVERAGE.stroke_width(1),
        ))?
        .label(format!("average {} rows/s", count(average as u64)))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], AVERAGE.stroke_width(1)));
    legend(&mut chart, SeriesLabelPosition::LowerMiddle)
}

/// The batch-latency histogram on a log axis from a power of ten (where plotters' labels start)
/// to just past the slowest batch, with p50, p99 and the maximum marked. A bucket that holds any
/// batch is drawn at least a hundredth of the height, so that a few slow batches among thousands
/// still show where the axis ends.
fn latency(report: &Report, area: &Area<'_>) -> Drawn {
    let buckets = &report.batch_latency_histogram;
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return nothing(area, "no batch latencies: no batch was acknowledged");
    };
    let from = 10f64.powf(first.from_ms.log10().floor());
    let to = last.to_ms * 1.2;
    let most = buckets
        .iter()
        .map(|bucket| bucket.batches)
        .max()
        .unwrap_or(0);
    let top = most + most / 10 + 1;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "batch latency ({} batches)",
                count(report.batch_latency_ms.count)
            ),
            (FONT, 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d((from..to).log_scale(), 0..top)?;
    chart
        .configure_mesh()
        .x_desc("ms per batch (log scale)")
        .y_desc("batches")
        .x_label_formatter(&|ms| significant(*ms, 2))
        .y_label_formatter(&|batches| short(*batches as f64))
        .light_line_style(FINE_GRID)
        .draw()?;
    let lowest_bar = (top / 100).max(1);
    chart.draw_series(
        buckets
            .iter()
            .filter(|bucket| bucket.batches > 0)
            .map(|bucket| {
                Rectangle::new(
                    [
                        (bucket.from_ms, 0),
                        (bucket.to_ms, bucket.batches.max(lowest_bar)),
                    ],
                    BARS.mix(0.75).filled(),
                )
            }),
    )?;
    let summary = &report.batch_latency_ms;
    let marks = [
        ("p50", summary.p50, P50),
        ("p99", summary.p99, P99),
        ("max", summary.max, MAX),
    ];
    for (name, ms, color) in marks {
        chart
            .draw_series(LineSeries::new([(ms, 0), (ms, top)], color.stroke_width(2)))?
            .label(format!("{name} {} ms", significant(ms, 3)))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

fn legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Drawn {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
}

/// A bar chart of `bars` (label, rows/s), the bar at `marked` in another colour: `loader tune`'s
/// picture of the settings it tried.
pub(crate) fn svg_bars(title: &str, bars: &[(String, f64)], marked: usize) -> io::Result<String> {
    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
    let drawn: Drawn = (|| {
        root.fill(&WHITE)?;
        let top = bars.iter().map(|bar| bar.1).fold(0.0, f64::max) * 1.1 + 1.0;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(16)
            .x_label_area_size(90)
            .y_label_area_size(64)
            .build_cartesian_2d(0..bars.len(), 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.len())
            .x_label_formatter(&|i| bars.get(*i).map_or(String::new(), |bar| bar.0.clone()))
            .x_label_style(
                TextStyle::from((FONT, 11).into_font()).transform(FontTransform::Rotate90),
            )
            .y_desc("rows/s")
            .y_label_formatter(&|rate| short(*rate))
            .light_line_style(FINE_GRID)
            .draw()?;
        chart.draw_series(bars.iter().enumerate().map(|(i, bar)| {
            let color = if i == marked { P99 } else { RATE };
            Rectangle::new([(i, 0.0), (i + 1, bar.1)], color.mix(0.8).filled())
        }))?;
        root.present()
    })();
    drawn.map_err(io::Error::other)?;
    drop(root);
    Ok(svg)
}

/// What a probe's picture shows, in plain figures: the probe fills it from its rounds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProbePicture {
    pub title: String,
    pub subtitle: String,
    /// `first byte`, or `first token` for streamed answers.
    pub waited_for: &'static str,
    pub rounds: Vec<ProbeRoundPoint>,
}

/// One round of a probe's picture.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProbeRoundPoint {
    pub users: usize,
    pub wait_p50_ms: f64,
    pub wait_p99_ms: f64,
    pub requests_per_s: f64,
    pub effective_concurrency: Option<f64>,
    /// (seconds since the first round's start, total ms) of a sample of its answers.
    pub latencies: Vec<(f32, f32)>,
}

/// Colours of the rounds in the latency-over-time panel, in turn.
const ROUNDS: [RGBColor; 6] = [RATE, P50, BARS, P99, MAX, AVERAGE];

/// A probe as an SVG picture: the wait (p50, p99), requests/s and effective concurrency against
/// the users on top (one evenly spaced mark per round), and below every sampled
/// answer's total time over the probe's time, one colour per round.
pub(crate) fn svg_probe(picture: &ProbePicture) -> io::Result<String> {
    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, (SIZE.0, SIZE.0)).into_drawing_area();
    let drawn: Drawn = (|| {
        root.fill(&WHITE)?;
        let root = root
            .titled(&picture.title, (FONT, 20))?
            .titled(&picture.subtitle, (FONT, 13))?;
        if picture.rounds.is_empty() {
            nothing(&root, "no round was measured")?;
            return root.present();
        }
        let (top, bottom) = root.split_vertically(root.dim_in_pixel().1 * 2 / 5);
        let panels = top.split_evenly((1, 3));
        let wait = format!("time to {} (ms)", picture.waited_for);
        let p50: Vec<_> = picture
            .rounds
            .iter()
            .map(|r| (r.users, r.wait_p50_ms))
            .collect();
        let p99: Vec<_> = picture
            .rounds
            .iter()
            .map(|r| (r.users, r.wait_p99_ms))
            .collect();
        against_users(&panels[0], &wait, &[("p50", &p50, P50), ("p99", &p99, P99)])?;
        let rate: Vec<_> = picture
            .rounds
            .iter()
            .map(|r| (r.users, r.requests_per_s))
            .collect();
        against_users(&panels[1], "requests/s", &[("answers/s", &rate, RATE)])?;
        let at_once: Vec<_> = picture
            .rounds
            .iter()
            .filter_map(|r| Some((r.users, r.effective_concurrency?)))
            .collect();
        let users: Vec<_> = picture
            .rounds
            .iter()
            .map(|r| (r.users, r.users as f64))
            .collect();
        against_users(
            &panels[2],
            "served at once",
            &[
                ("effective concurrency", &at_once, BARS),
                ("users", &users, AVERAGE),
            ],
        )?;
        latency_over_time(picture, &bottom)?;
        root.present()
    })();
    drawn.map_err(io::Error::other)?;
    drop(root);
    Ok(svg)
}

/// A named line of (users, value) points in its colour.
type Line<'a> = (&'a str, &'a [(usize, f64)], RGBColor);

/// Lines of (users, value), each point marked, on an axis with one evenly spaced mark per round
/// labelled with its users (a doubling ramp reads as a log₂ axis).
fn against_users(area: &Area<'_>, caption: &str, lines: &[Line<'_>]) -> Drawn {
    let mut users: Vec<usize> = lines
        .iter()
        .flat_map(|(_, points, _)| points.iter().map(|point| point.0))
        .collect();
    users.sort_unstable();
    users.dedup();
    let at = |count: usize| users.iter().position(|&u| u == count).unwrap_or(0) as i32;
    let top = lines
        .iter()
        .flat_map(|(_, points, _)| points.iter().map(|point| point.1))
        .fold(0.0, f64::max)
        * 1.15
        + 1e-3;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 14))
        .margin(10)
        .x_label_area_size(34)
        .y_label_area_size(52)
        .build_cartesian_2d(-1..users.len() as i32, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("users")
        .x_labels(users.len() + 2)
        .x_label_formatter(&|i| {
            usize::try_from(*i)
                .ok()
                .and_then(|i| users.get(i))
                .map_or(String::new(), usize::to_string)
        })
        .y_label_formatter(&|y| short(*y))
        .light_line_style(FINE_GRID)
        .draw()?;
    for &(name, points, color) in lines {
        let points: Vec<_> = points
            .iter()
            .map(|&(users, value)| (at(users), value))
            .collect();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(
            points
                .iter()
                .map(|&point| Circle::new(point, 3, color.filled())),
        )?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// Every sampled answer's total time at the moment it was sent, one colour per round.
fn latency_over_time(picture: &ProbePicture, area: &Area<'_>) -> Drawn {
    let points = picture
        .rounds
        .iter()
        .flat_map(|round| round.latencies.iter());
    let (end, slowest) = points.fold((1e-3f32, 1e-3f32), |(end, slowest), &(at, ms)| {
        (end.max(at), slowest.max(ms))
    });
    let mut chart = ChartBuilder::on(area)
        .caption(
            "total time of each sampled answer, by when it was sent",
            (FONT, 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..f64::from(end) * 1.02, 0.0..f64::from(slowest) * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the first round's start")
        .y_desc("ms")
        .y_label_formatter(&|ms| significant(*ms, 3))
        .light_line_style(FINE_GRID)
        .draw()?;
    for (round, color) in picture.rounds.iter().zip(ROUNDS.iter().cycle()) {
        let color = *color;
        chart
            .draw_series(round.latencies.iter().map(|&(at, ms)| {
                Circle::new((f64::from(at), f64::from(ms)), 2, color.mix(0.5).filled())
            }))?
            .label(match round.users {
                1 => "1 user".to_string(),
                users => format!("{users} users"),
            })
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// A panel with nothing to draw says why.
fn nothing(area: &Area<'_>, message: &str) -> Drawn {
    let (width, height) = area.dim_in_pixel();
    let style = TextStyle::from((FONT, 16).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw_text(message, &style, (width as i32 / 2, height as i32 / 2))
}

/// `1250000` → `1.2M`: an axis label.
fn short(value: f64) -> String {
    let (scaled, unit) = [(1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(scale, _)| value.abs() >= *scale)
        .map_or((value, ""), |(scale, unit)| (value / scale, unit));
    format!("{}{unit}", significant(scaled, 2))
}

/// `value` to `digits` significant digits, without trailing zeros: `0.0123` → `0.012` for 2.
fn significant(value: f64, digits: i32) -> String {
    if value == 0.0 || !value.is_finite() {
        return "0".to_string();
    }
    let decimals = (digits - 1 - value.abs().log10().floor() as i32).max(0);
    let text = format!("{value:.*}", decimals as usize);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::Outcome as EngineOutcome;
    use crate::engine::Throughput;
    use crate::stats::{Stats, WorkerStats};

    fn report(rows: u64) -> Report {
        let mut stats = Stats::default();
        let mut throughput = Throughput::default();
        for i in 0..rows / 1000 {
            stats.record_batch(1000, 50_000, Duration::from_micros(200 + i * 37 % 5000), 0);
            throughput.tick(Duration::from_millis(100 * (i + 1)), (i + 1) * 1000);
        }
        throughput.finish(Duration::from_millis(rows / 10), rows);
        let engine = EngineOutcome {
            workers: vec![WorkerStats {
                stats,
                elapsed: Duration::from_millis(rows / 10),
                ..WorkerStats::default()
            }],
            elapsed: Duration::from_millis(rows / 10),
            failure: None,
            peak_threads: 3,
            throughput,
        };
        let mut config = serde_json::Map::new();
        config.insert("target".into(), "postgres://me@db:5432/x?a=<&>".into());
        let rejects = crate::reject::RejectLog::new("unused.ndjson".into(), false, 0);
        Report::new(
            "gen",
            &engine,
            &Stats::default(),
            &rejects,
            false,
            None,
            config,
        )
    }

    #[test]
    fn renders_both_panels_with_their_labels() {
        let svg = render(&report(50_000)).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in [
            "loader gen: 50,000 rows in 5.0 s, completed",
            "into postgres://me@db:5432/x?a=&lt;&amp;&gt;",
            "throughput",
            "seconds since the start",
            "rows/s",
            "average 10,000 rows/s",
            "batch latency (50 batches)",
            "ms per batch (log scale)",
            "p50 ",
            "p99 ",
            "max ",
        ] {
            assert!(svg.contains(text), "{text} missing from {svg}");
        }
        // The series as one polyline of two vertices per interval, the buckets as rectangles.
        let polyline = svg
            .split("<polyline")
            .skip(1)
            .map(|element| element.split("points=\"").nth(1).unwrap())
            .map(|points| points.split('"').next().unwrap().split_whitespace().count())
            .max()
            .unwrap();
        assert_eq!(polyline, 2 * 50);
        assert!(svg.matches("<rect").count() > 10);
        // Well formed enough: every element is closed, by `/>` or by its closing tag.
        let closing = svg.matches("</").count();
        assert_eq!(
            svg.matches('<').count(),
            2 * closing + svg.matches("/>").count()
        );
    }

    #[test]
    fn a_load_without_batches_still_draws_and_says_why() {
        let svg = render(&report(0)).unwrap();
        assert!(svg.contains("no batch latencies"), "{svg}");
        assert!(svg.contains("throughput"));
    }

    #[test]
    fn numbers_are_short_and_significant() {
        assert_eq!(short(1_250_000.0), "1.2M");
        assert_eq!(short(40_000.0), "40k");
        assert_eq!(short(500.0), "500");
        assert_eq!(short(0.5), "0.5");
        assert_eq!(significant(0.0123, 2), "0.012");
        assert_eq!(significant(20.0, 2), "20");
        assert_eq!(significant(3.0000001, 2), "3");
        assert_eq!(significant(1.2345, 3), "1.23");
    }
}
