//! The verification, computed in wasm by `pgq_verifier::verify::verify`:
//! each check's status, id and detail in `pgq verify`'s wording.

use leptos::prelude::*;

use crate::app::use_state;
use crate::model::{figure_text, ordered_checks, status_class, verdict};

#[component]
pub fn Checks() -> impl IntoView {
    let state = use_state();
    let body = move || {
        state.report.with(|r| match r {
            None => view! { <p class="muted">"verifying…"</p> }.into_any(),
            Some(Err(message)) => view! { <p class="error-text">{message.clone()}</p> }.into_any(),
            Some(Ok(report)) => {
                let overall = status_class(report.status);
                let rows = ordered_checks(report)
                    .into_iter()
                    .map(|c| {
                        let figures = c
                            .figures
                            .iter()
                            .map(|f| view! { <li><code>{f.name.clone()}</code>" = "{figure_text(&f.value)}</li> })
                            .collect_view();
                        view! {
                            <tr class=format!("check check-{}", status_class(c.status)) data-id=c.id.clone()>
                                <td class="check-status"><span class=format!("badge badge-{}", status_class(c.status))>{c.status.label()}</span></td>
                                <td class="check-id"><code>{c.id.clone()}</code></td>
                                <td class="check-detail">
                                    {c.detail.clone()}
                                    {(!c.figures.is_empty()).then(|| view! {
                                        <details><summary>"figures"</summary><ul class="figures">{figures}</ul></details>
                                    })}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view();
                view! {
                    <p class=format!("verdict verdict-{overall}")>{verdict(report)}</p>
                    <table class="checks-table">
                        <thead><tr><th scope="col">"status"</th><th scope="col">"check"</th><th scope="col">"detail"</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                }
                .into_any()
            }
        })
    };
    view! {
        <section id="checks" class="panel checks" aria-labelledby="checks-title"
            data-state=move || if state.verifying.get() { "running" } else { "done" }>
            <div class="panel-head">
                <h2 id="checks-title">"Verification"</h2>
                {move || state.verifying.get().then(|| view! { <span class="muted"><span class="spinner small" aria-hidden="true"></span>" verifying…"</span> })}
            </div>
            <p class="panel-note">"What "<code>"pgq verify"</code>" reports, computed in this page. Fidelity against the original weights needs the checkpoint: "<code>"pgq verify model.pgq --reference model.safetensors"</code>"."</p>
            {body}
        </section>
    }
}
