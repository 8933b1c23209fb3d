"""``avmon benchmark --report DIR``: one HTML page with the comparison and three charts."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

COLORS = {"serverless-original": "#c0392b", "serverless-tuned": "#e67e22",
          "single-process": "#27ae60"}


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def write_report(result: dict[str, Any], source: str, out: Path) -> Path:
    """Write ``out/index.html`` (charts embedded) and return its path."""
    import matplotlib
    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    designs = result["designs"]
    names = list(designs)
    charts = []

    # 1. cost per stream-hour by line item, stacked, per design (log scale: the gap is 100x)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    items = sorted({i for d in designs.values() for i in d["line_items"]})
    left = [0.0] * len(names)
    cmap = plt.get_cmap("tab20")
    for k, item in enumerate(items):
        values = [designs[n]["line_items"].get(item, {}).get("usd", 0.0) for n in names]
        ax.barh(names, values, left=left, color=cmap(k % 20), label=item)
        left = [a + b for a, b in zip(left, values, strict=True)]
    for y, v in enumerate(left):
        ax.text(v * 1.05, y, f"${v:.4f}", va="center", fontsize=9)
    ax.set_xscale("log")
    ax.set_xlabel("USD per stream-hour (log scale)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(f"Cost per stream-hour by line item ({result['region']})")
    charts.append(("Cost per stream-hour", _png(fig)))
    plt.close(fig)

    # 2. sustained streams against offered load
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for n in names:
        tl = designs[n]["timeline"]
        if tl:
            ax.plot([p["offered"] for p in tl], [p["served"] for p in tl], color=COLORS.get(n),
                    label=f"{n} (binds: {designs[n]['binding_quota']})")
        else:
            x = [0, result["expected_streams"]]
            ax.plot(x, x, color=COLORS.get(n), label=f"{n} (no shared quota)")
    ax.axvline(result["expected_streams"], color="grey", linestyle=":", label="expected load")
    ax.set_xlabel("offered streams")
    ax.set_ylabel("streams served")
    ax.set_title(f"Sustained streams under the {result['quotas']} quotas")
    ax.legend(fontsize=8)
    charts.append(("Sustained streams", _png(fig)))
    plt.close(fig)

    # 3. defect timeline, one row per design
    fig, ax = plt.subplots(figsize=(9, 2.8))
    detectors = sorted({d["detector"] for x in designs.values() for d in x["defects"]})
    dcmap = plt.get_cmap("Set2")
    for row, n in enumerate(names):
        for d in designs[n]["defects"]:
            k = detectors.index(d["detector"])
            ax.broken_barh([(d["start_s"], d["end_s"] - d["start_s"])], (row - 0.35, 0.7),
                           color=dcmap(k % 8))
    for k, det in enumerate(detectors):
        ax.bar(0, 0, color=dcmap(k % 8), label=det)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("stream time (s)")
    if detectors:
        ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    ax.set_title("Defects found, per design")
    charts.append(("Defect timeline", _png(fig)))
    plt.close(fig)

    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>${d['usd_per_stream_hour']:.4f}</td>"
        f"<td>{d.get('cost_ratio_to_original', 1):.4f}</td><td>{d['sustained_streams']:.0f}</td>"
        f"<td>{d['fraction_of_expected']:.1%}</td><td>{html.escape(d['binding_quota'])}</td>"
        f"<td>{len(d['defects'])}</td></tr>" for n, d in designs.items())
    images = "".join(f"<h2>{html.escape(t)}</h2><img src='data:image/png;base64,{b}'>"
                     for t, b in charts)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>avmon benchmark</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}td,th{{padding:4px 10px;
text-align:right}}td:first-child{{text-align:left}}table{{border-collapse:collapse}}
tr:nth-child(even){{background:#f4f4f4}}</style></head><body>
<h1>avmon benchmark: {html.escape(source)}</h1>
<p>Expected load {result['expected_streams']} streams, {html.escape(result['quotas'])} quotas,
prices for {html.escape(result['region'])}. Every figure comes from this run: requests and state
transitions counted in the local simulation, CPU and memory measured for the single process.</p>
<table><tr><th>design</th><th>USD / stream-hour</th><th>ratio to original</th>
<th>sustained streams</th><th>of expected</th><th>binding quota</th><th>defects</th></tr>
{rows}</table>{images}</body></html>"""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    path.write_text(page)
    return path
