"""Run sessionward's fuzz properties over many inputs: a million by default.

The properties are the test suite's (``tests/fuzz/properties.py``, a few hundred inputs
each there); here every target runs many more, in chunks of fresh random seeds, and a
failure is counted and grouped instead of stopping the run::

    .venv/bin/python scripts/fuzz_campaign.py                  # every target, ~10^6 inputs
    .venv/bin/python scripts/fuzz_campaign.py --scale 0.01     # a quick pass
    .venv/bin/python scripts/fuzz_campaign.py --targets sql_rows,redis_decode --examples 50000
    .venv/bin/python scripts/fuzz_campaign.py --jobs 2 --seed 7 --json fuzz.json

Per target it prints the inputs run, the uncaught exceptions and the property
violations (both must be 0) and the time taken; then, for each kind of failure, how
often it came and the smallest input that showed it. Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The properties live with the tests (package ``fuzz`` under tests/, as pytest imports
# them). sessionward itself comes from the environment (``pip install -e .``, which
# ./run does), else from this checkout's src/; PYTHONPATH can point at another copy.
sys.path.insert(0, str(ROOT / "tests"))
sys.path.append(str(ROOT / "src"))

from fuzz.properties import TARGETS, Tally, run_target  # noqa: E402

CHUNK = 10_000
"""Inputs per Hypothesis run: each chunk has its own seed, and memory stays flat."""


def _chunk(name: str, examples: int, chunk_seed: int) -> Tally:
    # The stores log each corrupt entry they skip: millions of lines, none of them news.
    logging.getLogger("sessionward").setLevel(logging.CRITICAL)
    tally = Tally()
    run_target(TARGETS[name], max_examples=examples, random_seed=chunk_seed, tally=tally)
    return tally


def _plan(counts: dict[str, int], chunk: int, base_seed: int) -> list[tuple[str, int, int]]:
    jobs = []
    for name, total in counts.items():
        for index, start in enumerate(range(0, total, chunk)):
            jobs.append((name, min(chunk, total - start), base_seed * 100_003 + index * 7919 + len(name)))
    return jobs


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", help=f"comma-separated, from: {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--examples", type=int, help="inputs per target (default: each target's own count)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the default counts (default 1)")
    parser.add_argument("--seed", type=int, help="base seed, to replay a campaign (default: random, printed)")
    parser.add_argument("--jobs", type=int, default=1, help="processes running chunks side by side (default 1)")
    parser.add_argument("--chunk", type=int, default=CHUNK, help=f"inputs per Hypothesis run (default {CHUNK})")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--list", action="store_true", help="list the targets and their default counts")
    options = parser.parse_args()
    names = options.targets.split(",") if options.targets else list(TARGETS)
    unknown = [name for name in names if name not in TARGETS]
    if unknown:
        parser.error(f"--targets: unknown {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    if options.examples is not None and options.examples < 1:
        parser.error("--examples: must be a positive number of inputs")
    if options.scale <= 0 or options.jobs < 1 or options.chunk < 1:
        parser.error("--scale, --jobs and --chunk must be positive")
    options.names = names
    return options


def main() -> int:
    """Run the campaign; return the exit status."""
    options = _arguments()
    if options.list:
        for target in TARGETS.values():
            print(f"{target.name:16} {target.campaign_examples:>9,}  {target.what}")
        print(f"{'total':16} {sum(t.campaign_examples for t in TARGETS.values()):>9,}")
        return 0
    counts = {
        name: options.examples or max(1, round(TARGETS[name].campaign_examples * options.scale))
        for name in options.names
    }
    base_seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**31)
    print(f"fuzz campaign: {sum(counts.values()):,} inputs over {len(counts)} targets, seed {base_seed}, "
          f"{options.jobs} job(s), pid {os.getpid()}", flush=True)  # fmt: skip
    tallies = {name: Tally() for name in counts}
    started = time.perf_counter()
    plan = _plan(counts, options.chunk, base_seed)

    def done(name: str, tally: Tally) -> None:
        tallies[name].merge(tally)
        total = tallies[name]
        print(f"  {name}: {total.inputs:,}/{counts[name]:,} inputs, {total.exceptions + total.violations:,} failures, "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)  # fmt: skip

    if options.jobs == 1:
        for name, examples, chunk_seed in plan:
            done(name, _chunk(name, examples, chunk_seed))
    else:
        with ProcessPoolExecutor(max_workers=options.jobs) as pool:
            futures = {pool.submit(_chunk, name, examples, chunk_seed): name for name, examples, chunk_seed in plan}
            for future in as_completed(futures):
                done(futures[future], future.result())
    elapsed = time.perf_counter() - started
    _report(tallies, elapsed)
    if options.json is not None:
        results = {name: asdict(tally) for name, tally in tallies.items()}
        options.json.write_text(json.dumps({"seed": base_seed, "seconds": elapsed, "targets": results}, indent=2))
    return 1 if any(tally.exceptions or tally.violations for tally in tallies.values()) else 0


def _report(tallies: dict[str, Tally], elapsed: float) -> None:
    print(f"\n{'target':16} {'inputs':>10} {'rejected':>9} {'exceptions':>11} {'violations':>11} {'time':>9}")
    for name, tally in tallies.items():
        print(f"{name:16} {tally.inputs:>10,} {tally.rejected:>9,} {tally.exceptions:>11,} "
              f"{tally.violations:>11,} {tally.seconds:>8.1f}s")  # fmt: skip
    total = Tally()
    for tally in tallies.values():
        total.merge(tally)
    print(f"{'total':16} {total.inputs:>10,} {total.rejected:>9,} {total.exceptions:>11,} "
          f"{total.violations:>11,} {elapsed:>8.1f}s wall")  # fmt: skip
    for name, tally in tallies.items():
        for kind, failure in sorted(tally.failures.items(), key=lambda item: -item[1].count):
            print(f"\n[{name}] {failure.count:,} x {kind}\n  smallest input: {failure.input[:600]}\n  {failure.error}")


if __name__ == "__main__":
    sys.exit(main())
