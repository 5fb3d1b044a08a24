//! The chart of BENCHMARKS.md: requests per second and p99 latency against connections, drawn
//! with plotters into a pixel buffer and written as PNG.
//!
//! Text is rendered with the Hack font shipped in the `epaint_default_fonts` crate (through
//! plotters' `ab_glyph` backend), so the chart looks the same on every machine and needs no
//! system fonts.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context as _, Result, anyhow, bail};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// Width and height of the PNG in pixels.
const SIZE: (u32, u32) = (1200, 520);

/// One point of the chart: a connection setup and what it achieved.
#[derive(Debug, Clone)]
pub struct Point {
    /// The x label, e.g. `16` or `1024 idle + 16`.
    pub label: String,
    /// Requests per second.
    pub rps: f64,
    /// p99 latency in milliseconds.
    pub p99_ms: f64,
}

fn register_font() -> Result<()> {
    static FONT: OnceLock<bool> = OnceLock::new();
    let loaded = *FONT.get_or_init(|| {
        plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::HACK_REGULAR,
        )
        .is_ok()
    });
    if loaded {
        Ok(())
    } else {
        bail!("the chart font could not be loaded")
    }
}

/// Draws the two panels (requests/s, p99 ms) side by side into an RGB buffer.
pub fn draw(points: &[Point], title: &str) -> Result<Vec<u8>> {
    if points.is_empty() {
        bail!("nothing to chart");
    }
    register_font()?;
    let mut pixels = vec![0u8; SIZE.0 as usize * SIZE.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("chart: {e}"))?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| anyhow!("chart: {e}"))?;
        let (left, right) = root.split_horizontally(SIZE.0 / 2);
        let rps: Vec<f64> = points.iter().map(|p| p.rps).collect();
        let p99: Vec<f64> = points.iter().map(|p| p.p99_ms).collect();
        let labels: Vec<&str> = points.iter().map(|p| p.label.as_str()).collect();
        panel(&left, &labels, &rps, "requests per second", &BLUE, |v| {
            format!("{v:.0}")
        })?;
        panel(&right, &labels, &p99, "p99 latency (ms)", &RED, |v| {
            format!("{v:.2}")
        })?;
        root.present().map_err(|e| anyhow!("chart: {e}"))?;
    }
    Ok(pixels)
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    labels: &[&str],
    values: &[f64],
    caption: &str,
    color: &RGBColor,
    fmt: impl Fn(f64) -> String,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let top = values.iter().copied().fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.2 } else { 1.0 };
    let n = labels.len();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), 0.0..top)
        .map_err(|e| anyhow!("chart: {e}"))?;
    let label_of = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => labels.get(*i).map(|s| (*s).to_owned()).unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .y_labels(8)
        .x_desc("connections (busy; the last also holds idle ones)")
        .x_labels(n)
        .x_label_formatter(&label_of)
        .y_label_formatter(&|v| fmt(*v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(|e| anyhow!("chart: {e}"))?;
    let series: Vec<(SegmentValue<usize>, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (SegmentValue::CenterOf(i), *v))
        .collect();
    chart
        .draw_series(LineSeries::new(series.clone(), color.stroke_width(3)))
        .map_err(|e| anyhow!("chart: {e}"))?;
    chart
        .draw_series(
            series
                .iter()
                .map(|(x, y)| Circle::new((x.clone(), *y), 5, color.filled())),
        )
        .map_err(|e| anyhow!("chart: {e}"))?;
    chart
        .draw_series(series.iter().map(|(x, y)| {
            Text::new(
                fmt(*y),
                (x.clone(), *y + top * 0.04),
                ("sans-serif", 14).into_font(),
            )
        }))
        .map_err(|e| anyhow!("chart: {e}"))?;
    Ok(())
}

/// Encodes an RGB buffer of [`SIZE`] as PNG.
pub fn encode_png(pixels: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, SIZE.0, SIZE.1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().context("PNG header")?;
        writer.write_image_data(pixels).context("PNG data")?;
        writer.finish().context("PNG end")?;
    }
    Ok(out)
}

/// Draws the chart and writes it to `path`.
pub fn write(path: &Path, points: &[Point], title: &str) -> Result<()> {
    let png = encode_png(&draw(points, title)?)?;
    std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_is_a_png_with_something_drawn() {
        let points = vec![
            Point {
                label: "1".into(),
                rps: 5000.0,
                p99_ms: 0.3,
            },
            Point {
                label: "16".into(),
                rps: 20000.0,
                p99_ms: 1.2,
            },
            Point {
                label: "1024 idle + 16".into(),
                rps: 19000.0,
                p99_ms: 1.5,
            },
        ];
        let pixels = draw(&points, "test").unwrap();
        assert_eq!(pixels.len(), (SIZE.0 * SIZE.1 * 3) as usize);
        // Not all white: axes, lines and text were drawn, in more than one colour.
        let non_white = pixels.chunks(3).filter(|p| p != &[255, 255, 255]).count();
        assert!(non_white > 1000, "{non_white}");
        assert!(
            pixels.chunks(3).any(|p| p[2] > 200 && p[0] < 50),
            "no blue line"
        );
        assert!(
            pixels.chunks(3).any(|p| p[0] > 200 && p[2] < 50),
            "no red line"
        );
        let png = encode_png(&pixels).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), SIZE);
    }

    #[test]
    fn empty_chart_is_an_error() {
        assert!(draw(&[], "x").is_err());
    }
}
