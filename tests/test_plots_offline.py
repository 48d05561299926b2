"""`make plots` gives a `dvc plots show` page that works with no network.

The always-on tests read the generated HTML; the screenshot test renders it in
headless Chromium with networking disabled and runs only where a `chromium`
binary is installed (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from evgrid.core import plots_page
from evgrid.core.paths import repo_path

SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc\s*=", re.IGNORECASE)
REMOTE_URL = re.compile(r"(?i)\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//")
DATA_PLOT_ID = "Voltage_profiles_of_the_test_networks"


def assert_offline_page(index: Path) -> str:
    """The page exists, loads no script from anywhere, carries the libraries, and its images are local."""
    html = index.read_text(encoding="utf-8")
    assert not SCRIPT_SRC.search(html), (
        "a <script src=...> is left: the page depends on a file or URL"
    )
    assert "cdn.jsdelivr.net" not in html
    assert plots_page.remote_scripts(html) == []
    for name, version in plots_page.JS_VERSIONS.items():
        assert f"/* {name} {version} (BSD-3-Clause) */" in html, f"{name} is not inlined"
    assert 't.version="5.33.0"' in html  # vega's own code, not just our comment
    assert ".vegaEmbed=" in html  # vega-embed's UMD wrapper defines the global DVC calls
    images = re.findall(r'<img src="([^"$]+)"', html)
    for src in images:
        assert not REMOTE_URL.search(f'src="{src}"'), src
        assert (index.parent / src).is_file(), f"image {src} is missing next to the page"
    return html


def test_make_plots_command_writes_an_offline_page(tmp_path):
    """The command `make plots` runs, in the real repository, into tmp_path."""
    out, template = tmp_path / "dvc_plots", tmp_path / "template.html"
    result = subprocess.run(
        [sys.executable, "-m", "evgrid.core.plots_page", "--out", str(out), "--template", str(template)],
        cwd=repo_path(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    index = out / "index.html"
    assert str(index) in result.stdout  # it says where the page is
    assert "{plot_divs}" in template.read_text(encoding="utf-8")
    assert "{scripts}" not in template.read_text(encoding="utf-8")  # where DVC puts its CDN tags
    html = assert_offline_page(index)
    images = [
        p for p in yaml.safe_load(repo_path("dvc.yaml").read_text())["plots"] if isinstance(p, str)
    ]
    for image in images:  # every declared figure is on the page, as a local copy
        assert f"<p>{image}</p>" in html, f"{image} is not on the page"


# --- a scratch repository: the real `plots:` section, stand-in voltage profiles -------------


def _stand_in_profiles(folder: Path, names: list[str]) -> None:
    """A few rows per network, each network at its own level, so the lines are apart."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        n = 6 + 3 * k
        bus = np.arange(n)
        vm = 1.0 - 0.01 * (k + 1) * bus / n - 0.015 * k
        pd.DataFrame({"bus_index": bus, "name": bus + 1, "vm_pu": vm.round(4)}).to_csv(
            folder / f"{name}.csv", index=False
        )


@pytest.fixture(scope="module")
def scratch_page(tmp_path_factory):
    """`dvc plots show` through evgrid.core.plots_page in a scratch copy of the plots definition."""
    root = tmp_path_factory.mktemp("plots-repo")
    plots = yaml.safe_load(repo_path("dvc.yaml").read_text())["plots"]
    (root / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}, sort_keys=False))
    data_plot = next(p for p in plots if isinstance(p, dict))
    (files,) = (spec["y"] for spec in data_plot.values())
    _stand_in_profiles(root / Path(next(iter(files))).parent, [Path(f).stem for f in files])
    shutil.copytree(repo_path("figures"), root / "figures")
    env = {"DVC_NO_ANALYTICS": "1", "GIT_CONFIG_NOSYSTEM": "1"}
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(command, cwd=root, check=True, env={**os.environ, **env}, timeout=60)
    index = plots_page.render(out="dvc_plots", template="template.html", cwd=root)
    return index, [Path(f).name for f in files]


def test_data_plot_is_embedded_with_every_network(scratch_page):
    index, names = scratch_page
    html = assert_offline_page(index)
    assert DATA_PLOT_ID in html
    for name in names:
        assert name in html, f"{name} is not in the plot's data"


CHROMIUM = next(
    (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
    None,
)


def _chromium(page: Path, profile: Path, *args: str) -> str:
    """Headless Chromium with every request sent to a dead proxy: nothing can be fetched."""
    result = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            f"--user-data-dir={profile}", "--hide-scrollbars", "--virtual-time-budget=10000",
            *args, page.as_uri(),
        ],
        check=True, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    return result.stdout


@pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (apt-get install chromium)"
)
def test_page_renders_offline_in_headless_chromium(scratch_page, tmp_path):
    from PIL import Image

    index, _ = scratch_page
    # vega-embed ran: the data plot's div holds the canvas it drew on.
    dom = _chromium(index, tmp_path / "profile", "--dump-dom")
    plot_div = re.search(rf'<div id="{DATA_PLOT_ID}[^"]*"[^>]*>(.*?)</div>', dom, re.DOTALL)
    assert plot_div, "the data plot's div is missing"
    assert "vega-embed" in plot_div.group(0) and "<canvas" in plot_div.group(1), (
        "vega-embed did not draw the data plot (scripts not loaded?)"
    )

    png = tmp_path / "plots.png"
    _chromium(index, tmp_path / "profile", "--window-size=1400,3000", f"--screenshot={png}")
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    # DVC puts the data plot first, top left (about 520 x 370 px); the figures follow below.
    # The figures there are grey/black line drawings, so count *coloured* pixels: the
    # Vega lines are (about 2000 of them), a page whose scripts did not load has none there.
    chart = rgb[:400, :700]
    coloured = ((chart.max(axis=2) - chart.min(axis=2)) > 60).sum()
    assert coloured > 300, f"data plot area looks blank ({coloured} coloured pixels)"
    # The figures appear below it: a fair share of non-white pixels further down the page.
    below = rgb[450:]
    assert (below.min(axis=2) < 200).mean() > 0.01, "the figures did not appear"
