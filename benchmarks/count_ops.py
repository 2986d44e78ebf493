"""Count the ATen operations of one single-cell fit step: a proxy for GPU kernel launches (a thin wrapper).

    python benchmarks/count_ops.py

What is counted: :mod:`cellfit.bench.stages` (:func:`fit_step_op_counts`, :func:`fitter_op_counts`).
"""

from __future__ import annotations

from cellfit.bench.stages import fit_step_op_counts, fitter_op_counts


def main() -> int:
    c = fit_step_op_counts()
    print(f"{c['case']}: {c['step']} ATen calls per training step, {c['block_loop']} of them in the block loop "
          f"({c['blocks']} blocks); without the loop: {c['step'] - c['block_loop']}")
    per_epoch = fitter_op_counts((1, 4))
    print(f"fit_recordings: {per_epoch[1]:.0f} ATen calls per epoch for 1 cell, {per_epoch[4]:.0f} for 4 "
          f"({(per_epoch[4] - per_epoch[1]) / 3:.0f} per further cell)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
