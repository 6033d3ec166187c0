"""`load_topology(paths)`: read topology files of either format and merge them.

The format is recognised from the content, never from the extension alone: Prometheus text
exposition (a kube-state-metrics `/metrics` dump) or an alert-router topology file (YAML or
JSON with `kind: alert-router/topology`). `.prom`/`.txt` and `.yaml`/`.yml`/`.json` only
decide which format is tried first when the start of a file could be either.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from router.model import InputError
from topology import fileformat, ksm
from topology.graph import Topology
from topology.promtext import looks_like_exposition

Format = Literal["ksm", "topology"]
# Enough of a file to recognise it: a KSM dump starts with `# HELP`; YAML with its marker.
_HEAD_BYTES = 64 * 1024


def load_topology(paths: Iterable[str | Path]) -> Topology:
    """Load and merge topology files; InputError names the file that is missing or wrong."""
    merged: Topology | None = None
    for path in paths:
        topology = load_file(path)
        if merged is None:
            merged = topology
        else:
            merged.merge(topology)
    return merged if merged is not None else Topology()


def load_file(path: str | Path) -> Topology:
    source = str(path)
    fmt, data = _recognise(path)
    if fmt == "ksm":
        return ksm.load_ksm(path)
    return fileformat.build_topology_file(data, source)


def detect_format(path: str | Path) -> Format:
    """Which loader reads this file; InputError when neither does."""
    return _recognise(path)[0]


def _recognise(path: str | Path) -> tuple[Format, object]:
    source = str(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = handle.read(_HEAD_BYTES)
            complete = len(head) < _HEAD_BYTES or not handle.read(1)
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
    unknown = InputError(f"{source}: not a kube-state-metrics exposition nor an alert-router topology file")
    suffix = Path(source).suffix.lower()
    if suffix in (".yaml", ".yml", ".json") or not looks_like_exposition(head):
        data = _topology_document(path, head, complete, source)
        if data is not None:
            return "topology", data
        if looks_like_exposition(head):
            return "ksm", None
        raise unknown
    return "ksm", None


def _topology_document(path: str | Path, head: str, complete: bool, source: str) -> object | None:
    """The parsed topology document, or None when the file is not one."""
    if "alert-router/topology" not in head and not head.lstrip().startswith(("{", "[")):
        return None
    text = head if complete else _read_all(path, source)
    try:
        data = fileformat.parse_document(text, source)
    except InputError:
        # A syntax error in a file that carries the marker is that file's error; otherwise the
        # file is simply something else.
        if "alert-router/topology" in head:
            raise
        return None
    return data if fileformat.is_topology_document(data) else None


def _read_all(path: str | Path, source: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"cannot read {source}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
