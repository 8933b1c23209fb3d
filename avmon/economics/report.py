"""``avmon benchmark --report DIR``: one HTML page a decision-maker reads in ten seconds.

A headline sentence first (how much cheaper, where the wall is), then the figures behind it:
the cost of each design on a linear scale with its line items sorted by size and labelled in
dollars, the streams each design sustains as load grows with every quota's limit drawn, the
single process's sizing per resolution, the defects every design found, and what the figures
rest on (price date, quota set, the Lambda duration model, avmon's version). Charts are PNGs
embedded in the page, scaled to its width, each with alt text saying what it shows.

Opened as ``index.html?check``, the page writes a layout check into ``#layout-check`` (page
width against the window, images loaded): what the browser test reads.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avmon import __version__

# Colour-blind-safe (Okabe-Ito), and each design also has its own line style, width and marker,
# so the lines stay distinguishable in grey and where they overlap: the single process is a wide
# translucent band and the tuned design a dashed line drawn on top of it.
STYLE: dict[str, dict[str, Any]] = {
    "serverless-original": {"color": "#D55E00", "linestyle": "-", "marker": "o", "lw": 2.5,
                            "alpha": 1.0, "z": 5},
    "serverless-tuned": {"color": "#0072B2", "linestyle": "--", "marker": "s", "lw": 2.5,
                         "alpha": 1.0, "z": 6},
    "single-process": {"color": "#009E73", "linestyle": "-", "marker": "^", "lw": 9.0,
                       "alpha": 0.35, "z": 3},
}
ITEM_COLORS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
               "#999999", "#000000", "#8C564B", "#9EDAE5", "#C5B0D5", "#BCBD22")
LIGHT = {"#F0E442", "#56B4E9", "#E69F00", "#9EDAE5", "#C5B0D5", "#BCBD22", "#999999"}


QUOTA_NAMES = {"sfn_transitions": "Step Functions' state-transition rate",
               "sfn_start_execution": "Step Functions' StartExecution rate",
               "express_start_execution": "Express StartExecution rate",
               "lambda_concurrency": "Lambda concurrency",
               "s3_prefix": "S3's request rate per prefix"}


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _usd(v: float) -> str:
    if v >= 1:
        return f"${v:,.2f}"
    if v >= 0.01:
        return f"${v:.3f}"
    return f"${v:.4f}"


def headline(result: Mapping[str, Any]) -> str:
    """One sentence: how much cheaper the cheapest design is than the original, and where the
    original's wall is."""
    designs = result["designs"]
    expected = result["expected_streams"]
    parts = []
    original = designs.get("serverless-original")
    cheapest = min(designs, key=lambda n: designs[n]["usd_per_stream_hour"])
    if original and cheapest != "serverless-original":
        c, o = designs[cheapest]["usd_per_stream_hour"], original["usd_per_stream_hour"]
        parts.append(f"The {cheapest} design costs {_usd(c)} per stream-hour against the"
                     f" original serverless design's {_usd(o)}: {1 - c / o:.1%} cheaper.")
    walled = original or next(iter(designs.values()))
    name = "original serverless design" if original else next(iter(designs))
    b = walled["binding_quota"]
    if b.get("quota") is not None and b["streams"] < expected:
        parts.append(f"Under the {result['quotas']} quotas the {name} stops at"
                     f" {b['streams']:,} streams, {b['of_expected']:.1%} of the {expected:,}"
                     f" expected: {QUOTA_NAMES.get(b['quota'], b['quota'])} binds first.")
    elif b.get("quota") is not None:
        parts.append(f"Under the {result['quotas']} quotas the {name} holds the {expected:,}"
                     f" expected streams; {QUOTA_NAMES.get(b['quota'], b['quota'])} would bind"
                     " first, at"
                     f" {b['streams']:,}.")
    return " ".join(parts)


