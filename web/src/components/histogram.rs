//! A small SVG bar histogram, shared by the detail panel's code, scale and
//! value distributions.

use leptos::prelude::*;

const W: f64 = 420.0;
const H: f64 = 120.0;
const AXIS: f64 = 18.0;

/// Bars for `counts` (left to right) with labels under the first, middle
/// and last bar; `highlight` marks one bar (e.g. code 0).
#[component]
pub fn Histogram(
    /// Accessible name of the chart.
    label: String,
    counts: Vec<u64>,
    /// Text under the left end, the middle and the right end.
    ticks: [String; 3],
    #[prop(optional)] highlight: Option<usize>,
    /// A tooltip per bar.
    titles: Vec<String>,
) -> impl IntoView {
    let n = counts.len().max(1) as f64;
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = W / n;
    let gap = if step > 4.0 { 1.0 } else { 0.0 };
    let plot = H - AXIS;
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let h = if c == 0 {
                0.0
            } else {
                (plot * c as f64 / top).max(1.0)
            };
            let class = if Some(i) == highlight {
                "bar bar-hi"
            } else {
                "bar"
            };
            let title = titles.get(i).cloned().unwrap_or_default();
            view! {
                <rect class=class x=format!("{:.2}", i as f64 * step) y=format!("{:.2}", plot - h)
                    width=format!("{:.2}", (step - gap).max(0.5)) height=format!("{h:.2}")>
                    <title>{title}</title>
                </rect>
            }
        })
        .collect_view();
    let [left, middle, right] = ticks;
    view! {
        <svg class="histogram" viewBox=format!("0 0 {W} {H}") role="img" aria-label=label preserveAspectRatio="none">
            <line class="axis" x1="0" x2=W.to_string() y1=plot.to_string() y2=plot.to_string()></line>
            {bars}
            <text class="tick" x="0" y=(H - 4.0).to_string()>{left}</text>
            <text class="tick" x=(W / 2.0).to_string() y=(H - 4.0).to_string() text-anchor="middle">{middle}</text>
            <text class="tick" x=W.to_string() y=(H - 4.0).to_string() text-anchor="end">{right}</text>
        </svg>
    }
}
