"""The repository carries what its tests check against: a clone with nothing beside it tests
everything (no test reads a sibling checkout such as ../shared, none skips for a missing file)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.reference import CATALOGUE

ROOT = Path(__file__).resolve().parent.parent
# A path that leaves the checkout: `<repo>/../…` built from __file__ or ROOT, or spelt out.
OUTSIDE = re.compile(r"parents\[(?:[2-9])\]\s*/|ROOT\.parent\b|\.\./shared|\"shared\"\s*/")


def test_no_test_reads_a_file_outside_the_repository():
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OUTSIDE.search(line) and path.name != "test_repository.py":
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_catalogue_is_in_the_repository_with_its_licence():
    assert CATALOGUE.is_file() and ROOT in CATALOGUE.parents
    entries = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    assert len(entries) == 177 and all(e["source"]["repo"] and e["source"]["commit"] for e in entries)
    notice = (CATALOGUE.parent / "README.md").read_text(encoding="utf-8")
    assert "Apache" in notice
    assert "Apache License" in (CATALOGUE.parent / "LICENSE-Apache-2.0").read_text(encoding="utf-8")
