"""Hostile inputs (issue 17): a bad export never wipes good data, never hangs, and the run stops before any
write with a message naming the file, the line (or column), the problem and the fix.

Every case stages a good file first, then the bad one, and checks that the DuckDB file still holds exactly
the good run's rows. Line numbers, bytes and values in the expected messages are read off the text each
test writes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from crm_roi_pipeline.errors import InputFileError, SettingsError, quote
from crm_roi_pipeline.settings import load_assumptions
from crm_roi_pipeline.sources.mappings import load_mapping_file
from crm_roi_pipeline_tests.conftest import ASSUMPTIONS, Project, failure_message, planned_events_as_ranges

HEADER = "deal_id,account_id,stage,is_closed,is_won,amount,currency,created_at,closed_at\n"
GOOD = HEADER + (
    "D1,A1,Closed Won,true,true,100,USD,2024-01-05,2024-02-01\n"
    "D2,A2,Closed Lost,true,false,50,USD,2024-01-20,2024-03-01\n"
)
GOOD_ROWS = [("D1", 100.0), ("D2", 50.0)]
# Rows of the bad files: D1 with another amount and a new D3, so that a bad file that got staged would show.
D1 = "D1,A1,Closed Won,true,true,111,USD,2024-01-05,2024-02-01\n"
D3 = "D3,A3,Closed Won,true,true,30,USD,2024-02-05,2024-02-10\n"


def _deals(project: Project) -> list[tuple]:
    return project.query("SELECT deal_id, amount FROM crm.deals ORDER BY deal_id")


@pytest.fixture(scope="module")
def good_database(tmp_path_factory) -> Path:
    """The good file staged once, over its month (2024-01: a run over 2015 … today added ~0.5 s of Dagster's
    per-month events); `stage_good` gives each test a copy of the database."""
    project = Project(tmp_path_factory.mktemp("good"))
    project.write("deals.csv", GOOD)
    with planned_events_as_ranges():
        result = project.stage("2024-01-01", "2024-01-01", entities=["deals"], raise_on_error=False)
    assert result.success, failure_message(result)
    assert _deals(project) == GOOD_ROWS
    return project.db_path


@pytest.fixture
def project(project, good_database) -> Project:
    project.good_database = good_database
    return project


def stage_good(project: Project) -> None:
    """The state a good run leaves: the good file in the folder, its rows in the database (a copy of the one
    good run's file: the same rows, without a run per test)."""
    project.write("deals.csv", GOOD)
    project.use_database(project.good_database)
    assert _deals(project) == GOOD_ROWS


def stops_and_keeps(project: Project) -> str:
    """Stage deals with the bad input in place: the run fails, and the good run's rows are all still there."""
    result = project.stage(entities=["deals"], raise_on_error=False)
    assert not result.success, "the run should have stopped"
    assert _deals(project) == GOOD_ROWS
    assert project.query("SELECT count(*) FROM crm.rejects")[0][0] == 0
    return failure_message(result)


def write_bytes(project: Project, name: str, data: bytes) -> Path:
    path = project.csv_dir / name
    path.write_bytes(data)
    return path


# --- 1. CSV structure ------------------------------------------------------------------------------


def test_a_stray_quote_stops_naming_the_line_and_column(project):
    stage_good(project)
    # Line 3 opens a quote in account_id that never closes: the rest of the file would be one value.
    project.write("deals.csv", HEADER + D1 + 'D2,"A2,Closed Lost,true,false,50,USD,2024-01-20,2024-03-01\n' + D3)
    message = stops_and_keeps(project)
    assert message.startswith(
        "crm/deals: deals.csv: line 3, column account_id: a value opens a double quote (\") that does not close "
        "where the value ends: 'D2,\"A2,Closed Lost"
    )
    assert "Fix: enclose the value in double quotes, and write each double quote inside it twice" in message


@pytest.mark.parametrize(
    ("bad", "found"),
    [
        ("D2,A2,Closed Lost,true,false,50,USD,2024-01-20\n", 8),  # closed_at left out
        ("D2,A2,Closed Lost,true,false,50,USD,2024-01-20,2024-03-01,extra\n", 10),
    ],
    ids=["short", "long"],
)
def test_a_short_or_long_row_stops_naming_the_line(project, bad, found):
    stage_good(project)
    project.write("deals.csv", HEADER + D1 + bad + D3)
    message = stops_and_keeps(project)
    assert f"deals.csv: line 3 has {found} values, but the header has 9 columns: {bad.strip()!r}." in message
    assert "Fix: correct or delete that line (a value holding a comma must be enclosed in double quotes)" in message


def test_every_bad_line_is_counted_and_the_first_named(project):
    stage_good(project)
    short = "D2,A2\n"
    project.write("deals.csv", HEADER + D1 + short + D3 + short + short)
    message = stops_and_keeps(project)
    assert "deals.csv: line 3 has 2 values, but the header has 9 columns: 'D2,A2'." in message
    assert "2 more lines cannot be read either (line 5, 6)." in message


def test_bad_lines_are_listed_for_the_rejects(project):
    """The (file, line, reason, raw) of each skipped line, as staging would write them to crm.rejects."""
    import duckdb

    from crm_roi_pipeline.sources.csv_reading import BadLine, bad_lines, read_csv_sql

    path = write_bytes(project, "deals.csv", (HEADER + D1 + "D2,A2\n" + D3).encode())
    conn = duckdb.connect()
    header = tuple(HEADER.strip().split(","))
    rows = conn.execute(f"SELECT deal_id FROM {read_csv_sql(path, header, rejects='r')}").fetchall()
    assert rows == [("D1",), ("D3",)]
    assert bad_lines(conn, "r", "deals.csv") == [
        BadLine("deals.csv", 3, "line 3 has 2 values, but the header has 9 columns", "D2,A2", "MISSING COLUMNS",
                len(HEADER + D1) + 1),
    ]


def test_a_bad_line_behind_a_link_is_named_by_the_links_name_and_its_own_line(project, tmp_path):
    stage_good(project)
    target = tmp_path / "exports" / "opportunities-2024.csv"
    target.parent.mkdir()
    target.write_text(HEADER + D1 + D3 + "D2,A2\n", encoding="utf-8")
    (project.csv_dir / "deals.csv").unlink()
    os.symlink(target, project.csv_dir / "deals.csv")
    message = stops_and_keeps(project)
    assert "deals.csv: line 4 has 2 values, but the header has 9 columns: 'D2,A2'." in message


def test_duplicated_header_names_stop_naming_both_columns(project):
    stage_good(project)
    project.write("deals.csv", HEADER.replace("closed_at", "amount") + D1)
    message = stops_and_keeps(project)
    assert message == (
        "crm/deals: deals.csv, line 1: column 6 (F) and column 9 (I) are both named 'amount'. "
        "Fix: rename or delete one of the two columns, so that every column name appears once."
    )


def test_header_names_differing_only_in_case_are_duplicates(project):
    stage_good(project)
    project.write("deals.csv", HEADER.replace("closed_at", "Amount ") + D1)
    message = stops_and_keeps(project)
    assert "deals.csv, line 1: column 6 (F) and column 9 (I), 'amount' and 'Amount', have the same name" in message


# --- 2. encodings -----------------------------------------------------------------------------------


def test_a_utf16_export_stops_saying_utf16_and_how_to_save_utf8(project):
    stage_good(project)
    write_bytes(project, "deals.csv", (HEADER + D1).encode("utf-16"))  # Python writes the byte-order mark
    message = stops_and_keeps(project)
    assert message.startswith(
        "crm/deals: deals.csv: is saved as UTF-16 (a byte-order mark); CSV exports are read as UTF-8. "
        "Fix: save it as UTF-8: in Excel, Save As > 'CSV UTF-8 (Comma delimited) (*.csv)'"
    )


def test_a_utf16_export_without_byte_order_mark_is_recognised(project):
    stage_good(project)
    write_bytes(project, "deals.csv", (HEADER + D1).encode("utf-16-le"))
    message = stops_and_keeps(project)
    assert "deals.csv: is saved as UTF-16 (every other byte is zero)" in message


def test_a_latin1_row_stops_naming_the_line_column_and_byte(project):
    stage_good(project)
    data = (HEADER + D1 + "D2,Café,Closed Lost,true,false,50,USD,2024-01-20,2024-03-01\n" + D3).encode("latin-1")
    write_bytes(project, "deals.csv", data)
    message = stops_and_keeps(project)
    position = data.index(b"\xe9") + 1  # counting from 1
    assert (
        f"deals.csv: line 3, column account_id: the text is not UTF-8 (byte 0xE9, byte {position} of the file); "
        "the file is probably saved as Latin-1 or Windows-1252: "
    ) in message
    assert "Fix: save it as UTF-8: in Excel, Save As > 'CSV UTF-8 (Comma delimited) (*.csv)'" in message


def test_a_latin1_header_stops_naming_line_1(project):
    stage_good(project)
    write_bytes(project, "deals.csv", (HEADER.replace("currency", "devise_é") + D1).encode("latin-1"))
    message = stops_and_keeps(project)
    position = HEADER.index("currency") + len("devise_") + 1
    assert (
        f"deals.csv, line 1: the header: character {position} of the line, byte 0xE9 (byte {position} of the "
        "file), is not UTF-8 (the file is probably saved as Latin-1 or Windows-1252). Fix: save it as UTF-8"
    ) in message


def test_a_latin1_mapping_file_names_the_line_and_byte(project):
    stage_good(project)
    (project.csv_dir / "deals.mapping.yaml").write_bytes("# Montant\ncolumns:\n  amount: montant_é\n".encode("latin-1"))
    message = stops_and_keeps(project)
    # "  amount: montant_" is 18 characters, then é.
    offset = len(b"# Montant\ncolumns:\n  amount: montant_")
    assert message == (
        f"crm/deals: deals.mapping.yaml, line 3: character 19 of the line, byte 0xE9 (byte {offset + 1} of the "
        "file), is not UTF-8 (the file is probably saved as Latin-1 or Windows-1252). "
        "Fix: save it as UTF-8 (in a text editor: Save As, encoding UTF-8)."
    )


def test_a_latin1_assumptions_file_names_the_line_and_byte(project):
    stage_good(project)
    text = ASSUMPTIONS.replace("{name: Licences,", "{name: Licences Société,")
    project.assumptions.write_bytes(text.encode("latin-1"))
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "Soci" in t)
    column = text.splitlines()[line - 1].index("é") + 1
    offset = text.encode("latin-1").index(b"\xe9") + 1
    message = stops_and_keeps(project)
    assert message == (
        f"crm/deals: {project.assumptions}, line {line}: character {column} of the line, byte 0xE9 (byte {offset} "
        "of the file), is not UTF-8 (the file is probably saved as Latin-1 or Windows-1252). "
        "Fix: save it as UTF-8 (in a text editor: Save As, encoding UTF-8)."
    )


