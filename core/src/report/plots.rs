//! The report's figures, drawn with plotters and an embedded font (no system
//! fonts needed): `pareto.png`/`pareto.svg` (segmentation quality against
//! depth quality, one point per method with seed error bars; top-right is
//! best; `full` blue, `half` orange), `curves.png` (validation mIoU and
//! abs err against training images seen) and `forgetting.png` (per method,
//! segmentation and depth forgetting as bars with seed error bars; the
//! noise floor of methods without task phases pale).

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::error::ReportError;
use super::forgetting::{ForgettingStats, MethodForgetting};
use super::summary::MethodSummary;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            tracing::warn!("the embedded font did not load; figure text may be missing");
        }
    });
}

/// `full` blue, `half` orange, the others from the rest of the tab10 palette.
pub fn colour(label: &str, index: usize) -> RGBColor {
    const OTHERS: [RGBColor; 8] = [
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    match label {
        "full" => RGBColor(31, 119, 180),
        "half" => RGBColor(255, 127, 14),
        _ => OTHERS[index % OTHERS.len()],
    }
}

fn plot_err(path: &Path) -> impl Fn(String) -> ReportError + '_ {
    move |message| ReportError::Plot { path: path.to_path_buf(), message }
}

/// Range with a margin around `values` (never empty).
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.15).max(hi.abs().max(lo.abs()) * 0.01).max(1e-6);
    (lo - pad, hi + pad)
}

fn draw_pareto<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, summary: &[MethodSummary]) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    // mIoU (index 0) and δ<1.25 (index 4), in percent.
    let pts: Vec<(&MethodSummary, f64, f64, f64, f64)> = summary
        .iter()
        .map(|m| (m, m.stats[0].0 * 100.0, m.stats[0].1 * 100.0, m.stats[4].0 * 100.0, m.stats[4].1 * 100.0))
        .collect();
    let (x0, x1) = range(pts.iter().flat_map(|p| [p.1 - p.2, p.1 + p.2]));
    let (y0, y1) = range(pts.iter().flat_map(|p| [p.3 - p.4, p.3 + p.4]));
    let mut chart = ChartBuilder::on(root)
        .caption("Segmentation vs depth (top right is best)", (FAMILY, 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("segmentation mIoU (%)")
        .y_desc("depth δ<1.25 (%)")
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (m, x, xs, y, ys)) in pts.iter().enumerate() {
        let c = colour(&m.label, i);
        let style = ShapeStyle::from(&c).stroke_width(2);
        chart.draw_series([ErrorBar::new_horizontal(*y, x - xs, *x, x + xs, style, 8)]).map_err(|e| e.to_string())?;
        chart.draw_series([ErrorBar::new_vertical(*x, y - ys, *y, y + ys, style, 8)]).map_err(|e| e.to_string())?;
        chart.draw_series([Circle::new((*x, *y), 6, c.filled())]).map_err(|e| e.to_string())?;
        let label =
            EmptyElement::at((*x, *y)) + Text::new(m.label.clone(), (9, -20), (FAMILY, 15).into_font().color(&c));
        chart.draw_series([label]).map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// Writes `pareto.png` and `pareto.svg` into `out`.
pub fn pareto(summary: &[MethodSummary], out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    register();
    let png = out.join("pareto.png");
    {
        let root = BitMapBackend::new(&png, (900, 700)).into_drawing_area();
        draw_pareto(&root, summary).map_err(plot_err(&png))?;
    }
    let svg = out.join("pareto.svg");
    {
        let root = SVGBackend::new(&svg, (900, 700)).into_drawing_area();
        draw_pareto(&root, summary).map_err(plot_err(&svg))?;
    }
    Ok(vec![png, svg])
}

/// Writes `curves.png`: validation mIoU (left) and abs err (right) against images seen.
pub fn curves(summary: &[MethodSummary], path: &Path) -> Result<PathBuf, ReportError> {
    register();
    let draw = || -> Result<(), String> {
        let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = root.split_evenly((1, 2));
        let x_max = summary.iter().flat_map(|m| m.curve.iter().map(|c| c.0)).fold(1.0, f64::max);
        for (panel, (title, pick, percent)) in panels
            .iter()
            .zip([("validation mIoU (%)", 1usize, true), ("validation abs err (lower is better)", 2usize, false)])
        {
            let value = |c: &(f64, f64, f64)| {
                let v = if pick == 1 { c.1 } else { c.2 };
                if percent {
                    v * 100.0
                } else {
                    v
                }
            };
            let (lo, hi) = range(summary.iter().flat_map(|m| m.curve.iter().map(value)));
            let lo = lo.max(0.0);
            let mut chart = ChartBuilder::on(panel)
                .caption(title, (FAMILY, 20))
                .margin(14)
                .x_label_area_size(44)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..x_max, lo..hi)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("training images seen")
                .x_label_formatter(&|v| format!("{v:.0}"))
                .label_style((FAMILY, 13))
                .axis_desc_style((FAMILY, 15))
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, m) in summary.iter().enumerate() {
                let c = colour(&m.label, i);
                let points: Vec<(f64, f64)> = m.curve.iter().map(|p| (p.0, value(p))).collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), ShapeStyle::from(&c).stroke_width(2)))
                    .map_err(|e| e.to_string())?
                    .label(m.label.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(|e| e.to_string())?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font((FAMILY, 13))
                .position(if percent { SeriesLabelPosition::LowerRight } else { SeriesLabelPosition::UpperRight })
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())
    };
    draw().map_err(plot_err(path))?;
    Ok(path.to_path_buf())
}

