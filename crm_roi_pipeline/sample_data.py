"""Deterministic generator for the canonical CRM sample dataset.

The pipeline has to be demonstrable and testable without anyone's real CRM, so
this module fabricates one company's CRM history in the canonical CSV format:
deals.csv, leads.csv, activities.csv, spend.csv, tickets.csv and fx_rates.csv.

The story the data tells, 2020-01-01 to 2025-06-30: a growing B2B company
(deal volume up by the same amount every month: 2023 has about twice the deals
a month of 2020 and 2024 another ~18%; busy Q4, quiet August) worked from a
spreadsheet until 2024-01-01 (date-only timestamps, deal_type rarely filled,
few activities logged; the sheet was started on 2020-01-01 with the deals then
in flight). Then the CRM went live and brought a real, large lift: win rate
27% -> 32%, deals 6% larger, lead conversion 17% -> 21% (so more deals),
median cycle ~45 -> ~36 days, 1.3x activities per deal. Together that is about
+40% won revenue a month over what the business would have made anyway. Four
years of history before adoption let the interrupted time series separate that
effect from growth and season; a naive before/after (2024 minus 2023) also
credits the CRM with a year of growth and overstates it.

Customers renew or leave: a later deal of an account is a renewal more often when
it was won (renewals are mostly kept), so about 4 in 5 renewal decisions are won
before the CRM and a little more after it, because the CRM lifts every win. The
support team's helpdesk (tickets.csv, from the start: it predates the CRM) gets
faster with the CRM: first replies ~10 h -> ~5 h, resolution ~40 h -> ~26 h,
satisfied customers 72% -> 82%. Its quirks are real helpdesks' ones: tickets
never answered, tickets still open, most tickets unrated, and the survey moved
from a 0-10 scale to a 5-point one with the CRM.

Month-to-month noise is kept to what a company of ~100 deals a month cannot
avoid, so the effect stands out of it: monthly volumes follow the growth and
season curve times a +-5% monthly factor (allocated exactly, not sampled a
second time), wins are dealt out exactly per close month and cohort, and deal
sizes vary within a team by ~35% around medians of 24k, 12k and 6k.

A handful of deliberately broken rows (see ``_plant_bad_rows``) exercise the
validation layer; each defect appears exactly once so tests can count them,
and each is rejected into crm.rejects or only fires a WARN check.

Everything is vectorised numpy driven by ``numpy.random.default_rng(seed)``, and
every CSV is written by DuckDB with an explicit ORDER BY, so the same seed and
size give byte-identical files and a million deals take seconds, not minutes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

DAY = 86_400
MONTHS = np.arange("2020-01", "2025-07", dtype="datetime64[M]")
_MONTH_START = MONTHS.astype("datetime64[s]").astype(np.int64)
_MONTH_DAYS = ((MONTHS + 1).astype("datetime64[D]") - MONTHS.astype("datetime64[D]")).astype(np.int64)
_START = int(MONTHS[0].astype("datetime64[s]").astype(np.int64))
_END = int(np.datetime64("2025-06-30T23:59:59", "s").astype(np.int64))
_ADOPT = int(np.datetime64("2024-01-01T00:00:00", "s").astype(np.int64))
# Left out of fx_rates.csv on purpose so currency conversion has a gap to report.
MISSING_FX_MONTH = int(np.flatnonzero(MONTHS == np.datetime64("2023-03"))[0])

# The story's dials (see the module docstring).
GROWTH = 0.04  # deal volume grows by 4% of its 2020-01 level every month
MONTH_NOISE = 0.05  # sd of the log of a month's volume factor
WIN_RATE = (0.27, 0.32)  # pre, post CRM
SIZE_LIFT = 1.06  # post-CRM deals are this much larger, won and lost alike
LEAD_CONVERSION = (0.17, 0.21)
CYCLE_DAYS = (45.0, 36.0)  # median days from created to closed
_CYCLE_SIGMA = 0.55
_IN_FLIGHT_MONTHS = 1.7  # mean cycle in months: deals open on any given day = this many months of new deals
ACTIVITY_LIFT = 1.3  # activities logged per deal and lead once the CRM is there
# A later deal of an account is a renewal with these chances when won, when lost: most renewals are kept.
RENEWAL_SHARE = (0.30, 0.025)
TICKETS_PER_DEAL = 0.5
FIRST_REPLY_HOURS = (10.0, 5.0)  # median, pre and post CRM
RESOLUTION_HOURS = (40.0, 26.0)
ANSWERED = (0.90, 0.96)  # share of tickets that ever get a reply
SATISFIED = (0.72, 0.82)  # share of rated tickets that are satisfied (4-5 of 5, 8-10 of 10)
RATED = 0.35  # share of closed tickets whose customer answered the survey
CSAT_SCALE = (10, 5)  # the legacy helpdesk's 0-10 survey, the CRM's 5-point one
PRIORITIES = ["Low", "Medium", "High", "Urgent"]
CHANNELS = ["email", "phone", "web", "chat"]
SUPPORT_AGENTS = 8

TEAMS = ["Enterprise", "Mid-Market", "SMB"]
_TEAM_SIZE = np.array([5, 8, 12])  # owners U001..U025, grouped by team
_TEAM_FIRST = np.concatenate([[0], np.cumsum(_TEAM_SIZE)[:-1]])
_TEAM_P = [0.18, 0.37, 0.45]
_TEAM_MEDIAN_USD = np.array([24_000.0, 12_000.0, 6_000.0])
_SIZE_SIGMA = 0.35  # lognormal sd of a deal's size around its team's median
_TEAM_ACTIVITY = np.array([1.4, 1.0, 0.8])  # bigger deals get worked harder
SOURCES = ["Web", "Referral", "Partner", "Trade Show", "Paid Search", "Email"]
_SOURCE_P = [0.30, 0.15, 0.12, 0.10, 0.22, 0.11]
STAGES = ["Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost"]
DEAL_TYPES = ["new_business", "expansion", "renewal", "Add-on", "Renewal"]
PRODUCTS = ["Platform licence", "Starter package", "Additional seats", "Analytics add-on", "Annual renewal"]
LEAD_STATUS = ["New", "Working", "Nurturing", "Disqualified", "Converted"]
ACTIVITY_TYPES = ["call", "email", "meeting", "task", "note"]
_ACTIVITY_P = [0.28, 0.34, 0.14, 0.14, 0.10]

_PREFIX = np.array("""Acme Northwind Bluepeak Silverline Ironbridge Redwood Brightwater Summit Harbor
    Evergreen Granite Lakeside Pioneer Crescent Falcon Meridian Oakridge Cobalt Sterling Horizon Vertex
    Beacon Cedar Atlas Orion Keystone Riverbend Highland Westfield Stonegate Copperleaf Clearwater
    Sunrise Polar Nimbus Quantum Greenfield Maple Aurora Tidewater""".split())
_CORE = np.array("""Logistics Analytics Foods Health Manufacturing Software Systems Energy Retail
    Consulting Labs Media Robotics Outdoor Pharma Textiles Freight Capital Dynamics Solutions Networks
    Interiors Metals Medical Hospitality Farms Engineering Learning Security Motors""".split())
_SUFFIX = np.array(["", " Inc.", " LLC", " GmbH", " Ltd", " Corp", " Group", " Co."])
_SUFFIX_P = [0.34, 0.18, 0.14, 0.08, 0.08, 0.08, 0.06, 0.04]

_TS = "%Y-%m-%dT%H:%M:%SZ"
_ORD = 16  # row r sorts at r*16; planted rows slot in at r*16 + k without ties


def generate(out_dir: str | Path, *, deals: int = 5000, seed: int = 7) -> dict[str, int]:
    """Write deals.csv, leads.csv, activities.csv, spend.csv, fx_rates.csv into out_dir; return rows per file."""
    if deals < 50:
        raise ValueError("deals must be at least 50 so every story element has rows to live in")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Independent streams: resizing one table must not reshuffle the calendar, fx or accounts.
    # Children are fixed by their index: the seventh (tickets) leaves the first six streams as they were.
    r_cal, r_acc, r_lead, r_deal, r_act, r_money, r_ticket = np.random.default_rng(seed).spawn(7)
    big = deals >= 100_000
    n_leads = 2 * deals if big else int(2.5 * deals)
    n_acts = 5 * deals if big else 6 * deals

    month_w = _month_weights(r_cal)
    fx = _fx_rates(r_money)
    accounts = _accounts(r_acc, max(500, deals // 5))
    leads = _leads(r_lead, n_leads, month_w, max_converted=int(0.7 * deals))
    dl = _deals(r_deal, deals, month_w, leads, accounts, fx)
    acts = _activities(r_act, n_acts, dl, leads)
    spend = _spend(r_money, deals)
    tickets = _tickets(r_ticket, int(TICKETS_PER_DEAL * deals), month_w, dl)
    return _write(out, dl, leads, acts, accounts, spend, fx, tickets)


def _trend() -> np.ndarray:
    return 1 + GROWTH * np.arange(len(MONTHS))


def _month_weights(rng: np.random.Generator) -> np.ndarray:
    month = MONTHS.astype(int) % 12 + 1
    w = _trend() * np.where(month >= 10, 1.25, 1.0) * np.where(month == 8, 0.85, 1.0)
    w = w * rng.lognormal(0.0, MONTH_NOISE, len(MONTHS))
    return w / w.sum()


def _allocate(n: int, w: np.ndarray) -> np.ndarray:
    """Month index of n items, sorted, each month getting n * w items rounded by largest remainder."""
    exact = n * w
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(counts - exact, kind="stable")[: n - int(counts.sum())]] += 1
    return np.repeat(np.arange(len(w)), counts)


def _times(rng: np.random.Generator, n: int, month_w: np.ndarray) -> np.ndarray:
    """Epoch seconds during business hours, n * month_w of them in each month (in month order)."""
    m = _allocate(n, month_w)
    day = (rng.random(n) * _MONTH_DAYS[m]).astype(np.int64)
    return _MONTH_START[m] + day * DAY + 7 * 3600 + (rng.random(n) * 12 * 3600).astype(np.int64)


def _legacy(t: np.ndarray) -> np.ndarray:
    # The spreadsheet only held dates, so pre-CRM timestamps are midnight.
    return np.where(t < _ADOPT, t - t % DAY, t)


def _owner_in(rng: np.random.Generator, team: np.ndarray) -> np.ndarray:
    return _TEAM_FIRST[team] + (rng.random(len(team)) * _TEAM_SIZE[team]).astype(np.int64)


def _month_of(t: np.ndarray) -> np.ndarray:
    return np.searchsorted(_MONTH_START, t, side="right") - 1


def _fx_rates(rng: np.random.Generator) -> np.ndarray:
    return np.round(np.clip(1.08 + np.cumsum(rng.normal(0, 0.008, len(MONTHS))), 1.05, 1.12), 4)


def _accounts(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    combos = len(_PREFIX) * len(_CORE)
    k = rng.permutation(combos * -(-n // combos))[:n]  # unique (prefix, core, repeat) per account
    base = np.char.add(np.char.add(_PREFIX[k % len(_PREFIX)], " "), _CORE[(k // len(_PREFIX)) % len(_CORE)])
    rep = k // combos
    base = np.where(rep > 0, np.char.add(np.char.add(base, " "), (rep + 1).astype(str)), base)
    names = np.char.add(base, _SUFFIX[rng.choice(len(_SUFFIX), n, p=_SUFFIX_P)]).astype(object)
    weight = rng.lognormal(0, 0.9, n)  # how often an account buys
    # Three pairs of distinct accounts that are the same company once names are
    # normalised: the kind of duplicate entity resolution has to catch. Busy
    # accounts only, so every pair actually shows up in deals.csv.
    i1, j1, i2, j2, i3, j3 = rng.choice(np.flatnonzero(weight > np.median(weight)), 6, replace=False)
    names[i1], names[j1] = base[i1] + " Inc.", base[i1].upper() + " INC"
    names[i2], names[j2] = base[i2] + " GmbH", base[i2]
    # (No commas: a quoted field deep in a big file defeats CSV dialect sniffing.)
    names[i3], names[j3] = base[i3] + " LLC", base[i3] + " L.L.C."
    team = rng.choice(3, n, p=_TEAM_P)
    return {"name": names, "team": team, "owner": _owner_in(rng, team), "weight": weight}


def _leads(rng: np.random.Generator, n: int, month_w: np.ndarray, max_converted: int) -> dict[str, np.ndarray]:
    created = _legacy(np.sort(_times(rng, n, month_w)))
    post = created >= _ADOPT
    lag = rng.lognormal(np.log(np.where(post, 16.0, 20.0) * DAY), 0.9).astype(np.int64)
    converted_at = _legacy(created + lag)
    converted = (rng.random(n) < np.where(post, LEAD_CONVERSION[1], LEAD_CONVERSION[0])) & (converted_at <= _END)
    idx = np.flatnonzero(converted)
    if len(idx) > max_converted:  # only at tiny sizes: every conversion needs its own deal
        converted[rng.choice(idx, len(idx) - max_converted, replace=False)] = False
    age = _END - created
    status = np.where(age < 30 * DAY, rng.integers(0, 2, n), np.where(rng.random(n) < 0.35, 2, 3))
    return {
        "created": created,
        "converted": converted,
        "converted_at": converted_at,
        "status": np.where(converted, 4, status),
        "source": np.where(rng.random(n) < 0.08, -1, rng.choice(len(SOURCES), n, p=_SOURCE_P)),
        "owner": _owner_in(rng, rng.choice(3, n, p=[0.15, 0.35, 0.50])),
        "deal": np.full(n, -1),
        "account": np.full(n, -1),
    }


def _deals(rng, n, month_w, leads, accounts, fx) -> dict[str, np.ndarray]:
    from_lead = np.flatnonzero(leads["converted"])
    # The spreadsheet was started on the first day of the history with the deals then in flight: they
    # carry that day as created_at and only what was left of their cycle. Without them the first
    # months would have little closing and little activity, an artefact of where the history starts.
    n_flight = min(round(n * month_w[0] * _IN_FLIGHT_MONTHS), n - len(from_lead))
    created = np.concatenate([
        np.full(n_flight, _START), leads["converted_at"][from_lead],
        _legacy(_times(rng, n - len(from_lead) - n_flight, month_w))])
    lead = np.concatenate([np.full(n_flight, -1), from_lead, np.full(n - len(from_lead) - n_flight, -1)])
    order = np.argsort(created, kind="stable")  # deal ids follow creation order (the deals in flight first)
    created, lead = created[order], lead[order]
    post, has_lead = created >= _ADOPT, lead >= 0

    w = accounts["weight"]
    account = np.where(rng.random(n) < 0.95, rng.choice(len(w), n, p=w / w.sum()), -1)
    team = np.where(account >= 0, accounts["team"][account], rng.choice(3, n, p=_TEAM_P))
    owner = np.where((account >= 0) & (rng.random(n) < 0.8), accounts["owner"][account], _owner_in(rng, team))

    # Cycles are censored at the data end, so recent deals are mostly open.
    u = rng.random(n)
    cycle = rng.lognormal(np.log(np.where(post, CYCLE_DAYS[1], CYCLE_DAYS[0])), _CYCLE_SIGMA)
    # A deal in flight is caught at a uniform point of a length-biased cycle (lognormal mu + sigma^2).
    life_left = np.ones(n, dtype=np.float32)
    life_left[:n_flight] = rng.random(n_flight)
    biased = rng.lognormal(np.log(CYCLE_DAYS[0]) + _CYCLE_SIGMA**2, _CYCLE_SIGMA, n_flight)
    cycle[:n_flight] = life_left[:n_flight] * biased
    closes = _legacy(created + (cycle * DAY).astype(np.int64))
    is_open = (closes > _END) | ((created > _END - 90 * DAY) & (rng.random(n) < 0.5))
    # Win flags are dealt out exactly per close month and cohort (created before
    # or after adoption): Bernoulli flags would add a binomial sd of ~4 wins to a
    # month's ~25, as much noise as the deal sizes add, and blur the lift.
    stratum = np.where(is_open, 0, 1 + 2 * _month_of(closes) + post)
    order = np.lexsort((u, stratum))
    count = np.bincount(stratum, minlength=1 + 2 * len(MONTHS))
    first = np.cumsum(count) - count
    quota = np.round(np.concatenate([[0.0], np.tile(WIN_RATE, len(MONTHS))]) * count).astype(np.int64)
    s = stratum[order]
    is_won = np.empty(n, dtype=bool)
    is_won[order] = np.arange(n) - first[s] < quota[s]
    del u, cycle, stratum, order, s
    stage = np.where(is_open, rng.choice(4, n, p=[0.3, 0.25, 0.25, 0.2]), np.where(is_won, 4, 5))

    usd = _TEAM_MEDIAN_USD[team] * rng.lognormal(0, _SIZE_SIGMA, n)
    # Team mix moves a cohort's mean by as much as the uplift the story needs,
    # so post-CRM sizes are calibrated against pre-CRM ones.
    for outcome in (False, True):
        pre_g, post_g = ~post & (is_won == outcome), post & (is_won == outcome)
        if pre_g.any() and post_g.any():
            usd[post_g] *= SIZE_LIFT * usd[pre_g].mean() / usd[post_g].mean()
    m_created, m_closed = _month_of(created), _month_of(np.where(is_open, created, closes))
    eur = (rng.random(n) < 0.03) & (m_created != MISSING_FX_MONTH) & (m_closed != MISSING_FX_MONTH)
    amount = np.round(np.where(eur, usd / fx[m_created], usd), 2)

    # First won deal of an account is new business; anything after it is growth.
    wins_before = pd.Series(is_won.astype(np.int32)).groupby(account).cumsum().to_numpy() - is_won
    renewal = rng.random(n) < np.where(is_won, RENEWAL_SHARE[0], RENEWAL_SHARE[1])
    canon = np.where((account >= 0) & (wins_before > 0), np.where(renewal, 2, 1), 0)
    shown = np.where(post, rng.random(n) >= 0.05, rng.random(n) < 0.12)  # the sheet rarely said
    crm_own = post & (canon > 0) & (rng.random(n) < 0.04)  # "Add-on"/"Renewal" picklist values
    deal_type = np.where(~shown, -1, np.where(crm_own, canon + 2, canon))
    product = np.where(canon == 0, rng.integers(0, 2, n), np.where(canon == 1, 2 + rng.integers(0, 2, n), 4))

    # Deals converted from a lead often leave lead_source blank: the source lives on the lead.
    own_source = np.where(rng.random(n) < 0.08, -1, rng.choice(len(SOURCES), n, p=_SOURCE_P))
    lead_source = np.where(has_lead, np.where(rng.random(n) < 0.45, leads["source"][lead], -1), own_source)

    linked = lead[has_lead]
    leads["deal"][linked] = np.flatnonzero(has_lead)
    leads["account"][linked] = account[has_lead]
    leads["owner"][linked] = owner[has_lead]
    return {
        "created": created, "closes": closes, "is_open": is_open, "is_won": is_won, "stage": stage,
        "account": account, "team": team, "owner": owner, "lead": lead, "amount": amount,
        "eur": eur, "deal_type": deal_type, "product": product, "lead_source": lead_source, "post": post,
        "life_left": life_left,  # the share of its cycle a deal spends inside the history (activities scale with it)
    }


def _activities(rng, n, dl, leads) -> dict[str, np.ndarray]:
    # Narrow dtypes throughout: at 5M rows every int64 temporary costs 40 MB.
    n_deal = round(n * 0.8)
    n_lead = n - n_deal
    w = np.where(dl["post"], ACTIVITY_LIFT, 1.0) * _TEAM_ACTIVITY[dl["team"]] * dl["life_left"]  # the CRM gets used
    di = rng.choice(len(w), n_deal, p=w / w.sum()).astype(np.int32)
    start = dl["created"][di]
    span = np.where(dl["is_open"], _END, dl["closes"])[di] - start
    t_deal = start + (rng.random(n_deal) * span).astype(np.int64)
    del start, span

    lw = np.where(leads["created"] >= _ADOPT, ACTIVITY_LIFT, 1.0)
    li = rng.choice(len(lw), n_lead, p=lw / lw.sum()).astype(np.int32)
    lstart = leads["created"][li]
    lstop = np.where(leads["converted"], leads["converted_at"], np.minimum(leads["created"] + 30 * DAY, _END))[li]
    t_lead = lstart + (rng.random(n_lead) * (lstop - lstart)).astype(np.int64)
    t = np.concatenate([t_deal, t_lead])
    del lstart, lstop, t_deal, t_lead

    kind = rng.choice(len(ACTIVITY_TYPES), n, p=_ACTIVITY_P).astype(np.int8)
    # Open to-dos are due in the future relative to when they were logged.
    is_open = (kind == 3) & (rng.random(n) < 0.05)
    t[is_open] = np.minimum(t[is_open] + rng.integers(1, 22, int(is_open.sum())) * DAY, _END)
    duration = np.full(n, -1, dtype=np.int16)
    calls, meetings = kind == 0, kind == 2
    duration[calls] = np.clip(rng.lognormal(np.log(9), 0.6, int(calls.sum())), 1, 90)
    duration[meetings] = rng.choice(np.array([30, 45, 60, 90], dtype=np.int16), int(meetings.sum()))
    del calls, meetings
    deal_owner = np.where(rng.random(n_deal) < 0.9, dl["owner"][di], rng.integers(0, _TEAM_SIZE.sum(), n_deal))
    none = np.full(n_lead, -1, dtype=np.int32)
    cols = {
        "t": t, "kind": kind, "is_open": is_open, "duration": duration,
        "owner": np.concatenate([deal_owner, leads["owner"][li]]).astype(np.int8),
        "deal": np.concatenate([di, none]),
        "lead": np.concatenate([np.full(n_deal, -1, dtype=np.int32), li]),
        "account": np.concatenate([dl["account"][di], none]).astype(np.int32),
    }
    del t, kind, is_open, duration, deal_owner, di, li
    order = np.argsort(cols["t"], kind="stable")
    for k in cols:  # one column at a time, so only one extra copy is alive
        cols[k] = cols[k][order]
    return cols


def _tickets(rng: np.random.Generator, n: int, month_w: np.ndarray, dl: dict) -> dict[str, np.ndarray]:
    """Support tickets from customers (accounts with a won deal), as many a month as the business is busy."""
    created = np.sort(_times(rng, n, month_w))
    post = created >= _ADOPT
    customers = dl["account"][dl["is_won"] & (dl["account"] >= 0)]
    account = np.where(rng.random(n) < 0.97, rng.choice(customers, n), -1) if len(customers) else np.full(n, -1)
    answered = rng.random(n) < np.where(post, ANSWERED[1], ANSWERED[0])
    reply = rng.lognormal(np.log(np.where(post, FIRST_REPLY_HOURS[1], FIRST_REPLY_HOURS[0])), 0.9) * 3600
    first = created + reply.astype(np.int64)
    answered &= first <= _END
    resolve = rng.lognormal(np.log(np.where(post, RESOLUTION_HOURS[1], RESOLUTION_HOURS[0])), 0.8) * 3600
    closes = np.maximum(created + resolve.astype(np.int64), np.where(answered, first, created))
    is_open = (closes > _END) | ((created > _END - 14 * DAY) & (rng.random(n) < 0.4))
    rated = ~is_open & (rng.random(n) < RATED)
    satisfied = rng.random(n) < np.where(post, SATISFIED[1], SATISFIED[0])
    scale = np.where(post, CSAT_SCALE[1], CSAT_SCALE[0])
    # Satisfied: 8-10 of 10, 4-5 of 5; not: 0-7 of 10, 1-3 of 5.
    u = rng.random(n)
    score = np.where(scale == 10, np.where(satisfied, 8 + (u * 3).astype(int), (u * 8).astype(int)),
                     np.where(satisfied, 4 + (u * 2).astype(int), 1 + (u * 3).astype(int)))
    return {
        "created": created, "account": account, "answered": answered, "first": first, "is_open": is_open,
        "closes": closes, "rated": rated, "score": np.where(rated, score, -1), "scale": scale,
        "priority": rng.choice(len(PRIORITIES), n, p=[0.35, 0.4, 0.2, 0.05]),
        "channel": rng.choice(len(CHANNELS), n, p=[0.45, 0.2, 0.2, 0.15]),
        "agent": rng.integers(0, SUPPORT_AGENTS, n),
    }


def _spend(rng: np.random.Generator, deals: int) -> pd.DataFrame:
    month = MONTHS.astype(int) % 12 + 1
    # Spend grows with the business: the base figures below are for 50 deals a month.
    growth = deals * _trend() / _trend().sum() / 50 * np.where(month >= 10, 1.2, 1.0)
    base = np.array([3500.0, 1200.0, 2500.0, 600.0, 8000.0, 1000.0])
    mkt = base * growth[:, None] * rng.lognormal(0, 0.12, (len(MONTHS), len(SOURCES)))
    # Trade-show money is spent in event months, a deposit otherwise.
    mkt[:, 3] *= np.where(np.isin(month, [3, 6, 9, 11]), 15.0, 1.0)
    sales = 22_000.0 * growth * rng.lognormal(0, 0.05, len(MONTHS))
    amounts = np.round(np.column_stack([mkt, sales]), 2)
    n_cols = len(SOURCES) + 1
    return pd.DataFrame({
        "ord": np.arange(amounts.size) * _ORD,
        "month": np.repeat(MONTHS.astype("datetime64[D]").astype(str), n_cols),
        "category": np.tile(["marketing"] * len(SOURCES) + ["sales"], len(MONTHS)),
        "channel": np.tile(np.array(SOURCES + [None], dtype=object), len(MONTHS)),
        "amount": amounts.ravel(),
    })


def _cat(codes: np.ndarray, labels: list[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int8), categories=labels)  # -1 -> NULL -> ""


def _ts(t: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    if valid is None:
        return t.view("datetime64[s]")
    return np.where(valid, t, np.iinfo(np.int64).min).view("datetime64[s]")  # int64 min is NaT


def _id(prefix: str, col: str, width: int) -> str:
    return f"CASE WHEN {col} >= 0 THEN '{prefix}' || lpad(CAST({col} + 1 AS VARCHAR), {width}, '0') END"


def _bool(col: str) -> str:
    return f"CASE WHEN {col} THEN 'true' ELSE 'false' END"


def _fmt_ts(col: str) -> str:
    return f"strftime({col}, '{_TS}')"


def _lit(v: str | None) -> str:
    return "NULL" if v is None else "'" + v.replace("'", "''") + "'"


def _write(out, dl, leads, acts, accounts, spend, fx, tickets) -> dict[str, int]:
    n_d, n_l, n_a, n_acc = len(dl["created"]), len(leads["created"]), len(acts["t"]), len(accounts["name"])
    n_t = len(tickets["created"])
    wd, wl, wa, wt = (max(6, len(str(x + 10))) for x in (n_d, n_l, n_a, n_t))
    wc = max(5, len(str(n_acc)))
    bad = _plant_bad_rows(dl, leads, acts, wd, wl)
    bad["tickets"] = _plant_bad_tickets(tickets, wt)
    keep = np.arange(len(MONTHS)) != MISSING_FX_MONTH
    # (table, arrays to free once written, columns of the registered frame, formatting SELECT)
    tables = [
        ("activities", acts, lambda: {
            "i": np.arange(n_a, dtype=np.int32), "kind": _cat(acts["kind"], ACTIVITY_TYPES),
            "is_open": acts["is_open"], "occurred_at": _ts(acts["t"]), "owner": acts["owner"],
            "deal": acts["deal"], "lead": acts["lead"], "account": acts["account"], "duration": acts["duration"]},
         f"""x.i * {_ORD} AS ord, {_id('A', 'x.i', wa)} AS activity_id, CAST(x.kind AS VARCHAR) AS "type",
            CASE WHEN x.is_open THEN 'open' ELSE 'completed' END AS status, {_fmt_ts('x.occurred_at')} AS occurred_at,
            o.owner_id, {_id('D', 'x.deal', wd)} AS deal_id, {_id('L', 'x.lead', wl)} AS lead_id,
            {_id('ACC', 'x.account', wc)} AS account_id,
            CASE WHEN x.duration >= 0 THEN CAST(x.duration AS VARCHAR) END AS duration_minutes"""),
        ("deals", dl, lambda: {
            "i": np.arange(n_d, dtype=np.int32), "account": dl["account"], "owner": dl["owner"],
            "product": _cat(dl["product"], PRODUCTS), "stage": _cat(dl["stage"], STAGES),
            "is_closed": ~dl["is_open"], "is_won": dl["is_won"], "amount": dl["amount"],
            "currency": _cat(dl["eur"], ["USD", "EUR"]), "deal_type": _cat(dl["deal_type"], DEAL_TYPES),
            "lead_source": _cat(dl["lead_source"], SOURCES), "lead": dl["lead"],
            "created_at": _ts(dl["created"]), "closed_at": _ts(dl["closes"], ~dl["is_open"])},
         f"""x.i * {_ORD} AS ord, {_id('D', 'x.i', wd)} AS deal_id, {_id('ACC', 'x.account', wc)} AS account_id,
            a.account_name, o.owner_id, o.team,
            coalesce(a.account_name, 'Unassigned') || ' - ' || CAST(x.product AS VARCHAR) AS name,
            CAST(x.stage AS VARCHAR) AS stage, {_bool('x.is_closed')} AS is_closed, {_bool('x.is_won')} AS is_won,
            printf('%.2f', x.amount) AS amount, CAST(x.currency AS VARCHAR) AS currency,
            CAST(x.deal_type AS VARCHAR) AS deal_type, CAST(x.lead_source AS VARCHAR) AS lead_source,
            {_id('L', 'x.lead', wl)} AS lead_id, {_fmt_ts('x.created_at')} AS created_at,
            {_fmt_ts('x.closed_at')} AS closed_at"""),
        ("leads", leads, lambda: {
            "i": np.arange(n_l, dtype=np.int32), "owner": leads["owner"],
            "lead_source": _cat(leads["source"], SOURCES), "status": _cat(leads["status"], LEAD_STATUS),
            "created_at": _ts(leads["created"]), "is_converted": leads["converted"],
            "converted_at": _ts(leads["converted_at"], leads["converted"]),
            "deal": leads["deal"], "account": leads["account"]},
         f"""x.i * {_ORD} AS ord, {_id('L', 'x.i', wl)} AS lead_id, o.owner_id, o.team,
            CAST(x.lead_source AS VARCHAR) AS lead_source, CAST(x.status AS VARCHAR) AS status,
            {_fmt_ts('x.created_at')} AS created_at, {_bool('x.is_converted')} AS is_converted,
            {_fmt_ts('x.converted_at')} AS converted_at, {_id('D', 'x.deal', wd)} AS converted_deal_id,
            {_id('ACC', 'x.account', wc)} AS converted_account_id"""),
        ("tickets", tickets, lambda: {
            "i": np.arange(n_t, dtype=np.int32), "account": tickets["account"],
            "agent": tickets["agent"], "is_open": tickets["is_open"],
            "priority": _cat(tickets["priority"], PRIORITIES), "channel": _cat(tickets["channel"], CHANNELS),
            "created_at": _ts(tickets["created"]), "first_response_at": _ts(tickets["first"], tickets["answered"]),
            "closed_at": _ts(tickets["closes"], ~tickets["is_open"]), "score": tickets["score"],
            "scale": tickets["scale"]},
         f"""x.i * {_ORD} AS ord, {_id('T', 'x.i', wt)} AS ticket_id, {_id('ACC', 'x.account', wc)} AS account_id,
            a.account_name, 'S' || lpad(CAST(x.agent + 1 AS VARCHAR), 3, '0') AS owner_id, 'Support' AS team,
            CASE WHEN x.is_open THEN 'open' ELSE 'closed' END AS status, CAST(x.priority AS VARCHAR) AS priority,
            CAST(x.channel AS VARCHAR) AS channel, {_fmt_ts('x.created_at')} AS created_at,
            {_fmt_ts('x.first_response_at')} AS first_response_at, {_fmt_ts('x.closed_at')} AS closed_at,
            CASE WHEN x.score >= 0 THEN CAST(x.score AS VARCHAR) END AS csat_score,
            CASE WHEN x.score >= 0 THEN CAST(x.scale AS VARCHAR) END AS csat_scale_max"""),
        ("spend", {}, lambda: spend,
         "x.ord, x.month, x.category, x.channel, printf('%.2f', x.amount) AS amount, 'USD' AS currency"),
        ("fx_rates", {}, lambda: {
            "ord": np.arange(keep.sum()) * _ORD, "month": MONTHS[keep].astype("datetime64[D]").astype(str),
            "rate": fx[keep]},
         "x.ord, x.month, 'EUR' AS currency, printf('%.4f', x.rate) AS rate"),
    ]
    rows = {}
    # Cap DuckDB's memory so the big ORDER BYs spill to a private temp dir
    # (never the working tree) instead of pushing the process past ~2 GiB.
    with tempfile.TemporaryDirectory(prefix="crm_sample_") as spill:
        con = duckdb.connect(config={"memory_limit": "768MB", "temp_directory": spill})
        con.register("owners_df", pd.DataFrame({
            "owner": np.arange(_TEAM_SIZE.sum()),
            "owner_id": [f"U{i + 1:03d}" for i in range(_TEAM_SIZE.sum())],
            "team": np.repeat(TEAMS, _TEAM_SIZE)}))
        con.register("accounts_df", pd.DataFrame({"account": np.arange(n_acc), "account_name": accounts["name"]}))
        joins = "LEFT JOIN accounts_df a ON a.account = x.account JOIN owners_df o ON o.owner = x.owner"
        for table, arrays, columns, select in tables:
            frame = pd.DataFrame(columns(), copy=False)
            con.register("src", frame)
            # Sales owners and account names for the CRM's tables; the helpdesk's agents are its own.
            join = joins if "o.owner_id" in select else ("LEFT JOIN accounts_df a ON a.account = x.account"
                                                          if "a.account_name" in select else "")
            con.execute(f"CREATE OR REPLACE TEMP VIEW t AS SELECT {select} FROM src x {join}")
            cols = [c[0] for c in con.execute("SELECT * FROM t LIMIT 0").description if c[0] != "ord"]
            union = " UNION ALL ".join(["SELECT * FROM t"] + [
                f"SELECT * REPLACE ({new_ord} AS ord{''.join(f', {_lit(v)} AS {k}' for k, v in over.items())}) "
                f"FROM t WHERE ord = {src_ord}" for src_ord, new_ord, over in bad.get(table, [])])
            path = str(out / f"{table}.csv").replace("'", "''")
            select_cols = ", ".join(f'"{c}"' for c in cols)
            con.execute(f"COPY (SELECT {select_cols} FROM ({union}) ORDER BY ord) TO '{path}' (HEADER, DELIMITER ',')")
            rows[f"{table}.csv"] = len(frame) + len(bad.get(table, []))
            con.execute("DROP VIEW t")
            con.unregister("src")
            del frame
            arrays.clear()  # the caller's dicts hold the only other references
        con.close()
    return {f"{table}.csv": rows[f"{table}.csv"]
            for table in ("deals", "leads", "activities", "spend", "tickets", "fx_rates")}


def _plant_bad_tickets(tickets: dict, wt: int) -> list[tuple[int, int, dict]]:
    """Two helpdesk defects: a ticket exported without its id (rejected), and one whose first reply is stamped
    two hours before it was opened (a clock on another time zone: staged, fires the answered_after_created
    WARN check and is left out of the median first-response time)."""
    n = len(tickets["created"])
    if not n:
        return []
    s = int(np.searchsorted(tickets["created"], int(np.datetime64("2022-04-11", "s").astype(np.int64))))
    s = min(s, n - 1)
    opened = int(tickets["created"][s])
    skewed = np.datetime64(opened - 2 * 3600, "s").astype(object).strftime(_TS)
    return [
        (s * _ORD, s * _ORD + 1, {"ticket_id": None}),
        (s * _ORD, s * _ORD + 2, {"ticket_id": f"T{n + 1:0{wt}d}", "first_response_at": skewed}),
    ]


def _plant_bad_rows(dl, leads, acts, wd: int, wl: int) -> dict[str, list[tuple[int, int, dict]]]:
    """One of each real-world defect, as (template row ord, new ord, column overrides).

    Deals: no deal_id; created_at "not a date"; one deal_id exported twice with
    different amounts; EUR in the month fx_rates.csv lacks (those four are
    rejected); won without closed_at; closed before created (those two are
    staged and only fire WARN checks). Leads: created 2014-11-05, before any
    sane history start; is_converted "yes?". Activities: no activity_id (all
    rejected). No planted row fires an ERROR check, so the first run is clean.

    Each planted row copies a real row (so owner/account look plausible) and
    sits next to it in file order. Only the duplicate keeps its template's
    lead link (it is that deal, exported twice); the others drop it so the
    lead <-> deal references stay one-to-one.
    """
    n_d, n_l = len(dl["created"]), len(leads["created"])
    new_deal = [f"D{n_d + k:0{wd}d}" for k in range(1, 5)]

    def at(created: np.ndarray, iso: str) -> int:
        t = int(np.datetime64(iso, "s").astype(np.int64))
        return max(int(np.searchsorted(created, t)) - 1, 0)

    def deal(iso: str, k: int, **over) -> tuple[int, int, dict]:
        s = at(dl["created"], iso)
        return s * _ORD, s * _ORD + k, {"lead_id": None, **over}

    won = {"stage": "Closed Won", "is_closed": "true", "is_won": "true", "currency": "USD"}
    lost = {"stage": "Closed Lost", "is_closed": "true", "is_won": "false", "currency": "USD"}
    dup_pool = np.flatnonzero(dl["is_won"] & dl["post"])
    dup = int(dup_pool[len(dup_pool) // 3]) if len(dup_pool) else 0
    dup_amount = f"{round(float(dl['amount'][dup]) * 1.1 + 250, 2):.2f}"
    deals = [
        deal("2022-08-16", 1, deal_id=None, amount="7300.00", created_at="2022-08-16T00:00:00Z",
             closed_at="2022-09-30T00:00:00Z", **lost),
        deal("2023-05-01", 2, deal_id=new_deal[0], amount="12900.00", created_at="not a date",
             closed_at="2023-05-12T00:00:00Z", **lost),
        (dup * _ORD, dup * _ORD + 3, {"amount": dup_amount}),
        deal("2023-03-06", 4, deal_id=new_deal[1], amount="18400.00", created_at="2023-03-06T00:00:00Z",
             closed_at="2023-03-29T00:00:00Z", **{**won, "currency": "EUR"}),
        deal("2024-10-02", 5, deal_id=new_deal[2], amount="9800.00", created_at="2024-10-02T09:30:00Z",
             closed_at=None, **won),
        deal("2025-02-17", 6, deal_id=new_deal[3], amount="15600.00", created_at="2025-02-17T11:05:00Z",
             closed_at="2025-02-03T14:20:00Z", **won),
    ]
    unconverted = np.flatnonzero(~leads["converted"])
    first_open = int(unconverted[0]) if len(unconverted) else 0
    not_converted = {"converted_at": None, "converted_deal_id": None, "converted_account_id": None}
    s = at(leads["created"], "2023-09-12")
    lead_rows = [
        (first_open * _ORD, -_ORD, {"lead_id": f"L{n_l + 1:0{wl}d}", "created_at": "2014-11-05T00:00:00Z",
                                    "status": "Disqualified", "is_converted": "false", **not_converted}),
        (s * _ORD, s * _ORD + 1, {"lead_id": f"L{n_l + 2:0{wl}d}", "created_at": "2023-09-12T00:00:00Z",
                                  "status": "Converted", "is_converted": "yes?", **not_converted}),
    ]
    a = at(acts["t"], "2024-03-15")
    return {"deals": deals, "leads": lead_rows, "activities": [(a * _ORD, a * _ORD + 1, {"activity_id": None})]}
