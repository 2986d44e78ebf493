"""Stateless ALIF maths: tensors in, tensors out (no modules, no I/O)."""

from cellfit.functional.alif import (
    ENGINES,
    RECORDABLE,
    ALIFParameters,
    ALIFState,
    ALIFStepParameters,
    ALIFTrace,
    alif_blocks,
    alif_standard,
    arp_steps,
    leaky_integrator,
    simulate,
)
from cellfit.functional import surrogate

__all__ = [
    "ENGINES",
    "RECORDABLE",
    "ALIFParameters",
    "ALIFState",
    "ALIFStepParameters",
    "ALIFTrace",
    "alif_blocks",
    "alif_standard",
    "arp_steps",
    "leaky_integrator",
    "simulate",
    "surrogate",
]
