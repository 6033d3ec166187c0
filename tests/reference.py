"""The alert catalogue the tests check against, carried by the repository (see
tests/fixtures/reference/README.md for its origin and licence)."""

from pathlib import Path

CATALOGUE = Path(__file__).resolve().parent / "fixtures" / "reference" / "kubernetes-alerts.json"
