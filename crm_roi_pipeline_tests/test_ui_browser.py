"""The Dagster UI in a real browser: Playwright drives Debian's headless Chromium against a webserver whose
instance holds a real `crm-roi run`; it finds every asset, opens the ROI and reads its headline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from crm_roi_pipeline.roi.report import number
from crm_roi_pipeline_tests.conftest import REPO
from crm_roi_pipeline_tests.test_webserver import _free_port, _graphql

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OUTPUT = REPO / "test-output"
ASSETS = ["crm/activities", "crm/deals", "crm/leads", "crm/spend", "metrics/adoption", "metrics/counterfactual", "metrics/facts",
          "metrics/lead_sources", "metrics/monthly", "metrics/placebo_tests", "metrics/staggered_effects",
          "metrics/time_to_close", "metrics/uplift", "roi/cashflows", "roi/sensitivity", "roi/summary"]
# As the environment notes for this machine say: without these, Chromium's background connections are
# refused by the closed network, many at a time.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.slow,  # starts a webserver and a browser
    pytest.mark.skipif(
        CHROMIUM is None, reason="no Chromium here: .ci/run installs Debian's chromium; install it to run this test"
    ),
]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ, "DAGSTER_HOME": str(home), "CRM_ROI_CSV_DIR": str(REPO / "data" / "sample"),
        "CRM_ROI_DUCKDB_PATH": str(root / "crm_roi.duckdb"),  # reports land beside it, in crm_roi_reports/
        "CRM_ROI_ASSUMPTIONS": str(REPO / "data" / "roi_assumptions.yaml"),
    }
    env.pop("CRM_ROI_REPORTS_DIR", None)
    bin_dir = Path(sys.executable).parent
    # The CLI records its runs in the instance of DAGSTER_HOME (the project's dagster_home/ without it): the UI shows them.
    run = subprocess.run([str(bin_dir / "crm-roi"), "run", "-q"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    port = _free_port()
    server = subprocess.Popen([str(bin_dir / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
                               "-p", str(port)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import time

        deadline = time.monotonic() + 120
        while True:
            try:
                _graphql(port, "{ version }")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the webserver did not start"
                time.sleep(0.5)
        yield {"url": f"http://127.0.0.1:{port}", "db": root / "crm_roi.duckdb"}
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def page(ui):
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def _open(page, url: str, ready_text: str) -> None:
    """Go to a page; dismiss Dagster's one-time community dialog if it shows."""
    page.goto(url)
    page.get_by_text(ready_text, exact=True).first.wait_for()
    page.wait_for_timeout(1500)
    skip = page.get_by_role("button", name="Skip")
    if skip.count() and skip.first.is_visible():
        skip.first.click()


def test_the_asset_catalog_lists_every_asset(ui, page):
    _open(page, f"{ui['url']}/assets", "Assets")
    for key in ASSETS:
        page.get_by_text(key.replace("/", " / "), exact=True).first.wait_for()
    page.screenshot(path=str(OUTPUT / "asset_catalog.png"), full_page=True)


def test_the_asset_graph_shows_every_asset(ui, page):
    _open(page, f"{ui['url']}/asset-groups", "staging")
    for group in ("staging", "metrics", "roi"):
        # Groups start collapsed: the caret left of the group's icon opens it.
        box = page.get_by_text(group, exact=True).first.bounding_box()
        page.mouse.click(box["x"] - 38, box["y"] + box["height"] / 2)
    for key in ASSETS:
        page.get_by_text(key.split("/")[-1], exact=True).first.wait_for()
    page.screenshot(path=str(OUTPUT / "asset_graph.png"), full_page=True)


def test_the_roi_asset_shows_its_headline(ui, page):
    with duckdb.connect(str(ui["db"]), read_only=True) as conn:
        figures = dict(conn.execute("SELECT figure, value FROM roi.summary").fetchall())
    _open(page, f"{ui['url']}/assets/roi/summary", "headline")
    # The headline table of the metadata, with the figures of roi.summary.
    page.get_by_text(number(figures["roi_pct"], "%"), exact=True).first.wait_for()
    page.get_by_text(number(figures["payback_months"], "months"), exact=True).first.wait_for()
    page.screenshot(path=str(OUTPUT / "roi_summary.png"), full_page=True)


def test_the_uplift_asset_shows_the_verdict_and_its_charts(ui, page):
    with duckdb.connect(str(ui["db"]), read_only=True) as conn:
        (verdict,) = conn.execute("SELECT note FROM metrics.uplift WHERE estimate = 'verdict'").fetchone()
    _open(page, f"{ui['url']}/assets/metrics/uplift", "verdict")
    # The verdict of metrics.uplift as the analyst reads it, and the estimates table beside it.
    page.get_by_text(verdict, exact=True).first.wait_for()
    page.get_by_text("interrupted time series", exact=True).first.wait_for()
    page.get_by_text("second opinion (Bayesian structural time series)", exact=True).first.wait_for()
    page.screenshot(path=str(OUTPUT / "metrics_uplift.png"))
    # The counterfactual chart is drawn in the UI (a long markdown value opens in a dialog), not just linked.
    row = page.locator("tr", has=page.get_by_text("counterfactual_chart", exact=True))
    row.get_by_text("[Show Markdown]").click()
    image = page.locator("img[alt='counterfactual']").first
    image.wait_for()
    page.wait_for_timeout(500)
    assert image.evaluate("e => e.complete ? e.naturalWidth : 0") > 100
    page.screenshot(path=str(OUTPUT / "metrics_uplift_counterfactual.png"))




def test_the_adoption_comparison_is_a_table_in_the_ui(ui, page):
    from crm_roi_pipeline.metrics import labels

    with duckdb.connect(str(ui["db"]), read_only=True) as conn:
        pre, post = conn.execute("SELECT pre_value, post_value FROM metrics.adoption WHERE metric = 'win_rate'").fetchone()
    _open(page, f"{ui['url']}/assets/metrics/adoption", "comparison")
    # Shown as a table straight away (a TableMetadataValue), figures in words, values rounded as in the report.
    page.get_by_text("Win rate", exact=True).first.wait_for()
    page.get_by_text(labels.value("win_rate", pre), exact=True).first.wait_for()
    page.get_by_text(labels.value("win_rate", post), exact=True).first.wait_for()
    row = page.locator("tr", has=page.get_by_text("comparison", exact=True)).first
    assert row.get_by_text("[Show Markdown]").count() == 0
    page.screenshot(path=str(OUTPUT / "metrics_adoption.png"), full_page=True)
