"""What a run that finds nothing new repeats instead of recomputing (last_run.py): only when every input of
the published figures is the same."""

from __future__ import annotations

import datetime as dt

from crm_roi_pipeline.last_run import publication_key, recall, remember

DEALS = "deal_id,is_won,created_at\nD1,false,2024-03-05\n"
DAY = dt.date(2026, 1, 5)


def test_the_stored_outcome_is_recalled_only_for_the_same_inputs(project):
    project.write("deals.csv", DEALS)
    assert project.stage("2024-03-01", "2024-03-01", entities=["deals"]).success
    report = project.root / "reports" / "roi_report.html"
    with project.connect() as conn:
        key = publication_key(conn, project.assumptions, DAY, report)
        assert publication_key(conn, project.assumptions, DAY, report) == key  # deterministic
        remember(conn, key, {"summary": [["crm/deals", 1, 0, 1]], "headline": ["ROI 10%"], "report": str(report),
                             "checks": []})
        published_at, outcome = recall(conn, key)
        assert outcome["headline"] == ["ROI 10%"] and outcome["summary"] == [["crm/deals", 1, 0, 1]]
        # Another day (the windows move with as_of) or another report path: a different key.
        assert publication_key(conn, project.assumptions, DAY + dt.timedelta(days=1), report) != key
        assert publication_key(conn, project.assumptions, DAY, report.with_name("other.html")) != key
    # Other assumptions: a different key.
    project.assumptions.write_text(project.assumptions.read_text().replace("gross_margin: 0.7", "gross_margin: 0.6"))
    with project.connect() as conn:
        assert "gross_margin: 0.6" in project.assumptions.read_text()
        assert publication_key(conn, project.assumptions, DAY, report) != key
    project.assumptions.write_text(project.assumptions.read_text().replace("gross_margin: 0.6", "gross_margin: 0.7"))
    # A staging write (even of the same rows) stamps crm.deals anew: a different key, and nothing recalled.
    assert project.stage("2024-03-01", "2024-03-01", entities=["deals"]).success
    with project.connect() as conn:
        assert publication_key(conn, project.assumptions, DAY, report) != key
        assert recall(conn, publication_key(conn, project.assumptions, DAY, report)) is None
