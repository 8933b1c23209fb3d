"""The benchmark's HTML page rendered by a real browser (Debian's chromium, headless): nothing
overflows the window and every chart loads, at a desktop and a phone width."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from avmon.economics.designs import ORIGINAL, SERVERLESS, SINGLE, TUNED, compare
from avmon.economics.lambda_model import model_usage
from avmon.economics.prices import PriceTable
from avmon.economics.quotas import load_quotas
from avmon.economics.report import headline, write_report
from tests.unit.test_cost_and_limits import USAGE
from tests.unit.test_lambda_model import CAL

pytestmark = pytest.mark.functional

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _result() -> dict:
    defects = [{"detector": "freeze", "start_s": 3.0, "end_s": 5.0, "confidence": 0.9,
                "details": {}},
               {"detector": "av_sync", "start_s": 19.0, "end_s": 28.0, "confidence": 1.0,
                "details": {"offset_ms": 200}}]
    runs = {}
    for name in (ORIGINAL, TUNED):
        m = model_usage(USAGE, 60.0, SERVERLESS[name], CAL)
        runs[name] = {"report": {"duration_s": 60.0, "defects": defects}, "usage": m["usage"],
                      "config": SERVERLESS[name].to_dict(), "lambda_model": m["lambda_model"]}
    runs[SINGLE] = {"report": {"duration_s": 60.0, "defects": defects},
                    "usage": {"cpu_per_stream_second": 0.021, "peak_mb": 28.0,
                              "base_mb": 95.0},
                    "sizing": {"1080p50": {"size": "1920x1080 50 fps",
                                           "usage": {"cpu_per_stream_second": 0.228,
                                                     "peak_mb": 32.4, "base_mb": 99.2},
                                           "tasks": {"2 vCPU / 4 GB": {"streams": 6,
                                                                       "bound": "cpu"}}}}}
    return compare(runs, PriceTable.load(), load_quotas("2023"), "2023", 3000)


def test_page_says_it_in_one_sentence_and_names_its_sources(tmp_path: Path):
    result = _result()
    page = write_report(result, "demo.mp4", tmp_path).read_text()
    text = headline(result)
    assert re.match(r"The single-process design costs \$[0-9.]+ per stream-hour against the"
                    r" original serverless design's \$[0-9.]+: [0-9.]+% cheaper\.", text), text
    assert ("stops at 200 streams, 6.7% of the 3,000 expected: Step Functions' state-transition"
            " rate binds first") in text
    assert "checked 2026-11" in page and "Quota set 2023" in page and "avmon 0.1.0" in page
    alts = re.findall(r"<img [^>]*alt='([^']*)'", page)
    assert len(alts) == 3 and all(len(a) > 40 for a in alts)
    assert "linear scale" in alts[0]
    assert "levels off at 200 streams (sfn_transitions allows 200)" in alts[1]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: 'make system-deps' installs Debian's"
                    " chromium as root; without it the page is not rendered in a browser")
@pytest.mark.parametrize("width", [1280, 390])
def test_page_fits_the_window_and_every_chart_loads_in_chromium(tmp_path: Path, width: int):
    page = write_report(_result(), "demo.mp4", tmp_path / "r")
    shot = tmp_path / f"page-{width}.png"
    common = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
              f"--window-size={width},900", "--virtual-time-budget=5000"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri() + "?check"],
                         capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="layout-check">([^<]+)</pre>', dom.stdout)
    assert found, f"no layout check in the rendered page: {dom.stderr[-2000:]}"
    check = json.loads(found.group(1).replace("&quot;", '"'))
    assert check["images"] == 3 and check["loaded"] == 3, check
    assert check["alt"] == 3, check
    assert check["scrollWidth"] <= check["innerWidth"], check
    assert check["overflowing"] == 0 and check["ok"], check
    subprocess.run([*common, f"--screenshot={shot}", page.as_uri()], capture_output=True,
                   timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000
