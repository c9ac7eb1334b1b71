"""`dagster-webserver` loads the project through workspace.yaml and serves its assets (the UI's own API)."""


from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from crm_roi_pipeline_tests.conftest import REPO

# Starts processes: outside the fast tier (pytest -m "not slow"); .ci/run runs it.
pytestmark = pytest.mark.slow

QUERY = """{
  workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError { __typename
      ... on PythonError { message } } } } }
  assetNodes { assetKey { path } partitionDefinition { description } groupName }
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_webserver_serves_the_staging_assets(tmp_path):
    port = _free_port()
    webserver = str(Path(sys.executable).parent / "dagster-webserver")
    proc = subprocess.Popen(
        [webserver, "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                data = _graphql(port, QUERY)["data"]
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "the webserver did not answer within 120 s"
                time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    (entry,) = data["workspaceOrError"]["locationEntries"]
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
    keys = sorted("/".join(node["assetKey"]["path"]) for node in data["assetNodes"])
    assert keys == ["crm/activities", "crm/deals", "crm/leads", "crm/spend", "crm/tickets",
                    "metrics/adoption", "metrics/counterfactual", "metrics/facts", "metrics/lead_sources", "metrics/monthly",
                    "metrics/placebo_tests", "metrics/staggered_effects", "metrics/time_to_close", "metrics/uplift",
                    "roi/cashflows", "roi/sensitivity", "roi/summary"]
    staging = [node for node in data["assetNodes"] if node["assetKey"]["path"][0] == "crm"]
    assert {node["groupName"] for node in staging} == {"staging"}
    assert all(node["partitionDefinition"]["description"].startswith("Monthly, starting 2015-01-01") for node in staging)
