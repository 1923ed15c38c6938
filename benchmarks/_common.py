"""Timing and reporting helpers shared by the benchmark scripts (run on demand, never by the test suite).

Every figure is the best of many short runs: the minimum is the run least disturbed by the rest of the machine.
Figures that are compared with each other are measured interleaved (one run of each, round after round), so a
neighbour that loads the machine for a while slows all of them alike instead of skewing their ratio.
"""

from __future__ import annotations

import gc
import time
import timeit
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["best_per_call", "best_per_item", "print_table", "ratio"]

#: Seconds one timed run should last: long enough to swamp the timer's resolution, short enough that many runs
#: fit between the scheduler's interruptions.
RUN_SECONDS = 0.02


def best_per_call(statements: Mapping[str, str], namespace: Mapping[str, Any], *, rounds: int = 25) -> dict[str, float]:
    """Seconds per execution of each statement (name -> source): the best of ``rounds`` interleaved runs.

    Each statement is compiled into timeit's own loop, so a figure carries no extra call of ours, and timeit turns
    the garbage collector off while it runs.
    """
    timers = {name: timeit.Timer(stmt, globals=dict(namespace), timer=time.perf_counter)
              for name, stmt in statements.items()}
    numbers = {}
    for name, timer in timers.items():
        number, elapsed = timer.autorange()
        numbers[name] = max(1, int(number * RUN_SECONDS / max(elapsed, 1e-9)))
    best = dict.fromkeys(timers, float("inf"))
    for _ in range(rounds):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(numbers[name]) / numbers[name])
    return best


def best_per_item(runs: Mapping[str, Callable[[], int]], *, rounds: int = 25) -> dict[str, float]:
    """Seconds per item for each batch (name -> a function that processes a batch and returns its size): the best
    of ``rounds`` interleaved runs, with the garbage collector off."""
    best = dict.fromkeys(runs, float("inf"))
    enabled = gc.isenabled()
    gc.disable()
    try:
        for run in runs.values():
            run()  # warm up: memos, regex caches, branch predictors
        for _ in range(rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                items = run()
                best[name] = min(best[name], (time.perf_counter() - start) / items)
    finally:
        if enabled:
            gc.enable()
    return best


def ratio(value: float, baseline: float | None) -> str:
    """``value / baseline`` as ``0.12x``, or ``-`` when there is no baseline (not installed)."""
    if baseline is None or baseline <= 0:
        return "-"
    return f"{value / baseline:.2f}x"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a plain-text table with left-aligned columns sized to their widest cell."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    print("  ".join(cell.ljust(width) for cell, width in zip(headers, widths, strict=True)).rstrip())
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
