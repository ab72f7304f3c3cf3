//! The tensor table: one row per tensor in file order, sortable by any
//! column (the headers are buttons), filterable by name or kind; a click
//! (or Enter) on a row shows the tensor's detail. The table is one tab
//! stop: the arrows, Home and End move between rows.

use leptos::prelude::*;

use wasm_bindgen::JsCast;
use web_sys::HtmlElement;

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
        let first_shown = indices.first().copied().unwrap_or(usize::MAX);
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
                    // One tab stop for the whole table (the selected row,
                    // else the first shown); arrows move between rows.
                    let first = index == first_shown;
                    view! {
                        <tr data-name=row.name.clone() data-index=index
                            tabindex=move || match state.selected.get() {
                                Some(s) if s == index => "0",
                                Some(s) if shown.with(|v| v.contains(&s)) => "-1",
                                _ if first => "0",
                                _ => "-1",
                            }
                            class:selected=move || state.selected.get() == Some(index)
                            aria-selected=move || (state.selected.get() == Some(index)).to_string()
                            on:click=move |_| state.selected.set(Some(index))
                            on:keydown=move |ev: leptos::ev::KeyboardEvent| on_row_key(&ev, index, state.selected)
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

/// Enter or Space selects the row; the arrows, Home and End move the focus
/// (and the selection) to another shown row.
fn on_row_key(ev: &leptos::ev::KeyboardEvent, index: usize, selected: RwSignal<Option<usize>>) {
    let Some(row) = ev
        .current_target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
    else {
        return;
    };
    let target = match ev.key().as_str() {
        "Enter" | " " => {
            ev.prevent_default();
            selected.set(Some(index));
            return;
        }
        "ArrowDown" => row.next_element_sibling(),
        "ArrowUp" => row.previous_element_sibling(),
        "Home" => row.parent_element().and_then(|b| b.first_element_child()),
        "End" => row.parent_element().and_then(|b| b.last_element_child()),
        _ => return,
    };
    ev.prevent_default();
    let Some(target) = target.and_then(|t| t.dyn_into::<HtmlElement>().ok()) else {
        return;
    };
    if let Some(i) = target
        .get_attribute("data-index")
        .and_then(|i| i.parse().ok())
    {
        selected.set(Some(i));
    }
    let _ = target.focus();
}
