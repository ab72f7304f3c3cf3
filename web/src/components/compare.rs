//! A second artifact beside the first: per-layer bytes side by side and
//! their difference.

use leptos::prelude::*;

use crate::app::use_state;
use crate::model::{compare_layers, signed_percent, signed_thousands, thousands, Gauge, CAP};

#[component]
pub fn Compare() -> impl IntoView {
    let state = use_state();
    let content = move || {
        let (Some(a), Some(b)) = (state.main.get(), state.other.get()) else {
            return view! {
                <p class="muted">"Open a second artifact with “Compare with” (or drop it on that box) to see the per-layer byte deltas."</p>
            }
            .into_any();
        };
        let deltas = compare_layers(&a.layers, &b.layers);
        let widest = deltas
            .iter()
            .flat_map(|d| [d.a.unwrap_or(0), d.b.unwrap_or(0)])
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let bar = move |n: Option<u64>, class: &'static str| {
            let w = 100.0 * n.unwrap_or(0) as f64 / widest;
            view! { <span class=format!("mini {class}") style:width=format!("{w:.2}%")></span> }
        };
        let rows = deltas
            .into_iter()
            .map(|d| {
                let sign = match d.delta.signum() {
                    1 => "up",
                    -1 => "down",
                    _ => "same",
                };
                view! {
                    <tr data-layer=d.layer.clone()>
                        <th scope="row">{d.layer.clone()}</th>
                        <td class="num">{d.a.map_or("—".into(), thousands)}</td>
                        <td class="num">{d.b.map_or("—".into(), thousands)}</td>
                        <td class=format!("num delta delta-{sign}")>{signed_thousands(d.delta)}</td>
                        <td class=format!("num delta delta-{sign}")>{d.relative.map_or("new".into(), signed_percent)}</td>
                        <td class="bars">
                            <div class="mini-row">{bar(d.a, "mini-a")}</div>
                            <div class="mini-row">{bar(d.b, "mini-b")}</div>
                        </td>
                    </tr>
                }
            })
            .collect_view();
        let total = b.file_bytes() as i64 - a.file_bytes() as i64;
        let code = state.code.get().bytes();
        let against_cap = |n: u64| Gauge::new(n, code, CAP).headroom_phrase();
        let cap_line = format!(
            "With {} code bytes: A is {} the cap, B is {} it.",
            thousands(code),
            against_cap(a.file_bytes()),
            against_cap(b.file_bytes())
        );
        view! {
            <p class="compare-files">
                <span class="swatch mini-a"></span>"A "<strong>{a.name.clone()}</strong>{format!(" {} bytes", thousands(a.file_bytes()))}
                "  vs  "
                <span class="swatch mini-b"></span>"B "<strong>{b.name.clone()}</strong>{format!(" {} bytes", thousands(b.file_bytes()))}
                ": "<strong class={if total > 0 { "delta-up" } else if total < 0 { "delta-down" } else { "" }}>{format!("{} bytes", signed_thousands(total))}</strong>
            </p>
            <p class="panel-note">{cap_line}</p>
            <div class="table-wrap">
                <table id="compare-table">
                    <thead><tr>
                        <th scope="col">"layer"</th><th scope="col" class="num">"A bytes"</th><th scope="col" class="num">"B bytes"</th>
                        <th scope="col" class="num">"B − A"</th><th scope="col" class="num">"change"</th><th scope="col">"A / B"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                    <tfoot><tr>
                        <th scope="row">"file (with header)"</th>
                        <td class="num">{thousands(a.file_bytes())}</td>
                        <td class="num">{thousands(b.file_bytes())}</td>
                        <td class={format!("num delta delta-{}", match total.signum() { 1 => "up", -1 => "down", _ => "same" })}>{signed_thousands(total)}</td>
                        <td class="num">{if a.file_bytes() > 0 {
                            signed_percent(total as f64 / a.file_bytes() as f64)
                        } else { "—".to_string() }}</td>
                        <td></td>
                    </tr></tfoot>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <section id="compare" class="panel compare" aria-labelledby="compare-title">
            <div class="panel-head">
                <h2 id="compare-title">"Compare"</h2>
                {move || state.other_loading.get().map(|n| view! { <span class="muted"><span class="spinner small" aria-hidden="true"></span>{format!(" decoding {n}…")}</span> })}
            </div>
            {move || state.other_error.get().map(|m| view! { <p id="compare-error" class="error-text" role="alert">{m}</p> })}
            {content}
        </section>
    }
}
