"""cellfit: fit adaptive leaky integrate-and-fire (ALIF) neurons to electrophysiology.

Layers (see ARCHITECTURE.md):

- :mod:`cellfit.functional`: pure tensor maths (the ALIF engines, surrogates, filters);
- :mod:`cellfit.modules`: trainable layers (:class:`ALIF`, :class:`Integrator`);
- :mod:`cellfit.data`: Allen Cell Types access, preprocessing, synthetic cells, NWB;
- :mod:`cellfit.fit`: losses, metrics, the fitter, results and the ``cellfit.fit`` CLI.
"""

__version__ = "0.1.0"

from cellfit.device import resolve_device
from cellfit.functional import ALIFParameters, ALIFState, ALIFStepParameters, ALIFTrace, surrogate
from cellfit.modules import ALIF, Integrator

__all__ = [
    "__version__",
    "ALIF",
    "Integrator",
    "ALIFParameters",
    "ALIFState",
    "ALIFStepParameters",
    "ALIFTrace",
    "resolve_device",
    "surrogate",
]