# --- 3. a folder where a file should be ------------------------------------------------------------


def test_a_folder_named_deals_csv_stops_naming_it(project):
    stage_good(project)
    (project.csv_dir / "deals.csv").unlink()
    (project.csv_dir / "deals.csv").mkdir()
    (project.csv_dir / "deals.csv" / "part-1.csv").write_text(GOOD, encoding="utf-8")
    message = stops_and_keeps(project)
    assert message == (
        "crm/deals: deals.csv: is a folder, where a CSV export is expected; nothing in it is read. "
        "Fix: put the export itself in the CSV folder as deals.csv, or rename the folder so that its name does "
        "not end in .csv."
    )


def test_a_broken_link_named_deals_csv_stops_naming_its_target(project, tmp_path):
    stage_good(project)
    (project.csv_dir / "deals.csv").unlink()
    os.symlink(tmp_path / "gone.csv", project.csv_dir / "deals.csv")
    message = stops_and_keeps(project)
    assert f"deals.csv: is a link to {quote(str(tmp_path / 'gone.csv'))}, which does not exist." in message


def test_a_folder_of_a_name_no_export_has_is_listed_as_ignored(project):
    from crm_roi_pipeline.sources.csv_exports.folder import plan_folder

    project.write("deals.csv", GOOD)
    (project.csv_dir / "old exports.csv").mkdir()
    plan = plan_folder(project.csv_dir)
    assert plan.ignored == ["old exports.csv (a folder)"]
    assert [f.name for f in plan.files_for("deals")] == ["deals.csv"]


