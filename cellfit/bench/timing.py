"""How the benchmarks time: wall clock around one call, interleaved repeats, and the CPU thread count.

- :func:`time_call`: seconds of one call, with the device synchronised before and after
  (:func:`cellfit.device.synchronize`: a CUDA synchronisation on a GPU, nothing on a CPU,
  where the call has finished when it returns).
- :func:`measure`: every system (engine or peer library) gets its warm-up runs, then the
  timed runs go round-robin over the systems (A, B, C, A, B, C, ...), so that they share
  the machine's load; a time budget and a per-run cap can stop a slow system early.
- :func:`summarise_times`: median and inter-quartile range.
- :func:`torch_threads`: run with a given number of torch CPU threads, restored after.
- :func:`device_name`, :func:`load_average`: what the result table records about the machine.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import time
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch

from cellfit.device import synchronize

__all__ = ["time_call", "measure", "summarise_times", "torch_threads", "device_name", "load_average"]


def time_call(fn: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of ``fn()``, synchronising the device before and after (CUDA only)."""
    synchronize(device)
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - t0


def summarise_times(times: Sequence[float]) -> tuple[float, float]:
    """(median, inter-quartile range) in seconds; NaN for no times, IQR NaN for a single time."""
    if len(times) == 0:
        return math.nan, math.nan
    arr = np.asarray(times, dtype=float)
    if len(arr) == 1:
        return float(arr[0]), math.nan
    q1, med, q3 = np.percentile(arr, [25, 50, 75])
    return float(med), float(q3 - q1)


def measure(
    runners: dict[str, Callable[[], object]],
    device: torch.device,
    what: str,
    *,
    repeats: int,
    warmup: int,
    time_budget_s: Optional[float] = None,
    max_run_s: Optional[float] = None,
    on_run: Optional[Callable[[], None]] = None,
) -> dict[str, tuple[list[float], str]]:
    """Warm up each system, then time round-robin; returns ``{system: (times in s, note)}``.

    Args:
        runners: one zero-argument callable per system (e.g. ``{"blocks": ..., "standard": ...}``).
        device: synchronised around each call (:func:`time_call`).
        what: name of the measurement in the notes (``"fwd"``, ``"fwd_bwd"``).
        repeats: timed runs per system, at most.
        warmup: untimed runs per system before timing (one is enough when a run exceeds
            ``time_budget_s``).
        time_budget_s: stop timing a system once its timed runs used this many seconds
            (at least one run is timed).
        max_run_s: skip a system whose warm-up run took longer (no times, a note), and stop
            one after a timed run that took longer.
        on_run: called after every run (warm-up or timed), e.g. to advance a progress bar.
    """
    times: dict[str, list[float]] = {e: [] for e in runners}
    notes: dict[str, str] = {e: "" for e in runners}
    active = list(runners)
    tick = on_run or (lambda: None)
    for engine, fn in runners.items():
        for _ in range(warmup):
            t = time_call(fn, device)
            tick()
            if max_run_s is not None and t > max_run_s:
                notes[engine] = f"{what} skipped: a warm-up run took {t:.1f} s > max_run_s {max_run_s:g} s"
                active.remove(engine)
                break
            if time_budget_s is not None and t > time_budget_s:
                break  # one warm-up run is enough for a run this slow
    for _ in range(repeats):
        for engine in list(active):
            t = time_call(runners[engine], device)
            tick()
            times[engine].append(t)
            if max_run_s is not None and t > max_run_s:
                active.remove(engine)
                notes[engine] = f"{what}: stopped after one run of {t:.1f} s > max_run_s {max_run_s:g} s"
            elif time_budget_s is not None and sum(times[engine]) >= time_budget_s:
                active.remove(engine)
                if len(times[engine]) < repeats:
                    notes[engine] = f"{what}: {len(times[engine])} of {repeats} repeats (time budget {time_budget_s:g} s)"
    return {e: (times[e], notes[e]) for e in runners}


@contextlib.contextmanager
def torch_threads(threads: Optional[int]) -> Iterator[int]:
    """Run the block with ``torch.set_num_threads(threads)`` (``None``: leave it), restored after.

    Yields the number of threads in use.
    """
    saved = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(saved)


def device_name(device: torch.device, threads: Optional[int] = None) -> str:
    """GPU name, or the CPU model and the number of torch threads (``threads``, default: torch's current)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass  # no /proc (not Linux): the platform's name above stands
    return f"{model} ({threads or torch.get_num_threads()} threads)"


def load_average() -> float:
    """The machine's 1-minute load average (NaN where the system does not report one)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
