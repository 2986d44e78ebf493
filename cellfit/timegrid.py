"""Time-grid rules: DT, the refractory period and the recordings' sampling interval.

A simulation step DT (ms) must satisfy three rules at once:

1. ``DT_MIN_MS <= DT <= DT_MAX_MS`` (:mod:`cellfit.data.protocol`) for recordings;
2. DT is a whole number of the recording's sampling intervals (``k = DT / interval``
   samples are averaged into one bin, :func:`cellfit.data.preprocess.samples_per_bin`);
3. the absolute refractory period is a whole number of steps,
   :math:`T_R = \\mathrm{ARP} / \\mathrm{DT} \\in \\{1, 2, \\dots\\}` (:func:`arp_steps`).

:func:`suggest_dt_arp` proposes values near the user's that satisfy all three, so an
error message never suggests a value that the next check refuses. Pure Python (no
torch, no numpy): the command lines check their arguments with it before importing
the heavy modules.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

__all__ = ["REL_TOL", "SUGGEST_GRID_MS", "GridProblem", "whole_steps", "arp_steps", "grid_values", "suggest_dt_arp",
           "fmt_ms"]

#: relative tolerance of "a whole number of steps" (absorbs decimal rounding, e.g. 0.3 / 0.1)
REL_TOL = 1e-6
#: grid of suggested DTs when the data's sampling interval is unknown: 0.05 ms is a whole
#: number of samples at 20 kHz (the synthetic cells) and at 200 kHz (the Allen recordings)
SUGGEST_GRID_MS = 0.05


def fmt_ms(x: float) -> str:
    """A millisecond value as a user would type it (``1.95``, not ``1.9500000000000002``)."""
    return f"{round(float(x), 9):g}"


def whole_steps(length: float, step: float) -> Optional[int]:
    """``n >= 1`` if ``length`` is ``n`` whole ``step`` s (within :data:`REL_TOL`), else None."""
    if not (step > 0 and math.isfinite(step) and length > 0 and math.isfinite(length)):
        return None
    ratio = length / step
    n = round(ratio)
    if n < 1 or abs(ratio - n) > REL_TOL * max(1.0, ratio):
        return None
    return n


def _arp_multiples(arp_ms: float, dt_ms: float) -> list[float]:
    """The multiples of ``dt_ms`` just below and just above ``arp_ms`` (at least one step)."""
    lo = max(1, math.floor(arp_ms / dt_ms))
    return sorted({round(n * dt_ms, 9) for n in (lo, lo + 1)})


def arp_steps(arp_ms: float, dt_ms: float) -> int:
    """Number of time steps :math:`T_R` in an absolute refractory period.

    Raises ``ValueError`` unless ``arp_ms`` is a positive whole multiple of ``dt_ms``.
    """
    if not (dt_ms > 0 and math.isfinite(dt_ms)):
        raise ValueError(f"dt_ms must be a positive number, got {dt_ms!r}")
    if not (arp_ms > 0 and math.isfinite(arp_ms)):
        raise ValueError(f"arp_ms must be a positive number of milliseconds, got {arp_ms!r}")
    n = whole_steps(arp_ms, dt_ms)
    if n is None:
        options = " or ".join(fmt_ms(a) for a in _arp_multiples(arp_ms, dt_ms))
        raise ValueError(f"arp_ms={arp_ms} is not a whole number of dt_ms={dt_ms} steps; "
                         f"choose an ARP that is a multiple of DT (e.g. {options} ms)")
    return n


def grid_values(near: float, grid_ms: float, lo: float, hi: float, accept=None, n: int = 2) -> list[float]:
    """Up to ``n`` multiples of ``grid_ms`` in ``[lo, hi]`` closest to ``near`` (ascending), that ``accept``."""
    k_lo = max(1, math.ceil(lo / grid_ms - REL_TOL))
    k_hi = math.floor(hi / grid_ms + REL_TOL)
    values = [round(k * grid_ms, 9) for k in range(k_lo, k_hi + 1)]
    values = [v for v in values if accept is None or accept(v)]
    return sorted(sorted(values, key=lambda v: (abs(v - near), v))[:n])


class GridProblem(NamedTuple):
    """A broken time-grid rule and values near the user's that satisfy every rule."""

    problem: str  #: the first rule broken, naming the flag and value
    options: list  #: ``(dt_ms, arp_ms)`` pairs that satisfy every rule (``arp_ms`` None: no ARP given)
    fix: str  #: the options as flags, e.g. ``"try --dt 0.05 or --dt 0.1"``