def test_a_pipe_named_deals_csv_stops_without_blocking(project):
    stage_good(project)
    (project.csv_dir / "deals.csv").unlink()
    os.mkfifo(project.csv_dir / "deals.csv")  # opening it to read would wait for a writer forever
    message = stops_and_keeps(project)
    assert "deals.csv: is not a regular file (a pipe, socket or device)." in message


# --- 4. YAML safety -----------------------------------------------------------------------------------

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_billion_laughs_mapping_file_fails_fast_with_a_short_message(project):
    stage_good(project)
    project.write("deals.mapping.yaml", BILLION_LAUGHS)
    started = time.monotonic()
    with pytest.raises(InputFileError) as info:
        load_mapping_file(project.csv_dir / "deals.mapping.yaml")
    assert time.monotonic() - started < 2
    message = str(info.value)
    assert len(message) < 500
    assert message == (
        "deals.mapping.yaml, line 2: uses a YAML alias ('*a'); aliases are not accepted here. "
        "Fix: write the value out in full where the alias is."
    )
    started = time.monotonic()
    message = stops_and_keeps(project)
    assert time.monotonic() - started < 10  # a whole Dagster run, most of it start-up
    assert len(message) < 500 and "deals.mapping.yaml, line 2: uses a YAML alias ('*a')" in message


