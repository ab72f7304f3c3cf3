"""The bench's outputs: the table, the budget view, the plot."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path


def _families(results):
    by = defaultdict(list)
    for r in results:
        if "val_bpb" in r:
            by[r["family"]].append(r)
    return {f: sorted(rs, key=lambda r: r["bytes"]) for f, rs in by.items()}


def budget_view(results: list[dict], budget: int) -> dict:
    """Each family at `budget` bytes: the best measured setting that fits,
    and the val_bpb interpolated (linearly in bytes) between the two settings
    that bracket the budget, when they do."""
    rows = []
    for family, rs in _families(results).items():
        fits = [r for r in rs if r["bytes"] <= budget]
        best = min(fits, key=lambda r: r["val_bpb"]) if fits else None
        interpolated = None
        for lo, hi in zip(rs, rs[1:]):
            if lo["bytes"] <= budget <= hi["bytes"] and hi["bytes"] > lo["bytes"]:
                t = (budget - lo["bytes"]) / (hi["bytes"] - lo["bytes"])
                interpolated = round(lo["val_bpb"] + t * (hi["val_bpb"] - lo["val_bpb"]), 5)
        rows.append(dict(
            family=family,
            fits=best["method"] if best else None,
            bytes=best["bytes"] if best else None,
            val_bpb=best["val_bpb"] if best else None,
            interpolated_val_bpb=interpolated,
        ))
    rows.sort(key=lambda r: (r["val_bpb"] is None, r["val_bpb"] or 0))
    return {"bytes": budget, "methods": rows}


def table(out: dict) -> str:
    f = out["float"]["val_bpb"]
    lines = [
        f"unigram val_bpb {out['unigram_val_bpb']:.4f}; float val_bpb {f:.4f} "
        f"({out['model']['parameters']:,} parameters)",
        "",
        "| method | bits | bytes | bits/param | val_bpb | vs float | status quo bytes | pgq / status quo | seconds |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in out["results"]:
        bits = r["bits"] if r["bits"] is not None else "mix"
        if "error" in r:
            lines.append(f"| {r['method']} | {bits} | not applicable: {r['error'].splitlines()[0]} | | | | | | |")
            continue
        lines.append(
            f"| {r['method']} | {bits} | {r['bytes']:,} | {r['bits_per_parameter']:.3f} | {r['val_bpb']:.4f} "
            f"| {r['delta_vs_float']:+.4f} | {r['status_quo_bytes']:,} | {r['bytes'] / r['status_quo_bytes']:.3f} "
            f"| {r['seconds']:.1f} |"
        )
    b = out["budget"]
    lines += ["", f"Budget {b['bytes']:,} bytes (16,000,000 x parameters / the 36M model's):", "",
              "| method | best setting that fits | bytes | val_bpb | interpolated at the budget |",
              "| --- | --- | ---: | ---: | ---: |"]
    for r in b["methods"]:
        interp = f"{r['interpolated_val_bpb']:.4f}" if r["interpolated_val_bpb"] is not None else "-"
        if r["fits"]:
            lines.append(f"| {r['family']} | {r['fits']} | {r['bytes']:,} | {r['val_bpb']:.4f} | {interp} |")
        else:
            lines.append(f"| {r['family']} | none fits | | | {interp} |")
    if "minilm" in out:
        m = out["minilm"]
        lines += ["", f"MiniLM ({m['parameters']:,} parameters, {m['held_out_sentences']} held-out sentences):", "",
                  "| method | bytes | cosine to float | top-1 agreement | seconds |", "| --- | ---: | ---: | ---: | ---: |"]
        for r in m["results"]:
            if "error" in r:
                lines.append(f"| {r['method']} | not applicable: {r['error'].splitlines()[0]} | | | |")
            else:
                lines.append(f"| {r['method']} | {r['bytes']:,} | {r['cosine']:.4f} | {r['top1_agreement']:.3f} "
                             f"| {r['seconds']:.1f} |")
    return "\n".join(lines)


def plot(out: dict, path: Path, around_points: bool = False) -> None:
    """val_bpb against artifact bytes, one line per method family, the float
    model and the budget as reference lines; MiniLM's cosine beside it.
    `around_points`: the axes fit the points (a run of a few methods at
    nearby sizes) rather than the region around the budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if out.get("minilm", {}).get("results") else 1
    fig, axes = plt.subplots(1, panels, figsize=(8 * panels, 6), squeeze=False)
    ax = axes[0][0]
    colors = plt.get_cmap("tab20").colors
    markers = "osD^vP*Xh<>p"
    float_bpb, budget = out["float"]["val_bpb"], out["budget"]["bytes"]
    # The region participants choose in: around the budget, within 0.06
    # bpb of the float model; points outside it are counted in the title.
    x_max, y_max = 2.2 * budget / 1e6, float_bpb + 0.06
    x_min = 0.4 * budget / 1e6
    if around_points:
        scored = [r for r in out["results"] if "val_bpb" in r]
        xs_all = [r["bytes"] / 1e6 for r in scored]
        span = max(xs_all) - min(xs_all)
        x_min, x_max = min(xs_all) - 0.1 * span, max(xs_all) + 0.1 * span
        y_max = max(r["val_bpb"] for r in scored) + 0.002
    hidden = 0
    for i, (family, rs) in enumerate(sorted(_families(out["results"]).items())):
        xs = [r["bytes"] / 1e6 for r in rs]
        ys = [r["val_bpb"] for r in rs]
        hidden += sum(x > x_max or x < x_min or y > y_max for x, y in zip(xs, ys))
        ax.plot(xs, ys, "-" if len(rs) > 1 else "", marker=markers[i % len(markers)], color=colors[i % 20],
                label=family, markersize=5, linewidth=1)
    ax.axhline(float_bpb, color="black", linestyle=":", linewidth=1, label=f"float {float_bpb:.4f}")
    if x_min <= budget / 1e6 <= x_max:
        ax.axvline(budget / 1e6, color="grey", linestyle="--", linewidth=1, label=f"budget {budget / 1e6:.2f} MB")
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(float_bpb - 0.005, y_max)
    ax.set_xlabel("artifact bytes (MB)")
    ax.set_ylabel("val_bpb (lower is better)")
    title = f"golf bench: {out['model']['parameters'] / 1e6:.1f}M-parameter GPT"
    ax.set_title(title + (f" ({hidden} points off the chart)" if hidden else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    if panels == 2:
        ax = axes[0][1]
        fams = defaultdict(list)
        for r in out["minilm"]["results"]:
            if "cosine" in r:
                fams[r["family"]].append(r)
        for family, rs in sorted(fams.items()):
            rs.sort(key=lambda r: r["bytes"])
            ax.plot([r["bytes"] / 1e6 for r in rs], [r["cosine"] for r in rs], "o-", label=family,
                    markersize=4, linewidth=1)
        ax.set_xlabel("artifact bytes (MB)")
        ax.set_ylabel("embedding cosine to float (higher is better)")
        ax.set_title("MiniLM-L6 (22.7M parameters)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
