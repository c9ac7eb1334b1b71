"""The policies every asset shares, applied to all of them: one DuckDB pool, one freshness policy; and every
registered source's resource bound and asked for."""

from __future__ import annotations

from crm_roi_pipeline.definitions import defs, resources
from crm_roi_pipeline.policies import DUCKDB_POOL, NIGHTLY_FRESHNESS
from crm_roi_pipeline.sources.registry import API_SOURCES


def test_every_asset_and_check_opens_the_database_in_the_one_pool():
    nodes = [a.node_def for a in defs.assets] + [c.node_def for c in defs.asset_checks]
    # 5 staging, 4 metrics tables, uplift, roi; the SQL checks of each of the 5 tables in one step each,
    # 4 completeness checks and 1 on the history
    assert len(nodes) == 11 + 5 + 4 + 1
    assert sum(len(c.check_keys) for c in defs.asset_checks) == 16 + 4 + 1
    assert {node.name: node.pool for node in nodes} == {node.name: DUCKDB_POOL for node in nodes}


def test_every_published_asset_has_the_nightly_freshness_policy():
    specs = list(defs.resolve_all_asset_specs())
    assert len(specs) == 17
    # The staged tables are rewritten only when their export changes: an old write is no sign of trouble.
    assert sorted(s.key.to_user_string() for s in specs if s.freshness_policy != NIGHTLY_FRESHNESS) == [
        "crm/activities", "crm/deals", "crm/leads", "crm/spend", "crm/tickets"]
    assert all(s.freshness_policy is None for s in specs if s.group_name == "staging")


def test_each_registered_source_is_bound_and_required_by_the_staging_assets():
    assert set(API_SOURCES) <= set(resources())
    staging = [a for a in defs.assets if a.group_names_by_key and set(a.group_names_by_key.values()) == {"staging"}]
    assert len(staging) == 5
    for asset in staging:
        assert set(API_SOURCES) <= asset.required_resource_keys
