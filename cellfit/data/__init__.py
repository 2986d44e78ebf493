"""Allen Cell Types data for cellfit: loading, preprocessing, panels, synthetic cells.

Only this package imports ``allensdk`` (lazily, at first use, and only where it is
installed): :func:`~cellfit.data.allen.open_allen_cache` reads a cache through AllenSDK
or, without it, with json/pandas/h5py (:mod:`~cellfit.data.allen_files`); spike times
come from AllenSDK's or ipfx's extractor (:mod:`~cellfit.data.spikes`).

>>> from cellfit.data import load_cell, resolve_specimen
>>> cache, sid = resolve_specimen("demo")            # offline demo cell
>>> rec = load_cell(sid, dt_ms=0.1, cache_dir=cache)
>>> rec.train.spikes.shape                           # (repeats, epochs, bins)
(3, 3, 10000)

Modules: :mod:`~cellfit.data.allen` (the cache entry point, AllenSDK boundary),
:mod:`~cellfit.data.allen_files` (a cache without AllenSDK), :mod:`~cellfit.data.spikes`
(spike detectors), :mod:`~cellfit.data.preprocess`
(epochs, spike detection, binning), :mod:`~cellfit.data.load` (``load_cell`` and the
processed-array cache), :mod:`~cellfit.data.panels`, :mod:`~cellfit.data.synthetic`
(generator), :mod:`~cellfit.data.demo`, :mod:`~cellfit.data.nwb2` (NWB 2 I/O, imported
on demand because pynwb is slow to import).
"""

from cellfit._lazy import lazy_exports

# imported on first use (see cellfit._lazy): `python -m cellfit.data` parses its
# arguments before torch is loaded
__getattr__, __dir__, _NAMES = lazy_exports(__name__, {
    "cellfit.data.allen": "default_cache_dir open_allen_cache",
    "cellfit.data.demo": "DEMO_SPECIMEN_ID ensure_demo_cell resolve_specimen",
    "cellfit.data.errors": "CellDataError",
    "cellfit.data.load": "load_cell",
    "cellfit.data.panels": "select_panel",
    "cellfit.data.types": "CellMeta CellRecording TraceSet",
})

__all__ = _NAMES
