"""load_topology: format recognised from content, several files merged, clear errors."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
import yaml

from ground.errors import InputError
from topology.load import detect_format, load_topology

FIXTURES = Path(__file__).parent / "fixtures" / "topology"


def copy(tmp_path: Path, fixture: str, name: str) -> Path:
    target = tmp_path / name
    shutil.copyfile(FIXTURES / fixture, target)
    return target


@pytest.mark.parametrize(
    ("fixture", "name", "expected"),
    [
        ("small-cluster.prom", "cluster.prom", "ksm"),
        # Extensions are hints only: the content decides.
        ("small-cluster.prom", "cluster.yaml", "ksm"),
        ("small-cluster.prom", "metrics", "ksm"),
        ("small-cluster.yaml", "cluster.txt", "topology"),
        ("small-cluster.yaml", "cluster.prom", "topology"),
        ("edge.json", "edge", "topology"),
        ("multi-cluster.prom", "federate.txt", "ksm"),
    ],
)
def test_format_is_recognised_from_content(tmp_path: Path, fixture: str, name: str, expected: str):
    path = copy(tmp_path, fixture, name)
    assert detect_format(path) == expected
    assert len(load_topology([path])) > 0


def test_exposition_without_headers_is_recognised(tmp_path: Path):
    path = tmp_path / "dump.txt"
    path.write_text(
        'kube_pod_info{namespace="a",pod="p",node="n1",pod_ip="10.1.1.1",host_network="false"} 1\n'
    )
    topology = load_topology([path])
    assert dict(topology.dependencies("pod/default/a/p")) == {
        "node/default/n1": False,
        "dns/default/cluster-dns": False,
    }


def test_files_are_merged():
    topology = load_topology(
        [FIXTURES / "small-cluster.prom", FIXTURES / "outside.yaml", FIXTURES / "edge.json"]
    )
    checkout = "service/default/shop/checkout"
    assert dict(topology.dependencies(checkout)) == {
        "pod/default/shop/checkout-6d8f7b9c5d-x2x9q": True,
        "pod/default/shop/checkout-6d8f7b9c5d-p7r2s": True,
        "pod/default/shop/checkout-6d8f7b9c5d-zz9kq": True,
        "deployment/default/shop/checkout": False,
        "external/default/orders-db": False,
        "external/default/payments-api": False,
    }
    # Indexes of every file survive the merge.
    assert topology.node_by_ip("default", "10.0.1.21") == "node/default/worker-1"
    assert topology.node_by_ip("default", "10.0.9.5") == "node/default/bastion-1"
    assert topology.pod_by_ip("edge", "10.50.1.4") == "pod/edge/cdn/cache-0"
    assert "apiserver/edge/kube-apiserver" in topology
    assert topology.summary()["pod"] == 23 + 2


def test_no_files_is_an_empty_topology():
    assert len(load_topology([])) == 0


def test_missing_file(tmp_path: Path):
    missing = tmp_path / "nope.prom"
    with pytest.raises(InputError) as raised:
        load_topology([FIXTURES / "outside.yaml", missing])
    assert str(raised.value) == f"cannot read {missing}: No such file or directory"


def test_directory_is_not_a_file(tmp_path: Path):
    with pytest.raises(InputError) as raised:
        load_topology([tmp_path])
    assert str(raised.value) == f"cannot read {tmp_path}: Is a directory"


@pytest.mark.parametrize(
    "content",
    [
        "",
        "# only a comment\n",
        "hello world\n",
        "nodes:\n  - {name: n1}\n",
        '{"nodes": []}\n',
        "kind: Deployment\napiVersion: apps/v1\n",
        "<html><body>502 Bad Gateway</body></html>\n",
    ],
)
def test_unknown_format(tmp_path: Path, content: str):
    path = tmp_path / "cluster.yaml"
    path.write_text(content)
    with pytest.raises(InputError) as raised:
        load_topology([path])
    assert (
        str(raised.value) == f"{path}: not a kube-state-metrics exposition nor an alert-router topology file"
    )


def test_topology_file_with_a_syntax_error_reports_it(tmp_path: Path):
    path = tmp_path / "t.yaml"
    path.write_text("kind: alert-router/topology\nnodes:\n  - {name: n1\n")
    with pytest.raises(InputError, match=rf"^{path}:\d+: invalid YAML: "):
        load_topology([path])


def test_malformed_exposition_reports_file_and_line(tmp_path: Path):
    path = tmp_path / "cluster.prom"
    path.write_text('# HELP kube_node_info x\n# TYPE kube_node_info gauge\nkube_node_info{node="n1"} yes\n')
    with pytest.raises(InputError) as raised:
        load_topology([path])
    assert str(raised.value) == f"{path}:3: invalid sample value 'yes'"


def test_large_topology_file_is_read_whole(tmp_path: Path):
    """The format sniffer reads the first 64 KiB; a longer topology file must still load whole."""
    pods = "".join(f"  - {{namespace: shop, name: web-{i:05d}, node: n{i % 7}}}\n" for i in range(3000))
    path = tmp_path / "big.yaml"
    path.write_text("# generated\nkind: alert-router/topology\npods:\n" + pods)
    assert path.stat().st_size > 64 * 1024
    topology = load_topology([path])
    assert topology.summary()["pod"] == 3000
    assert "node/default/n3" in dict(topology.dependencies("pod/default/shop/web-02999"))  # 2999 % 7


def test_marker_late_in_a_generated_file(tmp_path: Path):
    """yaml.safe_dump and json.dumps(sort_keys=True) put `kind` after a long `entities` list."""
    entities = [{"name": f"external/default/db-{i:04d}", "attrs": {"padding": "x" * 40}} for i in range(1500)]
    document = {"kind": "alert-router/topology", "entities": entities}
    for name, text in (
        ("generated.yaml", yaml.safe_dump(document)),
        ("generated.json", json.dumps(document, sort_keys=True, indent=1)),
    ):
        path = tmp_path / name
        path.write_text(text)
        assert text.index("alert-router/topology") > 64 * 1024
        assert detect_format(path) == "topology"
        assert load_topology([path]).summary() == {"external": 1500, "edges": 0}


def test_compressed_dump_is_reported_as_unreadable(tmp_path: Path):
    path = tmp_path / "cluster.prom.gz"
    path.write_bytes(gzip.compress((FIXTURES / "small-cluster.prom").read_bytes()))
    with pytest.raises(InputError) as raised:
        load_topology([path])
    assert str(raised.value) == f"cannot read {path}: not UTF-8 text"
