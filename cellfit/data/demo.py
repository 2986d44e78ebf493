"""Data to try cellfit offline: the built-in demo cell and small synthetic panels.

``--specimen demo`` needs no download: on first use the cell is generated
(about a second) into ``<cache>/demo/``, where ``<cache>`` is the Allen cache
directory (``--cache-dir`` > ``$CELLFIT_CACHE`` > ``~/.cache/cellfit/allen``),
so by default ``~/.cache/cellfit/allen/demo``. It is a complete AllenSDK cache
with one cell, id :data:`DEMO_SPECIMEN_ID`; its truth is in
``specimen_<id>/truth.json`` (``cellfit.data.synthetic.load_truth``).

``--synthetic N`` (``cellfit.batch``, ``pipelines.ephys_sweep``) fits a panel of N
synthetic cells written by :func:`synthetic_panel` under the run's output folder.
Both are sampled at :data:`DEMO_SAMPLING_RATE_HZ`, so a DT must be a multiple of
0.05 ms for them (the command lines check it before fitting).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

from cellfit.io import make_dir_readable
from .cache import default_cache_dir
from .errors import CellDataError
from .load import as_specimen_id
from .synthetic import (GENERATOR_VERSION, ALIFParams, SyntheticCell, alif_panel, mismatch_panel,
                        write_synthetic_cache)

__all__ = ["DEMO_SPECIMEN_ID", "DEMO_SEED", "DEMO_CELL", "DEMO_SAMPLING_RATE_HZ", "SYNTHETIC_MODELS", "demo_cache_dir",
           "ensure_demo_cell", "resolve_specimen", "synthetic_panel"]

DEMO_SPECIMEN_ID = 990_000_000
DEMO_SEED = 2023
#: sampling rate of the demo cell and of :func:`synthetic_panel` (interval 0.05 ms)
DEMO_SAMPLING_RATE_HZ = 20_000.0
#: generators of :func:`synthetic_panel`: AdEx cells (outside the ALIF family), ALIF cells, or half of each
SYNTHETIC_MODELS = ("adex", "alif", "mixed")
#: tau_m 22 ms, tau_adapt 180 ms, ARP 2 ms: usable at dt 0.05-2 ms
DEMO_CELL = SyntheticCell(
    model="alif",
    params=ALIFParams(tau_m_ms=22.0, tau_adapt_ms=180.0, adapt_scale=0.15, arp_ms=2.0, bias=0.05,
                      noise_sd=0.05, v_rest_mV=-71.0, v_thresh_mV=-47.0),
    cell_class="excitatory",
    specimen_id=DEMO_SPECIMEN_ID,
)
_MARKER = "demo.json"


def demo_cache_dir(cache_dir=None) -> pathlib.Path:
    """``<cache>/demo``: the demo cell's own AllenSDK cache directory."""
    return default_cache_dir(cache_dir) / "demo"


def _is_current(d: pathlib.Path) -> bool:
    try:
        marker = json.loads((d / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (marker.get("generator_version") == GENERATOR_VERSION
            and marker.get("specimen_id") == DEMO_SPECIMEN_ID
            and (d / f"specimen_{DEMO_SPECIMEN_ID}" / "ephys.nwb").exists())


def ensure_demo_cell(cache_dir=None) -> tuple[pathlib.Path, int]:
    """Create the demo cell if missing (or from an older generator); return ``(its cache dir, its id)``.

    The cache is written to a temporary sibling directory and renamed into
    place, so concurrent first uses never see a half-written cell.
    """
    d = demo_cache_dir(cache_dir)
    if _is_current(d):
        return d, DEMO_SPECIMEN_ID
    try:
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=".demo-", dir=d.parent))
        try:
            write_synthetic_cache(tmp, [DEMO_CELL], seed=DEMO_SEED, sampling_rate_hz=DEMO_SAMPLING_RATE_HZ)
            (tmp / _MARKER).write_text(json.dumps({"generator_version": GENERATOR_VERSION,
                                                   "specimen_id": DEMO_SPECIMEN_ID}) + "\n")
            make_dir_readable(tmp)
            if d.exists() and not _is_current(d):
                old = pathlib.Path(tempfile.mkdtemp(prefix=".demo-old-", dir=d.parent))
                os.replace(d, old / "demo")
                shutil.rmtree(old, ignore_errors=True)
            try:
                os.rename(tmp, d)
            except OSError:
                if not _is_current(d):  # someone else's half state: not ours to explain away
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise CellDataError(f"cannot write the demo cell to {d} ({exc}); pass --cache-dir pointing at a "
                            "writable directory") from exc
    return d, DEMO_SPECIMEN_ID


def resolve_specimen(spec, cache_dir=None) -> tuple[pathlib.Path, int]:
    """Map a ``--specimen`` value to ``(cache_dir, specimen_id)``.

    ``"demo"`` -> :func:`ensure_demo_cell`; an integer or digit string -> the
    Allen cache directory and that id; anything else -> CellDataError.
    """
    if isinstance(spec, str) and spec.strip().lower() == "demo":
        return ensure_demo_cell(cache_dir)
    return default_cache_dir(cache_dir), as_specimen_id(spec)


def synthetic_panel(cache_dir, n: int, model: str = "adex", seed: int = 0) -> tuple[pathlib.Path, list[int]]:
    """Write ``n`` synthetic cells as an AllenSDK cache in ``cache_dir`` (unless already there).

    ``model``: ``"adex"`` (:func:`~cellfit.data.synthetic.mismatch_panel`, outside the ALIF
    family), ``"alif"`` (:func:`~cellfit.data.synthetic.alif_panel`, known ALIF truth) or
    ``"mixed"`` (half of each, ALIF first). Returns ``(cache_dir, specimen ids)``.
    """
    if model not in SYNTHETIC_MODELS:
        raise ValueError(f"unknown synthetic model {model!r}; choose one of {list(SYNTHETIC_MODELS)}")
    if int(n) < 1:
        raise ValueError(f"a synthetic panel needs at least 1 cell, got {n}")
    cache = pathlib.Path(cache_dir)
    if model == "adex":
        cells = mismatch_panel(n, seed=seed)
    elif model == "alif":
        cells = alif_panel(n, seed=seed)
    else:
        cells = alif_panel((n + 1) // 2, seed=seed) + mismatch_panel(n // 2, seed=seed)
    ids = [c.specimen_id for c in cells]
    if not all((cache / f"specimen_{i}" / "ephys.nwb").exists() for i in ids):
        write_synthetic_cache(cache, cells, seed=seed, sampling_rate_hz=DEMO_SAMPLING_RATE_HZ)
    return cache, ids
