"""The parsing macros every source's values pass through (staging/sql/macros.sql), on values written by hand."""

import datetime as dt

import duckdb
import pytest

from crm_roi_pipeline.sql_files import PACKAGE_DIR

MACROS = PACKAGE_DIR / "staging" / "sql" / "macros.sql"


@pytest.fixture(scope="module")
def conn():
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")  # as every Warehouse connection does
        conn.execute(MACROS.read_text())
        yield conn


@pytest.mark.parametrize(
    "value, expected",
    [
        ("D001", "D001"),
        ("  D001 ", "D001"),
        ("Acme Inc", "Acme Inc"),  # inner spaces stay
        ("", None),
        ("   ", None),
        (None, None),
        ("\u00a0Acme", "Acme"),  # no-break space, as spreadsheets paste it
        ("Acme\u3000", "Acme"),  # ideographic space
        ("\u00a0", None),
        ("Zürich", "Zürich"),  # non-ASCII but nothing to trim
        (" Zürich ", "Zürich"),
    ],
)
def test_crm_text_trims_unicode_spaces_and_empties(conn, value, expected):
    assert conn.execute("SELECT crm_text(?)", [value]).fetchone()[0] == expected
    # The shortcut must agree with what it stands for, trim and nullif on every value.
    assert conn.execute("SELECT crm_text($1) IS NOT DISTINCT FROM nullif(trim($1), '')", [value]).fetchone()[0]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2024-03-01T00:30:08Z", dt.datetime(2024, 3, 1, 0, 30, 8)),
        ("2024-03-01T00:30:08.250Z", dt.datetime(2024, 3, 1, 0, 30, 8, 250000)),
        ("2024-03-01T00:30:08.000+0000", dt.datetime(2024, 3, 1, 0, 30, 8)),  # Salesforce's REST format
        ("2024-02-29T23:30:00-05:00", dt.datetime(2024, 3, 1, 4, 30)),  # the offset moves it into March
        ("2024-03-01T01:30:00+02:00", dt.datetime(2024, 2, 29, 23, 30)),
        ("2024-03-01 09:15:00", dt.datetime(2024, 3, 1, 9, 15)),  # no offset: read as UTC
        ("2024-03-01", dt.datetime(2024, 3, 1)),
        ("2024-13-01T00:00:00Z", None),  # no 13th month
        ("02/03/24", None),  # slash dates are the mapping's business, never the year 2
        ("someday Z", None),
        (None, None),
    ],
)
def test_crm_iso_ts_reads_iso_dates_as_utc(conn, value, expected):
    assert conn.execute("SELECT crm_iso_ts(?)", [value]).fetchone()[0] == expected

