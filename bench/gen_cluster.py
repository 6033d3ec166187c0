"""Synthetic kube-state-metrics exposition for a cluster of any size (router/sim/gencluster.py).

python bench/gen_cluster.py --nodes 5000 --pods-per-node 30 --zones 3 -o cluster.prom
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from router.sim.gencluster import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
