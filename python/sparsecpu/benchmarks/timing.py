"""Interleaved, repeated timing: every variant is sampled in each round, so
noise from other jobs on a shared machine hits all of them alike."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List


@dataclass
class Timing:
    samples: List[float]  # seconds per call, one per round

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """(max - min) / median over the rounds."""
        return (max(self.samples) - min(self.samples)) / self.median if self.median > 0 else 0.0


def _calls_for(fn: Callable[[], object], min_seconds: float) -> int:
    fn()  # warm caches, allocators and the thread pool
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or calls >= 1 << 20:
            return calls
        calls = max(calls * 2, int(calls * min_seconds / max(elapsed, 1e-9) * 1.2))


def time_interleaved(variants: Dict[str, Callable[[], object]], rounds: int, min_seconds: float) -> Dict[str, Timing]:
    calls = {name: _calls_for(fn, min_seconds) for name, fn in variants.items()}
    samples: Dict[str, List[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            n = calls[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n)
    return {name: Timing(s) for name, s in samples.items()}


def time_baseline_apart(ours: Dict[str, Callable[[], object]], numpy_baselines: Dict[str, Callable[[], object]],
                        threads: int, rounds: int, min_seconds: float) -> Dict[str, Timing]:
    """Times our variants and numpy baselines, numpy's BLAS limited to `threads`.

    With one thread everything is interleaved. With more, OpenBLAS's workers
    keep spinning on the cores for a while after each call and would slow
    whatever runs next, so numpy is timed after all of ours.
    """
    from .environment import numpy_threads

    if threads == 1:
        with numpy_threads(1):
            return time_interleaved({**numpy_baselines, **ours}, rounds, min_seconds)
    timings = time_interleaved(ours, rounds, min_seconds)
    with numpy_threads(threads):
        timings.update(time_interleaved(numpy_baselines, rounds, min_seconds))
    return timings
