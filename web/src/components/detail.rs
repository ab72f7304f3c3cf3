//! One tensor's detail: its figures, the histogram of its codes and the
//! statistics of its fp16 scales (or of its values, for passthrough
//! tensors), computed from the decoded tensor.

use leptos::prelude::*;

use crate::app::use_state;
use crate::components::histogram::Histogram;
use crate::model::{fixed3, percent, sig4, thousands, Bins, Col, Stats, TensorDetail};

fn stats_list(stats: Stats) -> impl IntoView {
    let items = [
        ("count", thousands(stats.count as u64)),
        ("min", sig4(stats.min)),
        ("median", sig4(stats.median)),
        ("mean", sig4(stats.mean)),
        ("max", sig4(stats.max)),
        ("std", sig4(stats.std)),
        ("zeros", thousands(stats.zeros as u64)),
    ];
    view! {
        <dl class="stats">
            {items.into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> }).collect_view()}
        </dl>
    }
}

fn bins_chart(label: &str, bins: Bins) -> impl IntoView {
    let n = bins.counts.len();
    let width = (bins.hi - bins.lo) / n.max(1) as f64;
    let titles = (0..n)
        .map(|i| {
            let lo = bins.lo + width * i as f64;
            format!(
                "[{}, {}): {}",
                sig4(lo),
                sig4(lo + width),
                thousands(bins.counts[i])
            )
        })
        .collect();
    view! {
        <Histogram label=label.to_string() counts=bins.counts
            ticks=[sig4(bins.lo), sig4(0.5 * (bins.lo + bins.hi)), sig4(bins.hi)] titles=titles/>
    }
}

fn render(d: TensorDetail) -> impl IntoView {
    let row = d.row.clone();
    let facts = [
        ("layer", row.layer.clone()),
        ("shape", row.shape.clone()),
        ("kind", row.kind.to_string()),
        ("bits", row.cell(Col::Bits)),
        ("group", row.cell(Col::GroupSize)),
        ("params", thousands(row.params)),
        ("bytes", thousands(row.bytes)),
        ("bits/w", fixed3(row.bits_per_weight)),
    ];
    let codes = d.codes.map(|h| {
        let used = h.used_range();
        let zero = used.iter().position(|c| c.0 == 0);
        let titles = used
            .iter()
            .map(|&(code, n)| format!("code {code}: {} ({})", thousands(n), percent(n as f64 / h.total.max(1) as f64)))
            .collect();
        let first = used.first().map_or(0, |c| c.0);
        let last = used.last().map_or(0, |c| c.0);
        let max = h.counts.last().map_or(0, |c| c.0);
        let counts: Vec<u64> = used.iter().map(|c| c.1).collect();
        let range_note = (last < max).then(|| format!(" (codes used: {first}..{last} of ±{max})"));
        view! {
            <h4>{format!("Codes: int{}, {} values", h.bits, thousands(h.total))}<span class="muted small">{range_note}</span></h4>
            <Histogram label=format!("histogram of the int{} codes", h.bits) counts=counts
                ticks=[first.to_string(), "0".to_string(), last.to_string()]
                highlight=zero.unwrap_or(usize::MAX) titles=titles/>
            <dl class="stats">
                <div><dt>"entropy"</dt><dd>{format!("{} of {} bits", fixed3(h.entropy), h.bits)}</dd></div>
                <div><dt>"zeros"</dt><dd>{percent(h.zero_share)}</dd></div>
                <div><dt>{format!("at ±{max}")}</dt><dd>{percent(h.edge_share)}</dd></div>
            </dl>
        }
    });
    let scales = d.scales.map(|s| {
        view! {
            <h4>{format!("Scales (fp16): {}", thousands(s.count as u64))}</h4>
            {d.scale_bins.map(|b| bins_chart("histogram of the scales", b))}
            {stats_list(s)}
        }
    });
    let values = d.values.map(|s| {
        view! {
            <h4>{format!("Values ({}): {}", row.kind, thousands(s.count as u64))}</h4>
            {d.value_bins.map(|b| bins_chart("histogram of the values", b))}
            {stats_list(s)}
        }
    });
    view! {
        <h3 class="detail-name">{row.name.clone()}</h3>
        <dl class="facts">
            {facts.into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> }).collect_view()}
        </dl>
        {row.correction.clone().map(|c| view! {
            <h4>"Low-rank correction (W = Q·s + A·B)"</h4>
            <p class="correction">{c}</p>
        })}
        {codes}
        {scales}
        {values}
    }
}

#[component]
pub fn Detail() -> impl IntoView {
    let state = use_state();
    let detail = Memo::new(move |_| {
        let selected = state.selected.get()?;
        state.main.with(|a| a.as_ref()?.detail(selected))
    });
    view! {
        <aside id="detail" class="panel detail" aria-live="polite" aria-labelledby="detail-title">
            <div class="panel-head">
                <h2 id="detail-title">"Tensor detail"</h2>
                {move || detail.with(|d| d.is_some()).then(|| view! {
                    <button type="button" class="close" on:click=move |_| state.selected.set(None)
                        aria-label="close the detail">"×"</button>
                })}
            </div>
            {move || match detail.get() {
                Some(d) => render(d).into_any(),
                None => view! {
                    <p class="muted">"Select a tensor in the table (click, or Tab to it and press Enter) to see the histogram of its codes and the statistics of its scales."</p>
                }.into_any(),
            }}
        </aside>
    }
}
