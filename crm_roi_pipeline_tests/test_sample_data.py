"""Fast checks on the sample-data generator: determinism, canonical shape, story invariants."""

from __future__ import annotations

import csv
import filecmp
import inspect
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from crm_roi_pipeline import sample_data
from crm_roi_pipeline.sample_data import MONTHS, SOURCES, generate

FILES = ("deals.csv", "leads.csv", "activities.csv", "spend.csv", "tickets.csv", "fx_rates.csv")
HEADERS = {
    "deals.csv": "deal_id,account_id,account_name,owner_id,team,name,stage,is_closed,is_won,amount,currency,"
    "deal_type,lead_source,lead_id,created_at,closed_at",
    "leads.csv": "lead_id,owner_id,team,lead_source,status,created_at,is_converted,converted_at,"
    "converted_deal_id,converted_account_id",
    "activities.csv": "activity_id,type,status,occurred_at,owner_id,deal_id,lead_id,account_id,duration_minutes",
    "spend.csv": "month,category,channel,amount,currency",
    "tickets.csv": "ticket_id,account_id,account_name,owner_id,team,status,priority,channel,created_at,"
    "first_response_at,closed_at,csat_score,csat_scale_max",
    "fx_rates.csv": "month,currency,rate",
}
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
START, END = "2020-01-01T00:00:00Z", "2025-06-30T23:59:59Z"
REPO_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
DEFAULT_DEALS = inspect.signature(generate).parameters["deals"].default
# Rows _plant_bad_rows adds (its docstring lists them): deals without id, with "not a date", a duplicate, EUR in
# the month without a rate, won without closed_at, closed before created; two leads; one activity; two tickets
# (_plant_bad_tickets: one without id, one answered before it was opened).
PLANTED = {"deals.csv": 6, "leads.csv": 2, "activities.csv": 1, "spend.csv": 0, "tickets.csv": 2, "fx_rates.csv": 0}


