"""What a synthetic cell is: :class:`SyntheticCell` (model, parameters, class, protocol, metadata)."""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

from ..protocol import EPOCH_STARTS_S
from .models import PARAMS, AdExParams, ALIFParams, HHParams
from .stimulus import AMPLITUDES

__all__ = [
    "GENERATOR_VERSION",
    "FIRST_SYNTHETIC_ID",
    "FIRING_CLASSES",
    "EPHYS_FEATURE_COLUMNS",
    "SyntheticCell",
    "specimen_ids",
]

#: bumped whenever generated data or truth files would change for the same inputs
GENERATOR_VERSION = 2
#: specimen ids given to cells without an explicit id: FIRST_SYNTHETIC_ID + index
FIRST_SYNTHETIC_ID = 990_000_001
#: firing classes a cell may declare (regular spiking, fast spiking, intrinsically
#: bursting, low-threshold spiking, strongly adapting)
FIRING_CLASSES = ("RS", "FS", "IB", "LTS", "adapting")
#: the columns of the ephys_features.csv that the generator writes
EPHYS_FEATURE_COLUMNS = ["id", "specimen_id", "vrest", "threshold_v_long_square", "threshold_i_long_square",
                         "tau", "avg_isi", "f_i_curve_slope", "peak_v_long_square", "rheobase_sweep_number"]


@dataclasses.dataclass(frozen=True)
class SyntheticCell:
    """One synthetic cell: its model, parameters, class, metadata and protocol.

    ``model`` is ``"alif"``, ``"adex"`` or ``"hh"`` with :class:`ALIFParams`,
    :class:`AdExParams` or :class:`HHParams` (None: the defaults).
    ``cell_class`` is excitatory/inhibitory (dendrite type and transgenic line
    in ``cells.json``); ``firing_class`` one of :data:`FIRING_CLASSES` (None:
    RS for excitatory, FS for inhibitory cells; recorded in ``truth.json``).

    Stimulus amplitude: ``rheobase_pA`` sets the stimulus rheobase (the
    epochs' offsets are ``amplitudes`` x it) directly; None derives it as
    ``drive`` x the model's DC rheobase (``drive`` None: 1.2 for excitatory
    cells, 0.95 for inhibitory ones). ``target_rate_hz=(lo, hi)`` instead
    calibrates ``drive`` so that the mean rate over the three Noise 1 epochs
    lands at the geometric middle of the range (see
    :mod:`cellfit.data.synthetic.calibrate`); it excludes ``drive``,
    ``rheobase_pA`` and an explicit ALIF ``gain``.

    ``noise1_repeats`` / ``noise2_repeats`` set how many sweeps of each
    stimulus are written (0 leaves the stimulus out), so tests can build cells
    that fail the panel rule or have too few test repeats.
    ``missing_features`` names columns of ``ephys_features.csv`` written empty,
    as AllenSDK's CSV has them for real cells whose feature could not be
    measured (they load as NaN). The metadata fields go to ``cells.json``;
    ``transgenic_line`` None picks a class-typical line.
    """

    model: str = "alif"
    params: ALIFParams | AdExParams | HHParams | None = None
    cell_class: str = "excitatory"
    specimen_id: int | None = None
    noise1_repeats: int = 3
    noise2_repeats: int = 4
    rheobase_pA: float | None = None
    drive: float | None = None
    amplitudes: tuple = AMPLITUDES
    species: str = "Mus musculus"
    layer: str = "4"
    disease_state: str = ""
    transgenic_line: str | None = None
    ap_peak_mV: float = 30.0
    firing_class: str | None = None
    target_rate_hz: tuple | None = None
    missing_features: tuple = ()

    def __post_init__(self) -> None:
        if self.model not in PARAMS:
            raise ValueError(f"model must be one of {sorted(PARAMS)}, got {self.model!r}")
        if self.cell_class not in ("excitatory", "inhibitory"):
            raise ValueError(f"cell_class must be 'excitatory' or 'inhibitory', got {self.cell_class!r}")
        want = PARAMS[self.model]
        if self.params is None:
            object.__setattr__(self, "params", want())
        elif not isinstance(self.params, want):
            raise ValueError(f"model {self.model!r} needs {want.__name__} params, got {type(self.params).__name__}")
        if self.noise1_repeats < 0 or self.noise2_repeats < 0:
            raise ValueError("repeat counts must be >= 0")
        if len(self.amplitudes) != len(EPOCH_STARTS_S):
            raise ValueError(f"amplitudes needs {len(EPOCH_STARTS_S)} values, one per epoch")
        if self.firing_class is not None and self.firing_class not in FIRING_CLASSES:
            raise ValueError(f"firing_class must be one of {FIRING_CLASSES} or None, got {self.firing_class!r}")
        if self.target_rate_hz is not None:
            self._check_target()
        if isinstance(self.missing_features, str):
            raise ValueError("missing_features must be a tuple of column names, e.g. ('threshold_v_long_square',)")
        object.__setattr__(self, "missing_features", tuple(self.missing_features))
        bad = [c for c in self.missing_features if c not in EPHYS_FEATURE_COLUMNS[2:]]
        if bad:
            raise ValueError(f"missing_features {bad} are not ephys feature columns; use some of "
                             f"{EPHYS_FEATURE_COLUMNS[2:]}")

    def _check_target(self) -> None:
        try:
            lo, hi = (float(x) for x in self.target_rate_hz)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"target_rate_hz must be (low, high) in Hz, got {self.target_rate_hz!r}") from exc
        if not (0 < lo < hi and math.isfinite(hi)):
            raise ValueError(f"target_rate_hz needs 0 < low < high, got {self.target_rate_hz!r}")
        object.__setattr__(self, "target_rate_hz", (lo, hi))
        if self.drive is not None or self.rheobase_pA is not None:
            raise ValueError("target_rate_hz calibrates the drive: leave drive and rheobase_pA as None")
        if isinstance(self.params, ALIFParams) and self.params.gain is not None:
            raise ValueError("target_rate_hz calibrates the drive: leave ALIFParams.gain as None")

    @property
    def effective_drive(self) -> float:
        if self.drive is not None:
            return float(self.drive)
        return 1.2 if self.cell_class == "excitatory" else 0.95

    @property
    def firing_class_name(self) -> str:
        """``firing_class``, or its default (RS for excitatory, FS for inhibitory cells)."""
        if self.firing_class is not None:
            return self.firing_class
        return "RS" if self.cell_class == "excitatory" else "FS"

    @property
    def refractory_ms(self) -> float:
        """Refractory period of the integrate-and-fire models (the pasted spike's length); 0 for ``"hh"``."""
        p = self.params
        if isinstance(p, ALIFParams):
            return p.arp_ms
        return p.t_ref_ms if isinstance(p, AdExParams) else 0.0


def specimen_ids(cells: Sequence[SyntheticCell]) -> list[int]:
    """Specimen id of each cell (``FIRST_SYNTHETIC_ID + index`` when not given); ValueError on duplicates."""
    ids = [int(c.specimen_id) if c.specimen_id is not None else FIRST_SYNTHETIC_ID + i for i, c in enumerate(cells)]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate specimen ids in cells: {ids}")
    return ids
