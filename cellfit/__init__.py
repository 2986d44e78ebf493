"""cellfit: fit adaptive leaky integrate-and-fire (ALIF) neurons to electrophysiology.

Layers (see ARCHITECTURE.md):

- :mod:`cellfit.functional`: pure tensor maths (the ALIF engines, surrogates, filters);
- :mod:`cellfit.modules`: trainable layers (:class:`ALIF`, :class:`Integrator`);
- :mod:`cellfit.data`: Allen Cell Types access, preprocessing, synthetic cells, NWB;
- :mod:`cellfit.fit`: losses, metrics, the fitter, results and the ``cellfit.fit`` CLI.

The names below are imported on first use (:mod:`cellfit._lazy`), so that the command
lines can answer a bad flag before torch is loaded; ``cellfit.ALIF`` and
``from cellfit import ALIF`` work as usual.
"""

from cellfit._lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__, _NAMES = lazy_exports(__name__, {
    "cellfit.modules": "ALIF Integrator",
    "cellfit.functional": "ALIFParameters ALIFState ALIFStepParameters ALIFTrace surrogate",
    "cellfit.device": "resolve_device",
})

__all__ = ["__version__", *_NAMES]
