//! `--plots DIR`: the probe's pictures, drawn with `plotters` as SVG and rasterised to PNG with
//! `resvg` using an embedded DejaVu Sans (so PNG text needs no system fonts): a layers × heads
//! heat map of sink scores, per-layer kurtosis and inf-norm curves, and the log2 histograms of
//! every hidden state.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::files::OutputSet;
use crate::probe::report::ProbeReport;

/// DejaVu Sans (Bitstream Vera licence, see assets/fonts/DejaVuSans-LICENSE.txt).
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The font family the SVGs name and the PNG renderer resolves.
const FAMILY: &str = "DejaVu Sans";

/// The pictures, by file stem.
pub const PLOTS: [&str; 3] = ["sink_heatmap", "layer_curves", "log2_histograms"];

/// The files [`stage_plots`] writes into `dir` (SVG and PNG of each of [`PLOTS`]).
pub fn plot_paths(dir: &Path) -> Vec<PathBuf> {
    PLOTS
        .iter()
        .flat_map(|p| [dir.join(format!("{p}.svg")), dir.join(format!("{p}.png"))])
        .collect()
}

/// Draws every picture of `report` (titled with `title`) into `outputs`, whose targets are
/// [`plot_paths`] starting at index `first`. Nothing is written until the caller commits.
pub fn stage_plots(
    report: &ProbeReport,
    title: &str,
    outputs: &mut OutputSet,
    first: usize,
) -> Result<()> {
    let svgs = [
        svg(
            900,
            40 + 22 * report.layers.len().max(1) as u32 + 80,
            |root| sink_heatmap(report, title, root),
        )?,
        svg(900, 700, |root| layer_curves(report, title, root))?,
        svg(
            900,
            40 + 18 * (report.layers.len() as u32 + 1) + 80,
            |root| log2_histograms(report, title, root),
        )?,
    ];
    for (i, s) in svgs.iter().enumerate() {
        outputs.stage(first + 2 * i, s.as_bytes())?;
        outputs.stage(first + 2 * i + 1, &png(s)?)?;
    }
    Ok(())
}

type Root<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::InvalidOption(format!("drawing a plot failed: {e}"))
}

/// Runs `draw` on a `w × h` SVG canvas and returns the SVG text.
fn svg(w: u32, h: u32, draw: impl FnOnce(&Root<'_>) -> Result<()>) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    Ok(out)
}

/// Rasterises an SVG with the embedded font.
fn png(svg: &str) -> Result<Vec<u8>> {
    let mut opt = resvg::usvg::Options {
        font_family: FAMILY.into(),
        ..resvg::usvg::Options::default()
    };
    let db = opt.fontdb_mut();
    db.load_font_data(FONT.to_vec());
    db.set_sans_serif_family(FAMILY);
    let tree = resvg::usvg::Tree::from_str(svg, &opt).map_err(plot_error)?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| plot_error("empty canvas"))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(plot_error)
}

/// White → dark red for `t` in [0, 1].
fn heat(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(255.0, 150.0), lerp(255.0, 10.0), lerp(255.0, 30.0))
}

fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().into()
}

fn sink_heatmap(r: &ProbeReport, title: &str, root: &Root<'_>) -> Result<()> {
    let (layers, heads) = (
        r.layers.len(),
        r.layers.first().map_or(0, |l| l.heads.len()),
    );
    let mut chart = ChartBuilder::on(root)
        .caption(format!("{title}: sink score (weight on token 0)"), font(18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(0..heads.max(1), 0..layers.max(1))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("head")
        .y_desc("layer")
        .label_style(font(12))
        .draw()
        .map_err(plot_error)?;
    let cells = r.layers.iter().flat_map(|l| {
        l.heads.iter().map(move |h| {
            let v = h.sink_score.unwrap_or(0.0);
            Rectangle::new(
                [(h.head, l.layer), (h.head + 1, l.layer + 1)],
                heat(v).filled(),
            )
        })
    });
    chart.draw_series(cells).map_err(plot_error)?;
    let labels = r.layers.iter().flat_map(|l| {
        l.heads.iter().map(move |h| {
            let v = h.sink_score.unwrap_or(0.0);
            let color: &'static RGBColor = if v > 0.6 { &WHITE } else { &BLACK };
            Text::new(format!("{v:.2}"), (h.head, l.layer), font(10).color(color))
        })
    });
    chart.draw_series(labels).map_err(plot_error)?;
    Ok(())
}

fn layer_curves(r: &ProbeReport, title: &str, root: &Root<'_>) -> Result<()> {
    let halves = root.split_evenly((2, 1));
    let series = [
        (
            "tensor kurtosis (Pearson, all values)",
            r.layers
                .iter()
                .map(|l| l.hidden.tensor_kurtosis)
                .collect::<Vec<_>>(),
        ),
        (
            "inf-norm max |x|",
            r.layers.iter().map(|l| Some(l.hidden.inf_norm)).collect(),
        ),
    ];
    for (area, (name, ys)) in halves.iter().zip(series) {
        let points: Vec<(f64, f64)> = ys
            .iter()
            .enumerate()
            .filter_map(|(i, y)| y.filter(|v| *v > 0.0).map(|v| (i as f64, v)))
            .collect();
        let top = points.iter().map(|p| p.1).fold(1.0f64, f64::max) * 2.0;
        let bottom = points.iter().map(|p| p.1).fold(top, f64::min).max(1e-3) / 2.0;
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{title}: {name} per layer"), font(16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(
                0f64..(r.layers.len().max(2) - 1) as f64,
                (bottom..top).log_scale(),
            )
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("layer")
            .y_desc(name)
            .label_style(font(12))
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(LineSeries::new(points.clone(), RED.stroke_width(2)))
            .map_err(plot_error)?;
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, RED.filled())))
            .map_err(plot_error)?;
    }
    Ok(())
}

fn log2_histograms(r: &ProbeReport, title: &str, root: &Root<'_>) -> Result<()> {
    let rows: Vec<(String, &Vec<u64>)> =
        std::iter::once(("emb".to_string(), &r.embeddings.log2_hist))
            .chain(
                r.layers
                    .iter()
                    .map(|l| (l.layer.to_string(), &l.hidden.log2_hist)),
            )
            .collect();
    let bins = rows.iter().map(|(_, h)| h.len()).max().unwrap_or(0);
    let offset = i32::try_from(crate::abi::QA_LOG2_BIN_OFFSET).unwrap_or(24);
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{title}: log2 |x| histogram of each hidden state (share of values)"),
            font(16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(-offset..(bins as i32 - offset), 0..rows.len())
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("floor(log2 |x|)")
        .y_desc("hidden state (emb, then layer)")
        .y_label_formatter(&|y| rows.get(*y).map_or(String::new(), |r| r.0.clone()))
        .label_style(font(11))
        .draw()
        .map_err(plot_error)?;
    let cells = rows.iter().enumerate().flat_map(|(y, (_, hist))| {
        let total = hist.iter().sum::<u64>().max(1) as f64;
        hist.iter().enumerate().map(move |(b, &n)| {
            // Share on a log scale so that rare outlier bins stay visible: 1e-4 → pale, 1 → dark.
            let share = n as f64 / total;
            let t = if n == 0 {
                0.0
            } else {
                (share.log10() + 4.0) / 4.0 + 0.05
            };
            let x = b as i32 - offset;
            Rectangle::new([(x, y), (x + 1, y + 1)], heat(t).filled())
        })
    });
    chart.draw_series(cells).map_err(plot_error)?;
    Ok(())
}