def suggest_dt_arp(dt_ms: float, arp_ms: Optional[float], *, dt_range: tuple[float, float],
                   interval_ms: Optional[float] = None, data: str = "the data",
                   dt_flag: str = "--dt", arp_flag: str = "--arp") -> Optional[GridProblem]:
    """None if ``dt_ms`` (and ``arp_ms``, if given) satisfy the three rules, else a :class:`GridProblem`.

    The problem names the first rule broken (range, then sampling interval, then ARP).
    The options satisfy every rule: DTs on the data's sampling grid (``interval_ms``;
    :data:`SUGGEST_GRID_MS` when unknown) that divide the ARP, or, when the DT itself
    is on that grid and only the ARP is wrong, ARPs that are multiples of it and DTs of
    the same order (within a factor 3). ``data`` names the recording in the message; the
    flags are named ``dt_flag`` and ``arp_flag``.
    """
    lo, hi = dt_range
    grid = interval_ms if interval_ms else SUGGEST_GRID_MS
    if not math.isfinite(hi):  # an open range: suggest DTs of the same order
        hi = 4 * max(dt_ms, arp_ms or 0.0, lo, grid)

    def divides_arp(d: float) -> bool:
        return arp_ms is None or whole_steps(arp_ms, d) is not None

    def new_dts() -> list:
        dts = grid_values(dt_ms, grid, lo, hi, divides_arp)
        if dts:
            return [(d, arp_ms) for d in dts]
        (d,) = grid_values(dt_ms, grid, lo, hi, n=1)  # the ARP is shorter than any valid DT: move both
        return [(d, min(_arp_multiples(arp_ms, d), key=lambda a: abs(a - arp_ms)))]

    if not lo - 1e-12 <= dt_ms <= hi + 1e-12:
        problem = f"{dt_flag} {fmt_ms(dt_ms)} ms is outside the supported range {fmt_ms(lo)}-{fmt_ms(dt_range[1])} ms"
        options = new_dts()
    elif interval_ms and whole_steps(dt_ms, interval_ms) is None:
        problem = (f"{dt_flag} {fmt_ms(dt_ms)} ms is not a whole number of the sampling interval of {data} "
                   f"({fmt_ms(interval_ms)} ms)")
        options = new_dts()
    elif arp_ms is not None and whole_steps(arp_ms, dt_ms) is None:
        problem = (f"{arp_flag} {fmt_ms(arp_ms)} ms is not a whole number of {dt_flag} {fmt_ms(dt_ms)} ms steps "
                   "(the refractory period must be a multiple of DT)")
        options = []
        if whole_steps(dt_ms, grid) is not None:  # this DT suits every sampling grid: keep it, move the ARP
            options += [(dt_ms, a) for a in _arp_multiples(arp_ms, dt_ms)]
        options += [(d, arp_ms) for d in grid_values(dt_ms, grid, lo, hi,
                                                     lambda d: dt_ms / 3 <= d <= dt_ms * 3 and divides_arp(d))]
        options = options or new_dts()
    else:
        return None

    def flags(d: float, a: Optional[float]) -> str:
        parts = [] if d == dt_ms else [f"{dt_flag} {fmt_ms(d)}"]
        return " ".join(parts + ([] if a is None or a == arp_ms else [f"{arp_flag} {fmt_ms(a)}"]))

    return GridProblem(problem, options, "try " + " or ".join(flags(d, a) for d, a in options))