def _cost_chart(plt: Any, designs: Mapping[str, Any], region: str) -> tuple[str, str]:
    names = sorted(designs, key=lambda n: designs[n]["usd_per_stream_hour"], reverse=True)
    totals = [designs[n]["usd_per_stream_hour"] for n in names]
    top = max(totals) or 1.0
    # one colour per line item, the biggest items (over all designs) first
    weight: dict[str, float] = {}
    for d in designs.values():
        for item, v in d["line_items"].items():
            weight[item] = weight.get(item, 0.0) + v["usd"]
    order = sorted(weight, key=lambda k: weight[k], reverse=True)
    colors = {k: ITEM_COLORS[i % len(ITEM_COLORS)] for i, k in enumerate(order)}
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.75 * len(names)))
    for y, n in enumerate(names):
        left = 0.0
        items = sorted(designs[n]["line_items"].items(), key=lambda kv: kv[1]["usd"],
                       reverse=True)
        for item, v in items:
            usd = v["usd"]
            if usd <= 0:
                continue
            ax.barh(y, usd, left=left, color=colors[item], edgecolor="white", height=0.6)
            if usd >= 0.09 * top:  # label the segment inside when it is wide enough to read
                ax.text(left + usd / 2, y, _usd(usd), ha="center", va="center", fontsize=8,
                        color="black" if colors[item] in LIGHT else "white")
            left += usd
        # too thin to label inside: the largest items go beside the total
        small = [f"{k} {_usd(v['usd'])}" for k, v in items[:3]
                 if 0 < v["usd"] < 0.09 * top]
        ax.text(left + top * 0.01, y, _usd(left), va="center", fontsize=10, fontweight="bold")
        if small and left < 0.5 * top:
            ax.text(left + top * 0.01, y + 0.33, "largest: " + ", ".join(small), va="center",
                    fontsize=7, color="#444")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.18)
    ax.set_xlabel("USD per stream-hour (linear scale)")
    ax.spines[["top", "right"]].set_visible(False)
    order = [k for k in order if weight[k] > 0]
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[k]) for k in order]
    ax.legend(handles, order, fontsize=7, ncol=3,
              loc="upper center", bbox_to_anchor=(0.5, -0.28), frameon=False)
    ax.set_title(f"Cost per stream-hour, line items largest first ({region})", fontsize=11)
    png = _png(fig)
    plt.close(fig)
    alt = ("Horizontal bars, linear scale, of the cost per stream-hour of each design: "
           + "; ".join(f"{n} {_usd(designs[n]['usd_per_stream_hour'])}"
                       + (f" (largest item: {_top_item(designs[n])})"
                          if designs[n]["line_items"] else "")
                       for n in names) + ".")
    return png, alt


def _top_item(d: Mapping[str, Any]) -> str:
    item, v = max(d["line_items"].items(), key=lambda kv: kv[1]["usd"])
    return f"{item} {_usd(v['usd'])}"


def _streams_chart(plt: Any, result: Mapping[str, Any]) -> tuple[str, str]:
    designs = result["designs"]
    expected = result["expected_streams"]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    ymax = expected * 1.1
    alt_parts = []
    for n in designs:
        d = designs[n]
        st = STYLE.get(n, {"color": "grey", "linestyle": "-", "marker": "x", "lw": 2,
                           "alpha": 1.0, "z": 4})
        tl = d["timeline"]
        xs = [0.0] + [p["offered"] for p in tl] if tl else [0.0, float(expected)]
        ys = [0.0] + [p["served"] for p in tl] if tl else [0.0, float(expected)]
        ax.plot(xs, ys, color=st["color"], linestyle=st["linestyle"], lw=st["lw"],
                alpha=st["alpha"], marker=st["marker"], markevery=max(1, len(xs) // 8),
                markersize=6, zorder=st["z"],
                label=f"{n}: {d['sustained_streams']:,.0f} sustained")
        b = d["binding_quota"]
        if b.get("quota") is not None:
            limit = float(b["streams"])
            ax.axhline(min(limit, ymax * 0.98), color=st["color"], linestyle=(0, (1, 3)),
                       lw=1.2, zorder=2)
            where = (f"{b['quota']}: {b['streams']:,}" if limit <= ymax
                     else f"{b['quota']}: {b['streams']:,} (above the chart)")
            ax.text(expected * 0.02, min(limit, ymax * 0.98) + expected * 0.012,
                    f"{n} limit, {where}", color=st["color"], fontsize=8, zorder=10)
            alt_parts.append(f"{n} levels off at {d['sustained_streams']:,.0f} streams"
                             f" ({b['quota']} allows {b['streams']:,})")
        else:
            alt_parts.append(f"{n} follows the offered load to {expected:,} (no shared quota)")
    ax.axvline(expected, color="grey", linestyle="-.", lw=1)
    ax.text(expected * 0.99, ymax * 0.55, f"expected load {expected:,}", ha="right",
            color="grey", fontsize=8, rotation=90)
    ax.set_xlim(0, expected * 1.02)
    ax.set_ylim(0, ymax)
    ax.set_xlabel("offered streams (load ramped over 30 minutes)")
    ax.set_ylabel("streams served")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=1,
              frameon=False)
    ax.set_title(f"Streams each design sustains under the {result['quotas']} quotas",
                 fontsize=11)
    png = _png(fig)
    plt.close(fig)
    return png, ("Line chart of streams served against offered load: "
                 + "; ".join(alt_parts) + ".")