def _read(folder: Path, name: str) -> list[dict[str, str]]:
    with open(folder / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("sample")
    return out, generate(out)


def test_same_seed_same_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert generate(a, deals=300, seed=3) == generate(b, deals=300, seed=3)
    match, mismatch, errors = filecmp.cmpfiles(a, b, FILES, shallow=False)
    assert sorted(match) == sorted(FILES) and not mismatch and not errors
    generate(b, deals=300, seed=4)
    assert not filecmp.cmp(a / "deals.csv", b / "deals.csv", shallow=False)


def test_headers_are_canonical(sample):
    out, _ = sample
    for name, header in HEADERS.items():
        with open(out / name, encoding="utf-8") as fh:
            assert fh.readline().rstrip("\n") == header


def test_row_counts_scale_with_deals(tmp_path, sample):
    out, rows = sample
    small = generate(tmp_path, deals=400)
    for size, counts in ((DEFAULT_DEALS, rows), (400, small)):
        assert counts["deals.csv"] - PLANTED["deals.csv"] == size
        assert counts["leads.csv"] - PLANTED["leads.csv"] == int(2.5 * size)
        assert counts["activities.csv"] - PLANTED["activities.csv"] == 6 * size
        assert counts["tickets.csv"] - PLANTED["tickets.csv"] == size // 2
    # 2020-01 … 2025-06: one spend row per month and channel (plus sales), one fx rate per month but one.
    assert len(MONTHS) == 66
    assert rows["spend.csv"] == small["spend.csv"] == len(MONTHS) * (len(SOURCES) + 1)
    assert rows["fx_rates.csv"] == len(MONTHS) - 1
    for name in FILES:
        assert len(_read(out, name)) == rows[name]


def test_invariants(sample):
    out, _ = sample
    deals, leads, acts = (_read(out, f) for f in FILES[:3])
    stamps = [(d, d[c]) for d in deals for c in ("created_at", "closed_at")]
    stamps += [(r, r[c]) for r in leads for c in ("created_at", "converted_at")]
    stamps += [(a, a["occurred_at"]) for a in acts]
    odd = [v for _, v in stamps if v and not (ISO.match(v) and START <= v <= END)]
    assert sorted(odd) == ["2014-11-05T00:00:00Z", "not a date"]

    for d in deals:
        if d["is_closed"] == "false":
            assert d["closed_at"] == "" and not d["stage"].startswith("Closed") and d["is_won"] == "false"
        else:
            assert d["stage"] == ("Closed Won" if d["is_won"] == "true" else "Closed Lost")
    recent = [d for d in deals if d["created_at"] >= "2025-04-01T" and ISO.match(d["created_at"])]
    assert sum(d["is_closed"] == "false" for d in recent) > len(recent) / 2

    by_id = {d["deal_id"]: d for d in deals}
    for lead in leads:
        if lead["converted_deal_id"]:
            assert by_id[lead["converted_deal_id"]]["lead_id"] == lead["lead_id"]
    assert {a["type"] for a in acts} == {"call", "email", "meeting", "task", "note"}
    assert {a["status"] for a in acts if a["type"] != "task"} == {"completed"}

    fx_months = [r["month"] for r in _read(out, "fx_rates.csv")]
    assert "2023-03-01" not in fx_months and len(fx_months) == len(MONTHS) - 1
    assert all(1.05 <= float(r["rate"]) <= 1.12 for r in _read(out, "fx_rates.csv"))

    def norm(name: str) -> str:
        words = re.sub(r"[^a-z0-9 ]", "", name.lower()).split()
        return " ".join(w for w in words if w not in {"inc", "llc", "gmbh", "ltd", "corp", "co", "group"})

    ids_per_name: dict[str, set[str]] = {}
    for d in deals:
        if d["account_id"]:
            ids_per_name.setdefault(norm(d["account_name"]), set()).add(d["account_id"])
    assert 2 <= sum(len(ids) > 1 for ids in ids_per_name.values()) <= 3


def test_each_planted_defect_appears_once(sample):
    out, _ = sample
    deals, leads, acts = (_read(out, f) for f in FILES[:3])

    def once(rows, pred) -> None:
        assert sum(1 for r in rows if pred(r)) == 1

    once(deals, lambda d: d["deal_id"] == "")
    once(deals, lambda d: d["created_at"] == "not a date")
    dup = [k for k, n in Counter(d["deal_id"] for d in deals if d["deal_id"]).items() if n > 1]
    assert len(dup) == 1
    assert len({d["amount"] for d in deals if d["deal_id"] == dup[0]}) == 2
    once(deals, lambda d: d["currency"] == "EUR" and "2023-03" in (d["created_at"][:7], d["closed_at"][:7]))
    # No negative amount: it would fail the ERROR check amounts_not_negative and block the first run.
    assert not [d for d in deals if float(d["amount"]) < 0]
    once(deals, lambda d: d["is_won"] == "true" and d["closed_at"] == "")
    once(deals, lambda d: ISO.match(d["created_at"]) and d["closed_at"] and d["closed_at"] < d["created_at"])
    once(leads, lambda r: r["created_at"] == "2014-11-05T00:00:00Z")
    once(leads, lambda r: r["is_converted"] not in ("true", "false"))
    once(acts, lambda a: a["activity_id"] == "")
    assert not [k for k, n in Counter(r["lead_id"] for r in leads).items() if n > 1]
    assert not [k for k, n in Counter(a["activity_id"] for a in acts if a["activity_id"]).items() if n > 1]


def test_the_story_is_planted_as_the_module_says(sample):
    """The generator's intent (the shipped files' effect through the pipeline: test_sample_pipeline.py)."""
    out, _ = sample
    deals = [d for d in _read(out, "deals.csv") if ISO.match(d["created_at"]) and d["deal_id"]]
    post = lambda d: d["created_at"] >= "2024-01-01"  # noqa: E731
    closed = [d for d in deals if d["is_closed"] == "true" and d["closed_at"]]
    for cohort, rate in ((False, sample_data.WIN_RATE[0]), (True, sample_data.WIN_RATE[1])):
        rows = [d for d in closed if post(d) == cohort]
        # Dealt out exactly per close month and cohort: only rounding (and two planted rows) in the way.
        assert sum(d["is_won"] == "true" for d in rows) / len(rows) == pytest.approx(rate, abs=0.01)

    def per_month(rows, first, last):
        return sum(first <= d["created_at"][:7] <= last for d in rows) / (int(last[5:]) - int(first[5:]) + 1)

    # Growth: the same amount more deals every month (2023 about twice 2020's deals a month; 2024 ~18% more than
    # 2023 from growth alone, ~35% with the deals the better lead conversion brings). Season: Q4 above August.
    assert 1.7 < per_month(deals, "2023-01", "2023-12") / per_month(deals, "2020-01", "2020-12") < 2.6
    assert 1.2 < per_month(deals, "2024-01", "2024-12") / per_month(deals, "2023-01", "2023-12") < 1.5
    for year in ("2021", "2022", "2023"):
        assert per_month(deals, f"{year}-10", f"{year}-12") > 1.2 * per_month(deals, f"{year}-08", f"{year}-08")

    # Post-CRM deals are larger by SIZE_LIFT on average (calibrated on USD amounts; EUR ones are ~3%).
    def mean_usd(rows):
        usd = [float(d["amount"]) for d in rows if d["currency"] == "USD" and d["is_won"] == "true"]
        return sum(usd) / len(usd)

    lift = mean_usd([d for d in closed if post(d)]) / mean_usd([d for d in closed if not post(d)])
    assert lift == pytest.approx(sample_data.SIZE_LIFT, abs=0.03)

    # The deals in flight when the history starts carry its first day as created_at, and close soon after.
    flight = [d for d in deals if d["created_at"] == START]
    assert 20 <= len(flight) <= 200 and all(d["lead_id"] == "" for d in flight)
    days = sorted(int(np.datetime64(d["closed_at"][:10]).astype(int) - np.datetime64("2020-01-01").astype(int))
                  for d in flight if d["closed_at"])
    assert days[len(days) // 2] < sample_data.CYCLE_DAYS[0]


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _hours(start: str, end: str) -> float:
    return (np.datetime64(end[:-1], "s") - np.datetime64(start[:-1], "s")).astype(np.int64) / 3600


def test_renewals_and_the_helpdesk_are_planted_as_the_module_says(sample):
    out, _ = sample
    deals = [d for d in _read(out, "deals.csv") if ISO.match(d["created_at"]) and d["deal_id"] and d["closed_at"]]
    # A later deal is a renewal with chance 0.30 when won, 0.025 when lost, so with win rates 27% and 32% the
    # expected renewal rate is 0.30*0.27 / (0.30*0.27 + 0.025*0.73) = 0.82 before the CRM and
    # 0.30*0.32 / (0.30*0.32 + 0.025*0.68) = 0.85 after. The spreadsheet rarely said a deal's type (12% of
    # deals), so few renewals before the CRM are known: within three binomial standard errors.
    for cohort, expected in ((False, 0.82), (True, 0.85)):
        renewals = [d for d in deals if d["deal_type"] == "renewal" and (d["closed_at"] >= "2024-01-01") == cohort]
        won = sum(d["is_won"] == "true" for d in renewals)
        assert won and won < len(renewals)  # renewals won and lost
        assert won / len(renewals) == pytest.approx(expected, abs=3 * (expected * (1 - expected) / len(renewals)) ** 0.5)

    tickets = [t for t in _read(out, "tickets.csv") if t["ticket_id"]]
    pre = [t for t in tickets if t["created_at"] < "2024-01-01"]
    post = [t for t in tickets if t["created_at"] >= "2024-01-01"]
    assert pre and post  # the helpdesk predates the CRM: the pre window has tickets
    for rows, (reply, resolve) in ((pre, (10, 40)), (post, (5, 26))):
        # Lognormal times have their medians at the dials; the resolution waits for the reply, so it runs a
        # little above its dial.
        answered = [_hours(t["created_at"], t["first_response_at"]) for t in rows
                    if t["first_response_at"] and t["first_response_at"] >= t["created_at"]]
        assert _median(answered) == pytest.approx(reply, rel=0.15)
        closed = [_hours(t["created_at"], t["closed_at"]) for t in rows if t["closed_at"]]
        assert resolve * 0.9 < _median(closed) < resolve * 1.3
    # The quirks: unanswered, open and unrated tickets; a 0-10 survey before the CRM, a 5-point one after.
    assert any(not t["first_response_at"] for t in tickets)
    assert any(t["status"] == "open" and not t["closed_at"] for t in tickets)
    closed = [t for t in tickets if t["status"] == "closed"]
    assert sum(not t["csat_score"] for t in closed) / len(closed) == pytest.approx(1 - sample_data.RATED, abs=0.05)
    assert {t["csat_scale_max"] for t in pre if t["csat_score"]} == {"10"}
    assert {t["csat_scale_max"] for t in post if t["csat_score"]} == {"5"}
    for rows, share in ((pre, sample_data.SATISFIED[0]), (post, sample_data.SATISFIED[1])):
        rated = [t for t in rows if t["csat_score"]]
        satisfied = sum(float(t["csat_score"]) >= 0.8 * float(t["csat_scale_max"]) for t in rated)
        assert satisfied / len(rated) == pytest.approx(share, abs=0.08)


@pytest.mark.skipif(not REPO_SAMPLE.is_dir(), reason="data/sample not generated")
def test_committed_sample_is_current(sample):
    out, _ = sample
    match, mismatch, errors = filecmp.cmpfiles(REPO_SAMPLE, out, FILES, shallow=False)
    assert not mismatch and not errors, "regenerate with generate('data/sample')"
