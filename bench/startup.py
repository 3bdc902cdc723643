"""Time from ``strata dev`` to ready: the first start (empty state) and a second one (restored state).

.venv/bin/python -m bench.startup [--runs 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import machine, median
from strata_local.harness import start_stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    first, second = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as workdir:
            stack = start_stack(Path(workdir))
            first.append(stack.ready_s)
            stack.stop()
            stack = start_stack(Path(workdir))
            second.append(stack.ready_s)
            stack.stop()
    print(f"machine: {machine()}")
    print(f"first start  (empty state):    median {median(first):.2f} s  runs {[round(x, 2) for x in first]}")
    print(f"second start (restored state): median {median(second):.2f} s  runs {[round(x, 2) for x in second]}")


if __name__ == "__main__":
    main()
