"""Synthetic Allen-format cells with known ground truth.

:func:`write_synthetic_cache` writes a complete AllenSDK ``CellTypesCache``
directory for a list of :class:`SyntheticCell` (:mod:`.allen_format`): the
cells' sweeps in NWB 1, their metadata, ephys features and sweep tables, and
``specimen_<id>/truth.json`` with the true parameters and model spike times
(:func:`load_truth`, :mod:`.truth`). :func:`synthetic_recordings` gives the
same cells as in-memory recordings without files (:mod:`.recordings`).

Modules, one concern each:

- :mod:`.models`: the model families, ``"alif"`` (the fitted equations:
  parameter recovery), ``"adex"`` (adaptive exponential integrate-and-fire)
  and ``"hh"`` (minimal Hodgkin-Huxley cortical cells, Pospischil et al. 2008);
- :mod:`.stimulus`: the Allen Noise 1 / Noise 2 pink-noise stimulus;
- :mod:`.cells`: :class:`SyntheticCell` (model, parameters, class, protocol);
- :mod:`.engine`: model inputs, batched integration, DC rheobase;
- :mod:`.calibrate`: drive calibration to a requested Noise 1 firing rate;
- :mod:`.sweeps`: simulated rows to recorded sweeps (pasted action potentials
  for the integrate-and-fire models, recording noise, ADC quantisation);
- :mod:`.truth`, :mod:`.allen_format`, :mod:`.recordings`: outputs;
- :mod:`.panels`: ready-made panels (legacy ALIF/AdEx panels; the disjoint
  development and test panels).

All models have intrinsic white-noise input drawn per repeat, so repeats
differ like real ones; the stimulus is identical across repeats.
"""

from .allen_format import write_synthetic_cache
from .cells import FIRING_CLASSES, FIRST_SYNTHETIC_ID, GENERATOR_VERSION, SyntheticCell
from .models import POSPISCHIL, AdExParams, ALIFParams, HHParams, simulate_adex, simulate_alif, simulate_hh
from .panels import alif_panel, development_panel, mismatch_panel, test_panel
from .recordings import synthetic_recordings
from .stimulus import noise_stimulus
from .truth import load_truth

__all__ = [
    "GENERATOR_VERSION",
    "ALIFParams",
    "AdExParams",
    "HHParams",
    "POSPISCHIL",
    "FIRING_CLASSES",
    "SyntheticCell",
    "write_synthetic_cache",
    "synthetic_recordings",
    "alif_panel",
    "mismatch_panel",
    "development_panel",
    "test_panel",
    "load_truth",
    "noise_stimulus",
    "simulate_alif",
    "simulate_adex",
    "simulate_hh",
    "FIRST_SYNTHETIC_ID",
]
