"""`load_topology(paths)`: read topology files of either format and merge them.

The format is recognised from the content: Prometheus text exposition (a kube-state-metrics
`/metrics` dump: `# HELP`/`# TYPE` lines or `name{...} value` samples) or an alert-router
topology file (YAML or JSON whose `kind` is `alert-router/topology`). The two cannot be
mistaken for each other, so extensions (`.prom`, `.txt`, `.yaml`, `.json`) are not relied on:
a dump saved as `cluster.yaml` still loads as a dump.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from ground.errors import InputError
from topology import fileformat, ksm
from topology.graph import Topology
from topology.promtext import looks_like_exposition

Format = Literal["ksm", "topology"]
# Enough of a file to recognise exposition text (a KSM dump starts with `# HELP`).
_HEAD_CHARS = 64 * 1024


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
    """One file of either format."""
    fmt, data = _recognise(path)
    if fmt == "ksm":
        return ksm.load_ksm(path)
    return fileformat.build_topology_file(data, str(path))


def detect_format(path: str | Path) -> Format:
    """Which loader reads this file; InputError when neither does."""
    return _recognise(path)[0]


def _recognise(path: str | Path) -> tuple[Format, object]:
    """The file's format and, for a topology file, its parsed content."""
    source = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            head = handle.read(_HEAD_CHARS)
            complete = len(head) < _HEAD_CHARS or not handle.read(1)
    except UnicodeDecodeError:
        raise InputError(f"cannot read {source}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
    exposition = looks_like_exposition(head)
    # A topology file may carry its marker late (yaml.safe_dump sorts `kind` after `entities`),
    # so anything that is not plainly exposition text is parsed whole.
    if not exposition or fileformat.MARKER in head or head.lstrip().startswith(("{", "[")):
        text = head if complete else _read_all(path, source)
        try:
            data = fileformat.parse_document(text, source)
        except InputError:
            # A syntax error is the file's own error only if it says it is a topology file.
            if fileformat.MARKER in text and not exposition:
                raise
            data = None
        if fileformat.is_topology_document(data):
            return "topology", data
    if exposition:
        return "ksm", None
    raise InputError(f"{source}: not a kube-state-metrics exposition nor an alert-router topology file")


def _read_all(path: str | Path, source: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"cannot read {source}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
