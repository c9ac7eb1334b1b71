"""`crm-roi init PATH`: a commented assumptions file for one's own data, never written over an existing file."""

from __future__ import annotations

import yaml
import pytest

from crm_roi_pipeline.cli import EXIT_BAD_SETTINGS, EXIT_OK, main
from crm_roi_pipeline.errors import SettingsError
from crm_roi_pipeline.settings import Assumptions, load_assumptions


def test_init_writes_a_file_that_loads_once_adoption_date_is_filled_in(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative PATH is the working directory's, as on any command line
    assert main(["init", "config/roi_assumptions.yaml"]) == EXIT_OK
    path = tmp_path / "config" / "roi_assumptions.yaml"
    out = capsys.readouterr().out
    assert str(path) in out
    assert f"export CRM_ROI_ASSUMPTIONS={path}" in out and "adoption_date" in out

    text = path.read_text(encoding="utf-8")
    keys = yaml.safe_load(text)
    # Every key of the model is in the file, with nothing the model would refuse.
    assert set(keys) == set(Assumptions.model_fields)
    assert keys["adoption_date"] is None and keys["as_of"] is None and keys["benefit_method"] == "auto"
    assert "EXAMPLE" in text and all("EXAMPLE" in cost["name"] for cost in keys["costs"])

    # Unfilled, it fails naming adoption_date and nothing else.
    with pytest.raises(SettingsError) as info:
        load_assumptions(path)
    problems = str(info.value).split("\n")[1:]
    assert len(problems) == 1 and problems[0].startswith("  - adoption_date: no value; fill it in")

    filled = tmp_path / "filled.yaml"
    filled.write_text(text.replace("adoption_date:   ", "adoption_date: 2024-01-01", 1), encoding="utf-8")
    parsed = load_assumptions(filled)
    assert str(parsed.adoption_date) == "2024-01-01" and parsed.as_of is None
    assert parsed.benefit_method == "auto" and len(parsed.costs) == 4


def test_a_second_init_refuses_and_leaves_the_file_as_it_was(tmp_path, capsys):
    path = tmp_path / "roi_assumptions.yaml"
    assert main(["init", str(path)]) == EXIT_OK
    path.write_text("adoption_date: 2023-05-01  # my edits\n", encoding="utf-8")
    before = path.stat().st_mtime_ns
    capsys.readouterr()

    assert main(["init", str(path)]) == EXIT_BAD_SETTINGS
    err = capsys.readouterr().err
    assert f"{path} already exists" in err and "never overwrites" in err
    assert path.read_text(encoding="utf-8") == "adoption_date: 2023-05-01  # my edits\n"
    assert path.stat().st_mtime_ns == before
    assert [p.name for p in tmp_path.iterdir()] == ["roi_assumptions.yaml"]
