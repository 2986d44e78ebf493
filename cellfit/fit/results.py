"""The result of fitting one cell: one typed, frozen record, written as ``result.json``.

:class:`FitResult` is what :func:`cellfit.fit.fit_recordings` returns for each cell
(``CellFit.result``), what ``python -m cellfit.fit`` and ``cellfit.batch`` write, and
what :func:`cellfit.fit.read_result`, the batch summary and the notebooks read back.
Every field, its unit and its meaning are listed in ``RESULTS.md`` (a test checks that
the table and the class agree). ``to_dict``/``from_dict`` round-trip through plain
JSON data (no code, no pickles), in the spirit of AllenSDK's ``GlifNeuron.to_dict``.

Two constructors say which kind of record it is: :meth:`FitResult.ok` (a fitted and
scored cell) and :meth:`FitResult.failed` (a cell that could not be fitted: only its
identity, the run settings and the error). ``schema_version`` is written with every
record; :meth:`FitResult.from_dict` reads older records (missing fields take their
defaults) and keeps fields it does not know in ``extra``, so nothing is lost when a
newer file is read by an older cellfit.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
from typing import Any, Mapping, Optional

import numpy as np

__all__ = ["FitResult", "LossStage", "PhysicalParameters", "SCHEMA_VERSION", "RESULT_FILE", "SUMMARY_COLUMNS",
           "read_result", "jsonable"]

#: version of the result.json layout (1: the untyped dict of cellfit 0.1 without this key)
SCHEMA_VERSION = 2
RESULT_FILE = "result.json"


def jsonable(obj):
    """Plain JSON data: numpy scalars and arrays to Python numbers and lists, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    return obj


@dataclasses.dataclass(frozen=True)
class LossStage:
    """One stage of the coarse-to-fine training loss (van Rossum distance at one time constant).

    Losses of different stages are not comparable (a larger time constant gives larger
    distances for the same spike trains): compare epochs within a stage only.
    """

    van_rossum_tau_ms: float
    first_epoch: int
    """First epoch of the stage (1-based, inclusive)."""
    last_epoch: int
    """Last epoch of the stage (inclusive)."""
    best_loss: float
    """Lowest loss of the stage."""
    outcome: str
    """``"plateau: next stage"``, ``"converged"`` (final stage, no more progress after the
    learning-rate decays), ``"max epochs"`` or ``"failed"``."""


@dataclasses.dataclass(frozen=True)
class PhysicalParameters:
    """The fitted model in the cell's own units, from its normalisation.

    The model works in normalised units: voltage ``(v - v_rest) / (v_thresh - v_rest)``
    (rest 0, base threshold 1) and stimulus ``x = I / current_scale_pA``, with input
    current ``gain * x + bias``. With ``span = v_thresh - v_rest`` (mV):
    """

    tau_m_ms: float
    """Membrane time constant."""
    tau_adapt_ms: float
    """Decay time constant of the threshold adaptation."""
    input_resistance_MOhm: float
    """``gain * span / current_scale_pA`` (mV/pA = GOhm, times 1000): steady-state depolarisation per injected current."""
    v_rest_mV: float
    """Model potential with no injected current: ``v_rest + bias * span``."""
    v_thresh_mV: float
    """Base threshold (no adaptation): the cell's ``v_thresh``."""
    v_reset_mV: float
    """Potential after a spike: ``v_rest + v_reset * span`` (the ALIF model resets to 0: the cell's rest)."""
    adapt_mV_per_spike: float
    """Threshold rise per spike, ``adapt_scale * span``, decaying with ``tau_adapt_ms``."""
    bias_pA: float
    """The bias as an equivalent injected current, ``bias * current_scale_pA / gain``."""
    asc_pA: tuple = ()
    """Spike-triggered currents: the current each adds right after a spike, ``asc_amp_j * current_scale_pA /
    gain`` (negative: hyperpolarising, an adaptation current; positive: depolarising)."""

    @classmethod
    def from_fit(cls, params: Mapping[str, float], v_rest_mV: float, v_thresh_mV: float,
                 current_scale_pA: float) -> "PhysicalParameters":
        span = v_thresh_mV - v_rest_mV
        gain, bias = params["gain"], params["bias"]
        per_pA = current_scale_pA / gain if gain else float("nan")
        amps = [params[k] for k in sorted(params) if k.startswith("asc_amp_")]
        return cls(
            tau_m_ms=params["tau_m_ms"], tau_adapt_ms=params["tau_adapt_ms"],
            input_resistance_MOhm=1000.0 * gain * span / current_scale_pA,
            v_rest_mV=v_rest_mV + bias * span, v_thresh_mV=v_thresh_mV,
            v_reset_mV=v_rest_mV + params.get("v_reset", 0.0) * span,
            adapt_mV_per_spike=params["adapt_scale"] * span,
            bias_pA=bias * per_pA, asc_pA=tuple(a * per_pA for a in amps),
        )


