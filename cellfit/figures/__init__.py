"""Figures of cellfit's results, built with matplotlib's object-oriented API.

Every plotting function here takes data (arrays, tables, result records) and returns (or
saves) a :class:`matplotlib.figure.Figure` made without pyplot: nothing changes
matplotlib's global state (no backend switch, no rcParams, no figure registry), so a
notebook shows each figure once and a script or a batch job saves it.

- :mod:`cellfit.figures.fit`: one fitted cell: held-out data vs model (``fit.png``) and
  the training record (``training.png``);
- :mod:`cellfit.figures.speed`: benchmark speedups (Figure 3 of the Block paper) and the
  comparison with the published numbers;
- :mod:`cellfit.figures.panel`: a fitted panel: time-constant distributions by class,
  line and layer, heterogeneity, recovery of known parameters, summary tables;
- :mod:`cellfit.figures.sweep`: ETV over DT and ARP (Figure 5c-f) and one cell's
  predictions per setting (Figure 5b);
- :mod:`cellfit.figures.common`: shared helpers (atomic PNG writes, grids of axes, log axes).
"""