/// One panel of `forgetting.png`: a bar per method of the value `pick` takes from its stats.
fn draw_forgetting_panel<DB: DrawingBackend>(
    panel: &DrawingArea<DB, Shift>,
    rows: &[MethodForgetting],
    title: &str,
    pick: fn(&ForgettingStats) -> (f64, f64),
    digits: usize,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let n = rows.len();
    let bars: Vec<Option<(f64, f64)>> =
        rows.iter().map(|r| r.stats.as_ref().map(pick).filter(|v| v.0.is_finite())).collect();
    let (lo, hi) = range(bars.iter().flatten().flat_map(|(m, s)| [m - s, m + s]).chain([0.0]));
    let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    // One segment per method: bars span a segment, whiskers stand at its centre.
    let mut chart = ChartBuilder::on(panel)
        .caption(title, (FAMILY, 20))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d((0..n.max(1) - 1).into_segmented(), lo..hi)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.max(1))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|v| format!("{:.digits$}", if v.abs() < 1e-12 { 0.0 } else { *v }))
        .label_style((FAMILY, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    let zero = LineSeries::new([(SegmentValue::Exact(0), 0.0), (SegmentValue::Last, 0.0)], BLACK);
    chart.draw_series(zero).map_err(|e| e.to_string())?;
    for (i, (row, bar)) in rows.iter().zip(&bars).enumerate() {
        let centre = SegmentValue::CenterOf(i);
        let Some((mean, std)) = *bar else {
            let na = EmptyElement::at((centre, 0.0)) + Text::new("n/a", (-10, -18), (FAMILY, 14).into_font());
            chart.draw_series([na]).map_err(|e| e.to_string())?;
            continue;
        };
        let c = colour(&row.label, i);
        let fill = if row.phased { c.filled() } else { c.mix(0.35).filled() };
        let right = if i + 1 < n { SegmentValue::Exact(i + 1) } else { SegmentValue::Last };
        let mut rect = Rectangle::new([(SegmentValue::Exact(i), 0.0), (right, mean)], fill);
        rect.set_margin(0, 0, 14, 14);
        chart.draw_series([rect]).map_err(|e| e.to_string())?;
        let whisker = ShapeStyle::from(&BLACK).stroke_width(2);
        chart
            .draw_series([ErrorBar::new_vertical(centre, mean - std, mean, mean + std, whisker, 10)])
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes `forgetting.png`: segmentation forgetting in mIoU points (left) and
/// depth forgetting in abs err (right), mean ± std over seeds per method;
/// pale bars are the noise floor, `n/a` marks methods not measured.
pub fn forgetting(rows: &[MethodForgetting], path: &Path) -> Result<PathBuf, ReportError> {
    register();
    let draw = || -> Result<(), String> {
        let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = root.split_evenly((1, 2));
        let seg: fn(&ForgettingStats) -> (f64, f64) = |s| s.seg;
        let depth: fn(&ForgettingStats) -> (f64, f64) = |s| s.depth;
        draw_forgetting_panel(&panels[0], rows, "segmentation forgetting, mIoU points (pale: noise floor)", seg, 2)?;
        draw_forgetting_panel(&panels[1], rows, "depth forgetting, abs err (pale: noise floor)", depth, 4)?;
        root.present().map_err(|e| e.to_string())
    };
    draw().map_err(plot_err(path))?;
    Ok(path.to_path_buf())
}