def _opt_float(v) -> Optional[float]:
    return None if v is None else float(v)


@dataclasses.dataclass(frozen=True)
class FitResult:
    """One cell's fit: identity, settings, scores, parameters and training record.

    Numbers that a failed cell does not have are ``None``. Units are in the field names
    (``_ms``, ``_mV``, ``_pA``, ``_hz``, ``_MOhm``); ``gain``, ``bias`` and
    ``adapt_scale`` are in normalised (threshold) units. Full table: ``RESULTS.md``.
    """

    # identity
    specimen_id: int
    status: str
    """``"ok"`` or ``"failed"``."""
    error: str = ""
    specimen_name: str = ""
    cell_class: str = "unknown"
    transgenic_line: str = ""
    layer: str = ""
    # settings
    dt_ms: Optional[float] = None
    arp_ms: Optional[float] = None
    engine: str = ""
    device: str = ""
    seed: Optional[int] = None
    window_s: Optional[float] = None
    config: dict = dataclasses.field(default_factory=dict)
    """:meth:`cellfit.fit.FitConfig.to_dict` of the fit."""
    cellfit_version: str = ""
    torch_version: str = ""
    block_kernel: str = ""
    # training
    epochs: Optional[int] = None
    stop_reason: str = ""
    fit_seconds: Optional[float] = None
    batch_seconds: Optional[float] = None
    batch_cells: Optional[int] = None
    train_loss: Optional[float] = None
    """Best training loss of the final loss stage (van Rossum distance at ``config.van_rossum_tau_ms``)."""
    best_epoch: Optional[int] = None
    """The epoch whose parameters were kept (the best loss of the last stage reached)."""
    loss_history: tuple = ()
    loss_stage: tuple = ()
    """Stage index (into ``loss_stages``) of every epoch of ``loss_history``."""
    loss_stages: tuple = ()
    """:class:`LossStage` per stage, in order."""
    param_history: dict = dataclasses.field(default_factory=dict)
    """Parameters at every epoch (``tau_m_ms``, ``tau_adapt_ms``, ``adapt_scale``, ``gain``, ``bias``)."""
    init: dict = dataclasses.field(default_factory=dict)
    # held-out scores
    etv: Optional[float] = None
    model_ev: Optional[float] = None
    reliability: Optional[float] = None
    etv_init: Optional[float] = None
    etv_per_epoch: tuple = ()
    gamma: Optional[float] = None
    gamma_model: Optional[float] = None
    gamma_reliability: Optional[float] = None
    repeat_ceiling: Optional[float] = None
    # the model and how it was chosen
    model: str = ""
    """The model variant of the kept fit (``alif``: reset to rest, threshold adaptation)."""
    selection: dict = dataclasses.field(default_factory=dict)
    """How the kept fit was chosen among the candidates: ``basis`` (``validation ETV`` or ``training loss``),
    ``chosen`` (index), ``validation_s``, and per candidate its start, training loss, epochs and validation ETV."""
    intervals: dict = dataclasses.field(default_factory=dict)
    """Per parameter ``[lo, hi]``: the central ``interval_level`` range over the bootstrap refits."""
    interval_level: Optional[float] = None
    undetermined: tuple = ()
    """Time constants the data do not determine (interval wider than ``config.undetermined_ratio``)."""
    at_bound: tuple = ()
    """Fitted parameters that ended at their learnable bound (``FitConfig.at_bound``): limits of the range,
    not estimates; often a sign that the model class does not describe the cell."""
    bootstrap_replicates: Optional[int] = None
    # fitted parameters
    tau_m_ms: Optional[float] = None
    tau_adapt_ms: Optional[float] = None
    adapt_scale: Optional[float] = None
    gain: Optional[float] = None
    bias: Optional[float] = None
    v_reset: Optional[float] = None
    """Reset potential (threshold units; variants with a reset, else None: the rest, 0)."""
    asc_amp: tuple = ()
    """Amplitudes of the spike-triggered currents (threshold units of input; variants with them)."""
    tau_asc_ms: tuple = ()
    """Time constants of the spike-triggered currents, ms."""
    sub_amp: Optional[float] = None
    """Subthreshold adaptation current (``alif_sub``, else None): the fraction of a sustained stimulus it cancels."""
    tau_sub_ms: Optional[float] = None
    """Its time constant, ms (``alif_sub``, else None)."""
    physical: Optional[PhysicalParameters] = None
    # data
    n_train_repeats: Optional[int] = None
    n_test_repeats: Optional[int] = None
    n_epochs_stimulus: Optional[int] = None
    test_rate_hz: Optional[float] = None
    predicted_rate_hz: Optional[float] = None
    current_scale_pA: Optional[float] = None
    v_rest_mV: Optional[float] = None
    v_thresh_mV: Optional[float] = None
    normalisation: dict = dataclasses.field(default_factory=dict)
    """Where ``v_rest_mV`` and ``v_thresh_mV`` came from (``ephys_features`` or an estimate)."""
    train_sweeps: tuple = ()
    test_sweeps: tuple = ()
    schema_version: int = SCHEMA_VERSION
    extra: dict = dataclasses.field(default_factory=dict)
    """Fields of a newer schema that this version does not know (kept and written back)."""

    def __post_init__(self):
        for f in dataclasses.fields(self):  # sequences are stored as tuples (frozen, comparable)
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        if self.status not in ("ok", "failed"):
            raise ValueError(f"status must be 'ok' or 'failed', got {self.status!r}")
        if self.status == "failed" and not self.error:
            raise ValueError("a failed result needs an error message")

    # -- constructors ------------------------------------------------------------------
    @classmethod
    def ok(cls, **fields) -> "FitResult":
        """A fitted, scored cell. Required: ``specimen_id``, ``etv``, the five parameters."""
        missing = [k for k in ("etv", "tau_m_ms", "tau_adapt_ms", "adapt_scale", "gain", "bias")
                   if fields.get(k) is None]
        if missing:
            raise ValueError(f"an ok result needs {', '.join(missing)}")
        return cls(status="ok", error="", **fields)

    @classmethod
    def failed(cls, specimen_id: int, error: str, **fields) -> "FitResult":
        """A cell that could not be fitted; ``fields`` are its identity and the run settings."""
        return cls(specimen_id=int(specimen_id), status="failed", error=" ".join(str(error).split()), **fields)

    @property
    def is_ok(self) -> bool:
        return self.status == "ok"

    def time_constant_text(self, name: str, fmt: str) -> str:
        """A fitted time constant as the summary line and ``fit.png`` show it, e.g.
        ``"20.8 [15.4-30.3] ms (undetermined)"`` or ``"199.7 [180.2-199.8] ms (at its bound)"``."""
        value = getattr(self, name)
        if value is None:
            return "n/a"
        lo_hi = self.intervals.get(name)
        span = f" [{lo_hi[0]:{fmt}}-{lo_hi[1]:{fmt}}]" if lo_hi else ""
        flags = [flag for flag, names in (("undetermined", self.undetermined), ("at its bound", self.at_bound))
                 if name in names]
        return f"{value:{fmt}}{span} ms" + "".join(f" ({flag})" for flag in flags)

    def other_bounds_text(self) -> str:
        """The parameters other than tau_m and tau_adapt that ended at their bound, as the summary line and
        ``fit.png`` append them (``", v_reset at bound"``; none: empty)."""
        others = [name for name in self.at_bound if name not in ("tau_m_ms", "tau_adapt_ms")]
        return f", {' '.join(others)} at bound" if others else ""

    # -- plain data ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-able dict: the fields, with ``physical`` and ``loss_stages`` as plain dicts."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
            elif f.name == "loss_stages":
                value = [dataclasses.asdict(s) for s in value]
            out[f.name] = value
        out.update(self.extra)
        return jsonable(out)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FitResult":
        """Read a ``result.json`` dict (any schema version; unknown keys go to ``extra``)."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        kw, extra = {}, {}
        for key, value in d.items():
            if key not in known or key == "extra":
                extra[key] = value
                continue
            if key == "physical" and value is not None:
                value = PhysicalParameters(**{k: (float("nan") if v is None else (tuple(v) if isinstance(v, list) else v))
                                              for k, v in value.items()})
            elif key == "loss_stages":
                value = tuple(LossStage(**s) for s in value or ())
            elif isinstance(value, list):
                value = tuple(value)
            kw[key] = value
        if "specimen_id" not in kw or "status" not in kw:
            raise ValueError("a result needs 'specimen_id' and 'status'")
        kw["specimen_id"] = int(kw["specimen_id"])
        kw.setdefault("schema_version", 1)
        if kw["status"] == "failed" and not kw.get("error"):
            kw["error"] = "failed (no error recorded)"
        return cls(**kw, extra=extra)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    def summary_row(self) -> dict:
        """The scalar columns of the batch summary (:data:`SUMMARY_COLUMNS`)."""
        d = self.to_dict()
        row = {k: d.get(k) for k in SUMMARY_COLUMNS}
        phys = d.get("physical") or {}
        row.update({f"phys_{k}": phys.get(k) for k in _PHYSICAL_COLUMNS})
        for name in _INTERVAL_COLUMNS:
            lo, hi = (d.get("intervals") or {}).get(name) or (None, None)
            row.update({f"{name}_lo": lo, f"{name}_hi": hi})
        row["undetermined"] = " ".join(self.undetermined)
        row["at_bound"] = " ".join(self.at_bound)
        return {k: row.get(k) for k in SUMMARY_COLUMNS}


_PHYSICAL_COLUMNS = ("input_resistance_MOhm", "v_rest_mV", "adapt_mV_per_spike")
_INTERVAL_COLUMNS = ("tau_m_ms", "tau_adapt_ms")

#: columns of a batch run's summary.csv, in order (see RESULTS.md)
SUMMARY_COLUMNS = [
    "specimen_id", "cell_class", "status", "error", "etv", "gamma", "repeat_ceiling", "model", "tau_m_ms",
    *(f"{n}_{e}" for n in _INTERVAL_COLUMNS[:1] for e in ("lo", "hi")), "tau_adapt_ms",
    *(f"{n}_{e}" for n in _INTERVAL_COLUMNS[1:] for e in ("lo", "hi")), "undetermined", "at_bound",
    "adapt_scale", "gain", "bias", *(f"phys_{k}" for k in _PHYSICAL_COLUMNS), "fit_seconds", "epochs",
    "stop_reason", "train_loss", "model_ev", "reliability", "etv_init", "gamma_model", "gamma_reliability",
    "test_rate_hz", "predicted_rate_hz", "n_train_repeats", "n_test_repeats", "transgenic_line", "layer",
    "specimen_name", "dt_ms", "arp_ms", "window_s", "seed", "device", "batch_cells", "batch_seconds",
    "cellfit_version",
]


def read_result(cell_dir: os.PathLike | str) -> FitResult:
    """The :class:`FitResult` in ``cell_dir/result.json``."""
    path = pathlib.Path(cell_dir) / RESULT_FILE
    return FitResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
