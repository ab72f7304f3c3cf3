//! The bit budget per layer: stacked bars (codes, scales, passthrough,
//! table entries) in natural layer order, with bytes, bits per weight and
//! share of the cap. Clicking a layer filters the tensor table to it.

use leptos::prelude::*;

use crate::app::use_state;
use crate::model::{fixed3, layer_chart, layer_filter, part_totals, percent, thousands};

#[component]
pub fn Layers() -> impl IntoView {
    let state = use_state();
    let chart = Memo::new(move |_| {
        state
            .main
            .with(|a| a.as_ref().map(|a| layer_chart(&a.layers)))
    });
    let legend = move || {
        state.main.with(|a| {
            a.as_ref()
                .map(|a| part_totals(&a.layers))
                .unwrap_or_default()
        })
    };
    let overhead = move || {
        state
            .main
            .with(|a| a.as_ref().map_or(0, |a| a.summary.overhead_bytes))
    };
    let pick = move |layer: String| {
        state.filter.set(layer_filter(&layer));
        crate::browser::scroll_to("tensors-title");
    };

    view! {
        <section class="panel layers" aria-labelledby="layers-title">
            <div class="panel-head">
                <h2 id="layers-title">"Bit budget per layer"</h2>
                <ul class="legend">
                    {move || legend().into_iter().map(|(part, bytes)| view! {
                        <li><span class=format!("swatch {}", part.class())></span>
                            {part.label()}" "<span class="muted">{thousands(bytes)}</span></li>
                    }).collect_view()}
                    <li><span class="muted">"header outside the table "{move || thousands(overhead())}</span></li>
                </ul>
            </div>
            <p class="panel-note">"Bars are to scale with the largest layer; the three largest are numbered. Click a layer to list its tensors."</p>
            {move || chart.get().map(|c| {
                let rows = c.rows.into_iter().map(|row| {
                    let layer = row.layer.clone();
                    let layer_key = row.layer.clone();
                    let layer_click = row.layer.clone();
                    let y_mid = row.y + c.row_height / 2.0;
                    let bar_y = row.y + (c.row_height - c.bar_height) / 2.0;
                    let rank = row.rank;
                    let segments = row.segments.iter().map(|s| view! {
                        <rect class=format!("seg {}", s.part.class()) x=format!("{:.2}", s.x) y=format!("{bar_y:.2}")
                            width=format!("{:.2}", s.width.max(0.5)) height=c.bar_height.to_string()>
                            <title>{format!("{}: {} {} bytes", row.layer, s.part.label(), thousands(s.bytes))}</title>
                        </rect>
                    }).collect_view();
                    let class = match rank {
                        Some(r) => format!("layer-row top top-{r}"),
                        None => "layer-row".to_string(),
                    };
                    view! {
                        <g class=class tabindex="0" role="button"
                            aria-label=format!("{}: {} bytes, {} of the cap; show its tensors", row.layer, thousands(row.bytes), percent(row.share_of_cap))
                            on:click=move |_| pick(layer_click.clone())
                            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                                if ev.key() == "Enter" || ev.key() == " " {
                                    ev.prevent_default();
                                    pick(layer_key.clone());
                                }
                            }
                        >
                            <title>{row.title.clone()}</title>
                            <rect class="row-bg" x="0" y=row.y.to_string() width=c.width.to_string() height=c.row_height.to_string()></rect>
                            {rank.map(|r| view! {
                                <circle class="rank" cx="11" cy=y_mid.to_string() r="9"></circle>
                                <text class="rank-text" x="11" y=(y_mid + 4.0).to_string() text-anchor="middle">{r.to_string()}</text>
                            })}
                            <text class="layer-name" x=(c.bar_x - 8.0).to_string() y=(y_mid + 4.5).to_string() text-anchor="end">{layer}</text>
                            {segments}
                            <text class="layer-figures" x=(row.end + 8.0).to_string() y=(y_mid + 4.5).to_string()>
                                <tspan class="layer-bytes">{thousands(row.bytes)}</tspan>
                                <tspan class="muted">{format!("  {} b/w  ", fixed3(row.bits_per_weight))}</tspan>
                                <tspan class="layer-share">{percent(row.share_of_cap)}</tspan>
                            </text>
                        </g>
                    }
                }).collect_view();
                view! {
                    <div class="chart-wrap">
                    <svg id="layer-chart" viewBox=format!("0 0 {} {}", c.width, c.height)
                        role="group" aria-label="bytes per layer, stacked: codes, scales, passthrough, table entries">
                        {rows}
                    </svg>
                    </div>
                }
            })}
        </section>
    }
}
