"""Cell panels: the paper's selection rule and explicit lists of specimen ids.

``paper146`` is the rule of the reference implementation (paper section 4.3):
mouse cells (species "Mus musculus") of cortical layer "4" with an empty
disease_state and a row in ``ephys_features.csv``, that have at least one
"Noise 1" sweep and exactly 4 repeats of "Noise 2". The paper reports 146
such cells in the Allen Cell Types Database; that count has not been checked
offline (see data/README.md).
"""

from __future__ import annotations

import logging
from typing import Iterable, Sequence

from . import allen
from .allen import default_cache_dir
from .errors import CellDataError
from .load import as_specimen_id
from .protocol import TEST_STIMULUS, TRAIN_STIMULUS

__all__ = ["PANELS", "PAPER_TEST_REPEATS", "panel_reason", "select_panel"]

logger = logging.getLogger(__name__)

#: Noise 2 repeats a cell must have for the paper panel (the reference kept n_trials == 4)
PAPER_TEST_REPEATS = 4
PANELS = ("paper146",)


def panel_reason(record: dict, features: dict | None, sweep_table: Sequence[dict] | None) -> str:
    """Why a cell fails the ``paper146`` rule, or "" when it passes.

    ``record`` is a ``CellTypesCache.get_cells()`` record; ``sweep_table`` may
    be None to check only the metadata criteria.
    """
    species = allen.record_str(record, "species")
    if species.lower() != "mus musculus":
        return f"species {species!r} is not 'Mus musculus'"
    layer = allen.record_str(record, "structure_layer_name")
    if layer != "4":
        return f"layer {layer!r} is not '4'"
    disease = allen.record_str(record, "disease_state")
    if disease != "":
        return f"disease_state {disease!r} is not empty"
    if features is None:
        return "no row in ephys_features.csv"
    if sweep_table is None:
        return ""
    names = [s.get("stimulus_name") for s in sweep_table]
    if names.count(TRAIN_STIMULUS) == 0:
        return f"no '{TRAIN_STIMULUS}' sweep"
    n_test = names.count(TEST_STIMULUS)
    if n_test != PAPER_TEST_REPEATS:
        return f"{n_test} '{TEST_STIMULUS}' sweeps, not {PAPER_TEST_REPEATS}"
    return ""


def _explicit(ids: Iterable) -> list[int]:
    out: list[int] = []
    for x in ids:
        sid = as_specimen_id(x)
        if sid not in out:
            out.append(sid)
    if not out:
        raise CellDataError("the panel is an empty list of specimen ids; give at least one id or 'paper146'")
    return out


def select_panel(panel: str | Sequence[int], cache_dir=None) -> list[int]:
    """Specimen ids of a panel.

    ``panel`` is ``"paper146"`` (the rule above, applied to the cache's cell
    table, downloading sweep tables when online and AllenSDK is installed), an explicit list of ids, or
    a comma-separated string of ids (``"123,456"``). Explicit ids keep their
    order and are not checked against the cache (``load_cell`` does that).
    """
    if isinstance(panel, str):
        name = panel.strip()
        if name.lower() == "paper146":
            return _paper146(default_cache_dir(cache_dir))
        parts = [p for p in name.replace(" ", "").split(",") if p]
        if parts and all(p.isdigit() for p in parts):
            return _explicit(parts)
        raise CellDataError(f"unknown panel {panel!r}; use one of {list(PANELS)} or a comma-separated list of "
                            "specimen ids")
    return _explicit(panel)


def _paper146(cache) -> list[int]:
    store = allen.open_allen_cache(cache)
    cells = store.cells()
    features = store.features()
    chosen = []
    for sid in sorted(cells):
        if panel_reason(cells[sid], features.get(sid), None):
            continue
        table = store.sweep_table(sid)
        why = panel_reason(cells[sid], features.get(sid), table)
        if why:
            logger.debug("specimen %d left out of paper146: %s", sid, why)
            continue
        chosen.append(sid)
    logger.info("paper146 rule selected %d of %d cells in %s", len(chosen), len(cells), cache)
    return chosen