def _defects_chart(plt: Any, designs: Mapping[str, Any]) -> tuple[str, str] | None:
    detectors = sorted({d["detector"] for x in designs.values() for d in x["defects"]})
    if not detectors:
        return None
    names = list(designs)
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.55 * len(names)))
    colors = {det: ITEM_COLORS[i % len(ITEM_COLORS)] for i, det in enumerate(detectors)}
    for row, n in enumerate(names):
        for d in designs[n]["defects"]:
            ax.broken_barh([(d["start_s"], max(d["end_s"] - d["start_s"], 0.05))],
                           (row - 0.3, 0.6), color=colors[d["detector"]])
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[k]) for k in detectors]
    ax.legend(handles, detectors, fontsize=7, ncol=6, loc="upper center",
              bbox_to_anchor=(0.5, -0.35), frameon=False)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("stream time (s)")
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title("Defects found, per design", fontsize=11)
    png = _png(fig)
    plt.close(fig)
    counts = ", ".join(f"{n} {len(designs[n]['defects'])}" for n in names)
    return png, (f"Timeline of the defects each design found ({counts}), coloured by detector:"
                 f" {', '.join(detectors)}.")


CHECK_SCRIPT = """<script>
if (location.search.indexOf('check') >= 0) {
  window.addEventListener('load', function () {
    var imgs = Array.prototype.slice.call(document.images);
    var r = {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
             images: imgs.length,
             loaded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
             overflowing: imgs.filter(function (i) {
               return i.getBoundingClientRect().right > window.innerWidth + 0.5; }).length,
             alt: imgs.filter(function (i) { return (i.alt || '').length > 20; }).length};
    r.ok = r.scrollWidth <= r.innerWidth && r.loaded === r.images && r.overflowing === 0;
    var out = document.getElementById('layout-check');
    out.textContent = JSON.stringify(r);
  });
}
</script>"""

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;max-width:960px;margin:0 auto;padding:1em;line-height:1.4;
color:#222}
.headline{font-size:1.3em;font-weight:600;border-left:6px solid #009E73;padding:.4em .8em;
background:#f3faf7}
img{max-width:100%;height:auto;display:block;margin:.5em 0}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
td,th{padding:3px 8px;text-align:right;border-bottom:1px solid #eee}
td:first-child,th:first-child,td.t,th.t{text-align:left}
.meta{color:#555;font-size:.9em}
#layout-check{font-size:.7em;color:#888}
.warn{border-left:6px solid #D55E00;background:#fdf1ea;padding:.4em .8em;font-weight:600}
"""


def _table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    """A table in a horizontally scrolling box; the first ``text_columns`` are left-aligned."""
    def cls(i: int) -> str:
        return " class='t'" if i < text_columns else ""

    head = "".join(f"<th{cls(i)}>{html.escape(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{html.escape(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<div class='scroll'><table><tr>{head}</tr>{body}</table></div>"


def _summary_table(result: Mapping[str, Any]) -> str:
    from avmon.economics.quotas import describe_binding

    rows = []
    for n, d in result["designs"].items():
        rows.append([n, _usd(d["usd_per_stream_hour"]),
                     f"{d.get('cost_ratio_to_original', 1):.4f}",
                     f"{d['sustained_streams']:,.0f}", f"{d['fraction_of_expected']:.1%}",
                     describe_binding(d["binding_quota"]), str(len(d["defects"]))])
    return _table(["design", "USD / stream-hour", "x original", "sustained streams",
                   "of expected", "binding quota (streams it alone sustains)", "defects"], rows)


def _items_table(designs: Mapping[str, Any]) -> str:
    rows = []
    for n, d in designs.items():
        for item, v in sorted(d["line_items"].items(), key=lambda kv: kv[1]["usd"],
                              reverse=True):
            rows.append([n, item, f"{v['quantity']:,.2f} {v['unit']}", _usd(v["usd"])])
    return _table(["design", "line item", "per stream-hour", "USD"], rows, text_columns=2)


def _sizing_table(designs: Mapping[str, Any]) -> str:
    sizing = designs.get("single-process", {}).get("sizing")
    if not sizing:
        return ""
    tasks = list(next(iter(sizing.values()))["tasks"])
    rows = []
    for prof, p in sizing.items():
        u = p["usage"]
        rows.append([f"{prof} ({p['size']})", f"{u['cpu_per_stream_second']:.4f}",
                     f"{u['peak_mb']:.0f}", f"{u['base_mb']:.0f}"]
                    + [f"{c['streams']} ({c['bound']})" for c in p["tasks"].values()])
    return ("<h2>How many streams one Fargate task holds</h2><p>One process running several"
            " streams at once (start-up excluded), at each resolution; a task is filled to 70%"
            " of its vCPUs and 90% of its memory; in brackets, what runs out first.</p>"
            + _table(["profile", "CPU s per stream-s", "MB per stream", "MB per process",
                      *tasks], rows))


def _model_section(designs: Mapping[str, Any]) -> str:
    models = {n: d["lambda_model"] for n, d in designs.items() if d.get("lambda_model")}
    if not models:
        return ""
    first = next(iter(models.values()))
    rows = [[k, str(v["value"]), v["unit"], v["source"]]
            for k, v in first["assumptions"].items()]
    secs = "; ".join(f"{n}: {_used(m['lambda_seconds']):.2f} s of Lambda for the stream"
                     f" ({m['lambda_seconds']['min']:.2f}-{m['lambda_seconds']['max']:.2f} over"
                     f" {len(m['calibration']['decode'])} calibration passes)"
                     for n, m in models.items())
    return ("<h2>Lambda duration: a stated model</h2><p>Lambda time is not timed under the"
            " emulator: each operation's CPU was measured on this input without it (decode,"
            " each detector's scan, .npy serialisation, finalize; the fastest of the passes, as"
            " other work on a shared machine only adds CPU time), scaled by the function's"
            " share of a vCPU at its memory size, plus S3 requests at a stated latency and"
            f" throughput. {html.escape(secs)}. Calibrated on:"
            f" {html.escape(first['calibration'].get('machine', '?'))}.</p>"
            + _table(["assumption", "value", "unit", "source"], rows, text_columns=4))


def _used(seconds: Mapping[str, Any]) -> float:
    return float(seconds[seconds.get("estimate", "median")])


def write_report(result: dict[str, Any], source: str, out: Path) -> Path:
    """Write ``out/index.html`` (charts embedded) and return its path."""
    import matplotlib
    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    designs = result["designs"]
    with matplotlib.rc_context({"text.parse_math": False}):  # "$0.67" is money, not TeX
        charts = [("Cost per stream-hour", *_cost_chart(plt, designs, result["region"])),
                  ("Streams sustained as load grows", *_streams_chart(plt, result))]
        timeline = _defects_chart(plt, designs)
    if timeline:
        charts.append(("Defects found", *timeline))
    images = "".join(f"<h2>{html.escape(t)}</h2><img src='data:image/png;base64,{b}'"
                     f" alt='{html.escape(a, quote=True)}'>" for t, b, a in charts)
    q = result.get("quota_set", {})
    agree = ("Every design found the same defects (onsets and ends within 50 ms; A/V sync"
             " within 0.5 s)." if result["defects_identical"] else
             "The designs did NOT find the same defects: "
             + "; ".join(result.get("defect_differences", [])))
    meta = (f"Input {source}. Prices for {result['region']}, checked"
            f" {result.get('prices_checked', '?')}. Quota set {result['quotas']}"
            f"{': ' + q['description'] if q.get('description') else ''}"
            f"{' (checked ' + q['checked'] + ')' if q.get('checked') else ''}."
            f" Expected load {result['expected_streams']:,} streams. avmon {__version__}.")
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>avmon benchmark: {html.escape(Path(source).name)}</title><style>{CSS}</style></head><body>
<h1>What each design costs, and where it stops</h1>
<p class="headline">{html.escape(headline(result))}</p>
<p class="meta">{html.escape(meta)}</p>
{_summary_table(result)}
<p{"" if result["defects_identical"] else " class='warn'"}>{html.escape(agree)}</p>
<p>Requests, state transitions and invocations are counted in the local simulation of the
serverless designs; Lambda time comes from the duration model below; the single process is
measured running several streams at once.</p>
{images}
<h2>Line items</h2>{_items_table(designs)}
{_sizing_table(designs)}
{_model_section(designs)}
<pre id="layout-check"></pre>
{CHECK_SCRIPT}
</body></html>"""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    path.write_text(page)
    return path