def test_billion_laughs_assumptions_file_fails_fast_with_a_short_message(tmp_path):
    path = tmp_path / "assumptions.yaml"
    head = ASSUMPTIONS.replace("deal_types:\n  Add-on: expansion\n", "")
    path.write_text(head + "deal_types:\n  " + BILLION_LAUGHS.replace("\n", "\n  ").rstrip() + "\n")
    started = time.monotonic()
    with pytest.raises(SettingsError) as info:
        load_assumptions(path)
    assert time.monotonic() - started < 2
    line = head.count("\n") + 3  # deal_types:, then `a: &a [...]`, then `b: &b [*a, ...`
    assert str(info.value) == (
        f"{path}, line {line}: uses a YAML alias ('*a'); aliases are not accepted here. "
        "Fix: write the value out in full where the alias is."
    )


def test_long_values_are_quoted_short(project):
    long_value = "x" * 100_000
    project.write("deals.mapping.yaml", f"columns:\n  amount: {long_value}\n")
    project.write("deals.csv", GOOD)
    with pytest.raises(InputFileError) as info:
        from crm_roi_pipeline.sources.csv_exports.folder import plan_folder

        plan_folder(project.csv_dir).files_for("deals")
    message = str(info.value)
    assert f"column {long_value[:200]!r}… (100,000 characters) (mapped to amount" in message
    assert len(message) < 500


def test_long_assumption_values_are_quoted_short(tmp_path):
    path = tmp_path / "assumptions.yaml"
    path.write_text(ASSUMPTIONS.replace("reporting_currency: USD", "reporting_currency: " + "U" * 50_000))
    with pytest.raises(SettingsError) as info:
        load_assumptions(path)
    assert f"(got {'U' * 200!r}… (50,000 characters))" in str(info.value)
    assert len(str(info.value)) < 600


def test_a_stray_quote_quotes_at_most_200_characters_of_the_rest_of_the_file(project):
    stage_good(project)
    rows = "".join(f"D{i},A{i},Closed Won,true,true,1,USD,2024-01-05,2024-02-01\n" for i in range(10, 5000))
    project.write("deals.csv", HEADER + 'D9,"A9,Closed Won,true,true,1,USD,2024-01-05,2024-02-01\n' + rows)
    message = stops_and_keeps(project)
    assert "deals.csv: line 2, column account_id: a value opens a double quote" in message
    assert "D9,\"A9,Closed Won" in message and "D300," not in message  # 200 characters of the rest of the file
    assert len(message) < 800
