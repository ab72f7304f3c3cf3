//! The cap gauge: artifact + code bytes against 16,000,000, with headroom.

use leptos::prelude::*;

use crate::app::use_state;
use crate::model::{megabytes, percent, thousands, Gauge as GaugeModel, CAP};

#[component]
pub fn Gauge() -> impl IntoView {
    let state = use_state();
    let gauge = Memo::new(move |_| {
        let artifact = state
            .main
            .with(|a| a.as_ref().map_or(0, |a| a.file_bytes()));
        GaugeModel::new(artifact, state.code.with(|c| c.bytes()), CAP)
    });
    let name = move || {
        state
            .main
            .with(|a| a.as_ref().map(|a| a.name.clone()).unwrap_or_default())
    };
    let pct = |x: f64| format!("{:.4}%", 100.0 * x);

    view! {
        <section id="gauge" class=move || format!("panel gauge level-{}", gauge.get().level()) aria-labelledby="gauge-title">
            <h2 id="gauge-title" class="sr-only">"Cap"</h2>
            <div class="gauge-head">
                <div class="gauge-used">
                    <span class="gauge-pct">{move || percent(gauge.get().used)}</span>
                    <span class="gauge-of">" of the 16,000,000-byte cap"</span>
                </div>
                <div class="gauge-headroom">
                    <span class="gauge-headroom-value">{move || gauge.get().headroom_phrase()}</span>
                    <span class="gauge-of">" the cap"</span>
                </div>
            </div>
            <div
                class="gauge-bar"
                role="meter"
                aria-label="bytes against the cap"
                aria-valuemin="0"
                aria-valuemax=CAP.to_string()
                aria-valuenow=move || gauge.get().total.to_string()
                aria-valuetext=move || format!("{} of {} bytes", thousands(gauge.get().total), thousands(CAP))
            >
                <div class="gauge-fill gauge-artifact" style:width=move || pct(gauge.get().artifact_width)
                    title=move || format!("artifact: {} bytes", thousands(gauge.get().artifact))></div>
                <div class="gauge-fill gauge-code" style:width=move || pct(gauge.get().code_width)
                    title=move || format!("code: {} bytes", thousands(gauge.get().code))></div>
                <div class="gauge-cap" style:left=move || pct(gauge.get().cap_mark)>
                    <span>"cap"</span>
                </div>
            </div>
            <dl class="gauge-figures">
                <div class="fig fig-artifact">
                    <dt><span class="swatch gauge-artifact"></span>"artifact"</dt>
                    <dd>{move || thousands(gauge.get().artifact)}<small>{move || format!(" bytes · {}", name())}</small></dd>
                </div>
                <div class="fig fig-code">
                    <dt><span class="swatch gauge-code"></span>"code"</dt>
                    <dd>{move || thousands(gauge.get().code)}<small>" bytes"</small></dd>
                </div>
                <div class="fig fig-total">
                    <dt>"total"</dt>
                    <dd>
                        {move || thousands(gauge.get().total)}
                        <small>{move || format!(" bytes ({})", megabytes(gauge.get().total))}</small>
                        // The hook for tests and scripts: the plain integer.
                        <span id="cap-total" hidden>{move || gauge.get().total.to_string()}</span>
                    </dd>
                </div>
                <div class="fig fig-cap">
                    <dt>"cap"</dt>
                    <dd>{thousands(CAP)}<small>" bytes"</small></dd>
                </div>
            </dl>
            {move || (gauge.get().code == 0).then(|| view! {
                <p class="gauge-note">"No code bytes counted yet: enter them or drop the training script above. The cap counts code bytes + artifact bytes."</p>
            })}
        </section>
    }
}
