//! Line plots as inline SVG, with no script and no style from elsewhere.

use std::fmt::Write;

use fd_svm::metrics::finite_mean;

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A plot's series: its name, its colour and its points.
pub(super) type Series<'a> = (String, &'a str, Vec<(f64, f64)>);

/// A line plot as inline SVG: each series is a name, a colour and its points; x on a log scale when `log_x`.
pub(super) fn plot(title: &str, x_label: &str, y_label: &str, series: &[Series<'_>], log_x: bool) -> String {
    let (w, h, l, r, t, b) = (420.0, 260.0, 50.0, 130.0, 28.0, 40.0);
    let points: Vec<(f64, f64)> = series.iter().flat_map(|s| s.2.iter().copied()).collect();
    if points.is_empty() {
        return String::new();
    }
    let tx = |x: f64| if log_x { x.max(1e-9).ln() } else { x };
    let (x0, x1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(tx(p.0)), b.max(tx(p.0))));
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let sx = |x: f64| l + (tx(x) - x0) / (x1 - x0) * (w - l - r);
    let sy = |y: f64| t + (1.0 - y.clamp(0.0, 1.0)) * (h - t - b);
    let mut svg = axes(title, x_label, y_label, &points, (w, h, l, r, t, b), &sx, &sy);
    legend_and_lines(&mut svg, series, (w, r, t), &sx, &sy);
    svg.push_str("</svg>");
    svg
}

/// The frame, title, grid, ticks and axis labels of a plot.
fn axes(
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
    (w, h, l, r, t, b): (f64, f64, f64, f64, f64, f64),
    sx: &dyn Fn(f64) -> f64,
    sy: &dyn Fn(f64) -> f64,
) -> String {
    let mut svg = format!(
        "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\
         <text x=\"{}\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">{}</text>",
        (w - r + l) / 2.0,
        esc(title)
    );
    for y in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            svg,
            "<line x1=\"{l}\" x2=\"{x2}\" y1=\"{yy}\" y2=\"{yy}\" stroke=\"#ddd\"/><text x=\"{tx}\" y=\"{ty}\" font-size=\"10\" text-anchor=\"end\">{y:.2}</text>",
            x2 = w - r,
            yy = sy(y),
            tx = l - 4.0,
            ty = sy(y) + 3.0
        );
    }
    let mut xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    for x in xs {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{x}</text>",
            sx(x),
            h - b + 14.0
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\
         <text x=\"12\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 12 {})\">{}</text>",
        (w - r + l) / 2.0,
        h - 6.0,
        esc(x_label),
        (h - b + t) / 2.0,
        (h - b + t) / 2.0,
        esc(y_label)
    );
    svg
}

/// Each series' line, its points and its legend entry.
fn legend_and_lines(
    svg: &mut String,
    series: &[Series<'_>],
    (w, r, t): (f64, f64, f64),
    sx: &dyn Fn(f64) -> f64,
    sy: &dyn Fn(f64) -> f64,
) {
    for (j, (name, color, pts)) in series.iter().enumerate() {
        let path: Vec<String> = pts.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for &(x, y) in pts {
            let _ = write!(svg, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"/>", sx(x), sy(y));
        }
        legend_entry(svg, j, name, color, (w, r, t));
    }
}

/// The legend entry of the `j`-th series: a coloured square and its name, right of the plot.
fn legend_entry(svg: &mut String, j: usize, name: &str, color: &str, (w, r, t): (f64, f64, f64)) {
    let ly = t + 14.0 * j as f64 + 6.0;
    let _ = write!(
        svg,
        "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text>",
        w - r + 8.0,
        ly - 9.0,
        w - r + 22.0,
        ly,
        esc(name)
    );
}

/// Averages per-class curves point by point (over the classes that reach each K).
pub(super) fn mean_curve(curves: &[Vec<(f64, f64)>]) -> Vec<(f64, f64)> {
    let mut ks: Vec<f64> = curves.iter().flatten().map(|p| p.0).collect();
    ks.sort_by(f64::total_cmp);
    ks.dedup();
    ks.iter()
        .filter_map(|&k| {
            Some((k, finite_mean(curves.iter().filter_map(|c| c.iter().find(|p| p.0 == k).map(|p| p.1)))?))
        })
        .collect()
}

/// A series with spread: its name, its colour and, per point, x, the mean and the standard deviation.
pub(super) type SpreadSeries<'a> = (String, &'a str, Vec<(f64, f64, f64)>);

/// A plot of means with error bars (± one standard deviation) as inline SVG; the series are drawn side by side, a few
/// pixels apart, so bars at the same x do not hide each other.
pub(super) fn plot_with_bars(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[SpreadSeries<'_>],
    log_x: bool,
) -> String {
    let (w, h, l, r, t, b) = (420.0, 260.0, 50.0, 130.0, 28.0, 40.0);
    let points: Vec<(f64, f64)> = series.iter().flat_map(|s| s.2.iter().map(|p| (p.0, p.1))).collect();
    if points.is_empty() {
        return String::new();
    }
    let tx = |x: f64| if log_x { x.max(1e-9).ln() } else { x };
    let (x0, x1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(tx(p.0)), b.max(tx(p.0))));
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let sx = |x: f64| l + 20.0 + (tx(x) - x0) / (x1 - x0) * (w - l - r - 40.0);
    let sy = |y: f64| t + (1.0 - y.clamp(0.0, 1.0)) * (h - t - b);
    let mut svg = axes(title, x_label, y_label, &points, (w, h, l, r, t, b), &sx, &sy);
    for (j, (name, color, pts)) in series.iter().enumerate() {
        let dx = 6.0 * (j as f64 - (series.len() as f64 - 1.0) / 2.0);
        let path: Vec<String> = pts.iter().map(|&(x, y, _)| format!("{:.1},{:.1}", sx(x) + dx, sy(y))).collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
            path.join(" ")
        );
        for &(x, y, sd) in pts {
            let (cx, lo, hi) = (sx(x) + dx, sy(y - sd), sy(y + sd));
            let _ = write!(
                svg,
                "<line class=\"bar\" x1=\"{cx:.1}\" x2=\"{cx:.1}\" y1=\"{lo:.1}\" y2=\"{hi:.1}\" stroke=\"{color}\"/>\
                 <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{lo:.1}\" y2=\"{lo:.1}\" stroke=\"{color}\"/>\
                 <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{hi:.1}\" y2=\"{hi:.1}\" stroke=\"{color}\"/>\
                 <circle cx=\"{cx:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"/>",
                cx - 2.5,
                cx + 2.5,
                cx - 2.5,
                cx + 2.5,
                sy(y)
            );
        }
        legend_entry(&mut svg, j, name, color, (w, r, t));
    }
    svg.push_str("</svg>");
    svg
}
