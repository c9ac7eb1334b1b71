"""The fixtures the tests read are the shared real exports, byte for byte."""

import hashlib

import pytest

from crm_roi_pipeline_tests.conftest import FIXTURES, REPO, SHARED_FIXTURES


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason="../shared is not beside this checkout (a clean CI clone)")
def test_copy_is_identical_to_shared_fixtures():
    assert _digests(FIXTURES) == _digests(SHARED_FIXTURES)


@pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason="../shared is not beside this checkout (a clean CI clone)")
@pytest.mark.parametrize("name", ["CONTRACT.md", "METRICS.md"])
def test_docs_are_the_shared_contract_and_definitions(name):
    shared = SHARED_FIXTURES.parents[1] / name
    assert (REPO / "docs" / name).read_bytes() == shared.read_bytes()
