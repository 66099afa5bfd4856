"""Run the failover test's scenario (tests/test_cluster_failover.py) many times in a row and
print each run's takeover time and any broken promise, then takeover p50 and max.

    .venv/bin/python scripts/failover_stress.py            # 20 runs
    .venv/bin/python scripts/failover_stress.py --runs 5

Each run starts its own three ``ric run`` replicas on a fresh key prefix of one redis-server
(started here, on a free loopback port), six simulated nodes and a remote xApp, and SIGKILLs
the replica owning the most nodes. Exit status 1 when any run found a problem.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sdl.redis_server import RedisServer
from tests.test_cluster_failover import FailoverResult, run_failover


async def _runs(count: int, folder: Path, url: str) -> list[FailoverResult]:
    results = []
    for i in range(1, count + 1):
        result = await run_failover(folder / f"run{i}", url)
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(result.outcomes.items()))
        print(
            f"run {i:2d}: takeover {result.takeover_s:.2f} s, reports resumed "
            f"{result.resumed_s:.2f} s, {len(result.moved)} nodes moved, {result.sent} controls "
            f"({kinds}), {result.resent} answered from a node's memory"
            + (f"; PROBLEMS: {'; '.join(result.problems)}" if result.problems else ""),
            flush=True,
        )
        results.append(result)
    return results


def main() -> int:
    """Parse the arguments, run, print the summary; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="how many runs (default 20)")
    args = parser.parse_args()
    # The nodes log every refused setup and failover; the summary is what this prints.
    logging.basicConfig(level=logging.ERROR)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    with tempfile.TemporaryDirectory(prefix="failover-") as tmp:
        folder = Path(tmp)
        with RedisServer(folder / "redis") as server:
            results = asyncio.run(_runs(args.runs, folder, server.url))
    takeovers = sorted(r.takeover_s for r in results)
    resumed = sorted(r.resumed_s for r in results)
    failed = [i + 1 for i, r in enumerate(results) if r.problems]
    print(
        f"{len(results)} runs: takeover p50 {statistics.median(takeovers):.2f} s, max "
        f"{takeovers[-1]:.2f} s; reports resumed p50 {statistics.median(resumed):.2f} s, max "
        f"{resumed[-1]:.2f} s; failed runs: {failed or 'none'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
