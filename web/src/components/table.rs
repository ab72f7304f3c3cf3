//! The tensor table: one row per tensor in file order, sortable by any
//! column (the headers are buttons), filterable by name or kind; a click
//! (or Enter) on a row shows the tensor's detail.

use leptos::prelude::*;

use crate::app::use_state;
use crate::model::{visible_rows, Col, Sort};

#[component]
pub fn TensorTable() -> impl IntoView {
    let state = use_state();
    let sort = RwSignal::new(None::<Sort>);
    let shown = Memo::new(move |_| {
        let filter = state.filter.get();
        let sort = sort.get();
        state.main.with(|a| {
            a.as_ref()
                .map(|a| visible_rows(&a.rows, &filter, sort))
                .unwrap_or_default()
        })
    });
    let total = move || state.main.with(|a| a.as_ref().map_or(0, |a| a.rows.len()));

    let headers = Col::ALL
        .iter()
        .map(|&col| {
            view! {
                <th scope="col" data-key=col.key() class:num=col.numeric()
                    aria-sort=move || Sort::aria(sort.get(), col)>
                    <button type="button" title=col.help()
                        on:click=move |_| sort.update(|s| *s = Sort::next(*s, col))>
                        {col.label()}
                        <span class="sort-mark" aria-hidden="true">
                            {move || match Sort::aria(sort.get(), col) {
                                "descending" => "▼",
                                "ascending" => "▲",
                                _ => "",
                            }}
                        </span>
                    </button>
                </th>
            }
        })
        .collect_view();

    let body = move || {
        let indices = shown.get();
        state.main.with(|a| {
            let Some(a) = a.as_ref() else {
                return Vec::new();
            };
            indices
                .into_iter()
                .map(|i| {
                    let row = &a.rows[i];
                    let index = row.index;
                    let cells = Col::ALL
                        .iter()
                        .map(|&col| view! { <td data-key=col.key() class:num=col.numeric()>{row.cell(col)}</td> })
                        .collect_view();
                    view! {
                        <tr data-name=row.name.clone() tabindex="0"
                            class:selected=move || state.selected.get() == Some(index)
                            aria-selected=move || (state.selected.get() == Some(index)).to_string()
                            on:click=move |_| state.selected.set(Some(index))
                            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                                if ev.key() == "Enter" || ev.key() == " " {
                                    ev.prevent_default();
                                    state.selected.set(Some(index));
                                }
                            }
                        >
                            {cells}
                        </tr>
                    }
                })
                .collect::<Vec<_>>()
        })
    };

    view! {
        <section class="panel tensors" aria-labelledby="tensors-title">
            <div class="panel-head">
                <h2 id="tensors-title">"Tensors"</h2>
                <div class="filter">
                    <label for="tensor-filter" class="sr-only">"Filter tensors"</label>
                    <input id="tensor-filter" type="search" placeholder="filter by name or kind"
                        prop:value=move || state.filter.get()
                        on:input=move |ev| state.filter.set(event_target_value(&ev))
                    />
                    <span class="muted count">{move || {
                        let (n, t) = (shown.get().len(), total());
                        if n == t { format!("{t} tensors") } else { format!("{n} of {t} tensors") }
                    }}</span>
                </div>
            </div>
            <p class="panel-note">"Click a header to sort, a row for its codes and scales; layer:NAME filters a layer. group 0 = one scale per row; entropy: order-0 bits per code."</p>
            <div class="table-wrap">
                <table id="tensor-table">
                    <thead><tr>{headers}</tr></thead>
                    <tbody>{body}</tbody>
                </table>
            </div>
        </section>
    }
}
