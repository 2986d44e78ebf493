"""Batch fitting: many cells, chunks of K cells per Dask task, files as results, resumable.

>>> from cellfit.batch import run_batch
>>> from cellfit.fit import FitConfig
>>> df = run_batch("paper146", FitConfig(dt_ms=0.1), "runs/panel", scheduler="local", workers=2)
>>> df.groupby("cell_class").tau_m_ms.median()

How the work is spread: the cells still to fit are cut into chunks of
``cells_per_task``; each chunk is one Dask task, which loads its cells, fits them
together with one :func:`cellfit.fit.fit_recordings` call (K neurons of one batched
model) and writes every cell with :func:`cellfit.fit.write_cell_outputs` on the
worker. Tasks return only small dicts; the files are the results. Every task gets
the same ``seed``, and a cell's fit does not depend on which other cells share
its batch, so a cell's result does not depend on the chunking (for the ALIF model
exactly; the reset-potential variants up to float rounding, see cellfit.fit.fitter).

Resume: a cell whose ``result.json`` has ``status == "ok"`` and this run's
configuration is skipped; failed, missing and stale cells are fitted again.
``config.json`` must match (see :mod:`cellfit.batch.store`); ``force=True``
replaces it and refits every cell.

Failures stay per cell: unloadable data (:class:`cellfit.data.CellDataError`),
a NaN training loss, or an error raised by a batched fit (the chunk is then
refitted one cell at a time) end as ``status == "failed"`` with the error in
result.json. A task whose worker dies is rerun by Dask (up to
``distributed.scheduler.allowed-failures`` times); if it still fails, its
unfinished cells are resubmitted one per task, and whatever is still missing
gets a failed result.json naming the task error.

SLURM/PBS runs stop with :class:`cellfit.batch.cluster.ClusterError` (one line in the
scheduler's words) when ``sbatch``/``qsub`` is missing or refuses the job, when the worker
jobs fail before their Dask worker connects, or when no worker connects within
``ClusterOptions.start_timeout`` seconds; cells finished until then are kept, and the same
call resumes (:mod:`cellfit.batch.jobwatch`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import os
import pathlib
import signal
import threading
import time
from typing import Optional, Sequence

import pandas as pd
import torch
from distributed import as_completed
from tqdm.auto import tqdm

from cellfit.batch import store
from cellfit.batch.cluster import ClusterOptions, connect
from cellfit.data import CellDataError, default_cache_dir, load_cell, select_panel
from cellfit.data.preprocess import check_dt_window
from cellfit.data.protocol import EPOCH_LENGTH_S
from cellfit.device import resolve_device
from cellfit.fit import FitConfig, fit_recordings, write_cell_outputs, write_failed_result
from cellfit.batch.jobwatch import ClusterError, check_commands

__all__ = ["run_batch", "fit_chunk", "default_cells_per_task", "resolve_specimens"]

logger = logging.getLogger(__name__)

#: how often the client rewrites summary.csv while tasks finish, seconds
SUMMARY_EVERY_S = 10.0


def default_cells_per_task(device: str, n_cells: int, workers: Optional[int]) -> int:
    """Cells per task when not given: 16 on a GPU (a batch of 16 neurons costs about as much
    as one), 4 on the CPU (cost grows with K there; small chunks balance the load), and
    never so many that some workers get no task."""
    gpu = str(device).startswith("cuda")
    if str(device) == "auto":
        gpu = torch.cuda.is_available()
    k = min(16 if gpu else 4, max(1, int(n_cells)))
    if workers:
        k = min(k, max(1, math.ceil(n_cells / int(workers))))
    return max(1, k)


def resolve_specimens(specimens, cache_dir=None) -> tuple[list[int], Optional[str]]:
    """``(ids, panel name or None)`` from a panel name, a comma-separated string or a list of ids.

    Raises :class:`cellfit.data.CellDataError` for an unknown panel or an empty list.
    """
    if isinstance(specimens, numbers.Integral):
        specimens = [int(specimens)]
    ids = select_panel(specimens if isinstance(specimens, str) else list(specimens), cache_dir)
    panel = specimens.strip() if isinstance(specimens, str) and not specimens.strip()[:1].isdigit() else None
    return [int(i) for i in ids], panel


# --------------------------------------------------------------------------
# the task (runs on a worker)
# --------------------------------------------------------------------------
def _error_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def fit_chunk(specimens: Sequence[int], run: dict, run_dir: str, cache_dir: Optional[str],
              torch_threads: Optional[int] = None) -> list[dict]:
    """Fit one chunk of cells together and write each cell's files; the body of one Dask task.

    Args:
        specimens: ids of the chunk.
        run: :meth:`RunConfig.to_dict` of the run (plain data, cheap to ship).
        run_dir: run directory (shared file system).
        cache_dir: Allen cache directory (absolute path, resolved by the client).
        torch_threads: PyTorch threads for this worker (None: unchanged).

    Returns:
        One small dict per cell: ``specimen_id``, ``status`` (``ok``/``failed``/``skipped``),
        ``error`` and ``etv``.
    """
    if torch_threads:
        torch.set_num_threads(int(torch_threads))
    config = store.RunConfig(fit=run["fit"], window_s=run["window_s"], seed=run["seed"], device=run["device"],
                             specimens=tuple(run["specimens"]), figures=run.get("figures", True))
    fit_config = FitConfig.from_dict(config.fit)
    out: list[dict] = []
    recordings = []
    for sid in specimens:
        if store.cell_state(run_dir, sid, config) == "ok":  # a rerun of this task after a crash
            out.append(dict(specimen_id=int(sid), status="skipped", error="", etv=None))
            continue
        try:
            # the Noise 1 seconds after the window are the validation data that choose among candidate fits
            loaded = min(EPOCH_LENGTH_S, config.window_s + fit_config.validation_s)
            recordings.append(load_cell(sid, dt_ms=fit_config.dt_ms, window_s=loaded, cache_dir=cache_dir))
        except CellDataError as exc:
            out.append(_write_failed(run_dir, sid, _error_line(exc), config))
    if not recordings:
        return out
    try:
        fits = fit_recordings(recordings, fit_config, window_s=config.window_s, device=config.device, seed=config.seed,
                              progress=False)
    except (RuntimeError, ValueError, FloatingPointError) as exc:
        if len(recordings) == 1:
            return out + [_write_failed(run_dir, recordings[0].meta.specimen_id, _error_line(exc), config,
                                        cell_class=recordings[0].meta.cell_class)]
        logger.warning("batched fit of %d cells failed (%s); fitting them one at a time",
                       len(recordings), _error_line(exc))
        fits = []
        for rec in recordings:
            try:
                fits.extend(fit_recordings([rec], fit_config, window_s=config.window_s, device=config.device,
                                           seed=config.seed, progress=False))
            except (RuntimeError, ValueError, FloatingPointError) as exc1:
                out.append(_write_failed(run_dir, rec.meta.specimen_id, _error_line(exc1), config,
                                         cell_class=rec.meta.cell_class))
    for fit in fits:
        try:
            write_cell_outputs(fit, run_dir, figure=config.figures)
        except (OSError, RuntimeError, ValueError) as exc:
            out.append(_write_failed(run_dir, fit.result.specimen_id, f"writing outputs: {_error_line(exc)}",
                                     config, cell_class=fit.result.cell_class))
            continue
        r = fit.result
        out.append(dict(specimen_id=r.specimen_id, status=r.status, error=r.error, etv=r.etv))
    return out


def _write_failed(run_dir, sid, error: str, config: store.RunConfig, cell_class: str = "unknown") -> dict:
    result = store.failed_result(int(sid), error, config, cell_class=cell_class)
    write_failed_result(run_dir, result)
    return dict(specimen_id=int(sid), status="failed", error=result.error, etv=None)


# --------------------------------------------------------------------------
# the client
# --------------------------------------------------------------------------
def run_batch(
    specimens,
    config,
    run_dir: os.PathLike | str,
    *,
    cells_per_task: Optional[int] = None,
    scheduler="local",
    workers: Optional[int] = None,
    device: str = "auto",
    cache_dir=None,
    seed: int = 0,
    window_s: float = 1.0,
    force: bool = False,
    progress: bool = True,
    cluster_options: Optional[ClusterOptions] = None,
    figures: bool = True,
    retries: int = 1,
) -> pd.DataFrame:
    """Fit many cells with Dask and return the run's summary (also written to ``RUN_DIR/summary.csv``).

    Args:
        specimens: a panel name (``"paper146"``), a comma-separated string of ids, or a
            list of Allen specimen ids.
        config: the :class:`cellfit.fit.FitConfig` of every fit (DT, ARP, epochs, ...).
        run_dir: results directory: ``config.json``, ``summary.csv``, ``<id>/result.json`` ...
        cells_per_task: K, cells fitted together in one task (default:
            :func:`default_cells_per_task`).
        scheduler: ``"local"``, ``"slurm"``, ``"pbs"``, a scheduler address ``tcp://HOST:PORT``,
            or a :class:`distributed.Client` (used as is, left open).
        workers: local worker processes, or batch jobs for slurm/pbs (default: half the
            CPU cores locally, 1 job); ignored for a scheduler address.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``, resolved on each worker.
        cache_dir: Allen cache directory (default ``$CELLFIT_CACHE`` or ``~/.cache/cellfit/allen``),
            resolved here, so workers get an absolute path.
        seed: random seed, the same for every task.
        window_s: seconds used from each noise epoch (1 or 3).
        force: replace a different saved configuration and refit every cell.
        progress: show a progress bar over cells (done / failed / remaining, ETA).
        cluster_options: job options for slurm/pbs (:class:`ClusterOptions`).
        figures: write fit.png for every cell (about 1 s per cell on a CPU).
        retries: times Dask reruns a task that raised (worker deaths are retried separately).

    Returns:
        The summary DataFrame (:data:`cellfit.batch.store.SUMMARY_COLUMNS`), one row per cell.

    Raises:
        cellfit.data.CellDataError: unknown panel or empty specimen list.
        cellfit.batch.store.RunConfigError: ``run_dir`` holds a run with another configuration.
        ValueError: bad options (device, window, scheduler, cells_per_task).
        cellfit.batch.cluster.ClusterError: slurm/pbs cannot give a worker (command missing, job
            refused, jobs failing at start-up, none started within ``cluster_options.start_timeout``).
    """
    run_dir = pathlib.Path(run_dir).resolve()
    cache = str(pathlib.Path(default_cache_dir(cache_dir)).resolve())
    ids, panel = resolve_specimens(specimens, cache)
    check_dt_window(config.dt_ms, window_s)
    scheduler_name = scheduler if isinstance(scheduler, str) else "client"
    check_commands(scheduler_name)  # sbatch/qsub on PATH, before anything is written
    if scheduler_name.strip().lower() == "local":
        resolve_device(device)  # a local run can check the device now (remote workers check theirs)
    if cells_per_task is not None and int(cells_per_task) < 1:
        raise ValueError(f"cells_per_task must be >= 1, got {cells_per_task}")
    k = int(cells_per_task) if cells_per_task else default_cells_per_task(device, len(ids), workers)
    run_config = store.RunConfig(
        fit=config.to_dict(), window_s=float(window_s), seed=int(seed), device=str(device), specimens=tuple(ids),
        panel=panel, cells_per_task=k, scheduler=scheduler_name, workers=workers, cache_dir=cache, figures=figures,
    )
    store.check_or_write_config(run_dir, run_config, force=force)

    todo = [sid for sid in ids if store.cell_state(run_dir, sid, run_config) != "ok"]
    n_done_before = len(ids) - len(todo)
    if not todo:
        logger.info("all %d cells of %s are already fitted", len(ids), run_dir)
        return store.write_summary(run_dir)
    t0 = time.perf_counter()
    try:
        with connect(scheduler, workers, cluster_options) as conn:
            logger.info("fitting %d cells (%d already done) in tasks of %d on %s",
                        len(todo), n_done_before, k, conn.description)
            _run_tasks(conn, todo, k, run_config, run_dir, cache, progress=progress, retries=retries)
    except ClusterError as exc:
        done = sum(store.cell_state(run_dir, sid, run_config) == "ok" for sid in ids)
        if done:  # the cluster gave up mid-run: say what is kept
            raise ClusterError(f"{exc}; {done} of {len(ids)} cells are done, the same command fits the "
                               f"others") from None
        raise
    finally:
        df = store.write_summary(run_dir)
    logger.info("batch finished in %.1f s: %s", time.perf_counter() - t0, df.status.value_counts().to_dict())
    return df


def _chunks(ids: Sequence[int], k: int) -> list[list[int]]:
    return [list(ids[i:i + k]) for i in range(0, len(ids), k)]


class _DeferredInterrupt:
    """Ctrl-C while the client waits for tasks, taken at a safe point of the wait loop.

    A ``KeyboardInterrupt`` that lands inside one of Dask's own blocking calls (``distributed``'s
    ``sync``) leaves its event loop half-cancelled and prints a tornado traceback (seen with
    distributed 2023.x when a SLURM job had just been cancelled). So the first Ctrl-C only
    records itself, mutes Dask's teardown chatter, and :meth:`check` raises the
    ``KeyboardInterrupt`` (through the handler that was installed before, e.g. the command
    line's muting one) between two Dask calls. A second Ctrl-C interrupts at once.
    """

    _NOISY = ("distributed", "tornado")

    def __init__(self):
        self.frame = None
        self.previous = None
        self.levels: dict[str, int] = {}

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        self.previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, self.previous)
            for name, level in self.levels.items():  # a notebook goes on after the interrupt
                logging.getLogger(name).setLevel(level)

    def _on_sigint(self, signum, frame):
        if self.frame is not None:  # the second Ctrl-C: now
            self._raise()
        self.frame = frame
        for name in self._NOISY:
            self.levels[name] = logging.getLogger(name).level
            logging.getLogger(name).setLevel(logging.CRITICAL)

    def _raise(self):
        handler = self.previous
        if callable(handler) and handler is not signal.default_int_handler:
            handler(signal.SIGINT, self.frame)  # e.g. mutes the log, then raises
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.frame is not None:
            self._raise()


def _completed(pending, check=None, every_s: float = 0.1):
    """The futures of ``pending`` (a ``distributed.as_completed``) as they finish, calling
    ``check()`` (cheap; it may raise) before each batch and every ``every_s`` seconds meanwhile."""
    if check is None:
        yield from pending
        return
    while not pending.is_empty():
        check()
        ready = pending.next_batch(block=False)
        if ready:
            yield from ready
        else:
            time.sleep(every_s)


def _run_tasks(conn, todo: list[int], k: int, run_config: store.RunConfig, run_dir: pathlib.Path, cache: str,
               *, progress: bool, retries: int) -> None:
    client = conn.client
    run = run_config.to_dict()

    def submit(chunk: list[int], attempt: int):
        fut = client.submit(fit_chunk, chunk, run, str(run_dir), cache, conn.torch_threads,
                            key=f"cellfit-fit-{chunk[0]}-{attempt}-{time.time_ns()}", pure=False,
                            retries=retries, resources=conn.resources)
        chunk_of[fut.key] = (chunk, attempt)
        return fut

    chunk_of: dict[str, tuple[list[int], int]] = {}
    futures = [submit(chunk, 0) for chunk in _chunks(todo, k)]
    counts = dict(ok=0, failed=0)
    bar = tqdm(total=len(todo), unit="cell", desc="cellfit batch", disable=not progress, dynamic_ncols=True)
    last_summary = time.monotonic()
    pending = as_completed(futures)

    interrupt = _DeferredInterrupt()

    def check() -> None:  # the progress bar ends its line before a ClusterError is printed
        try:
            interrupt.check()
            if conn.check is not None:
                conn.check()
        except BaseException:
            bar.close()
            raise

    with interrupt.installed():
        for fut in _completed(pending, check):
            chunk, attempt = chunk_of.pop(fut.key)
            if fut.status == "finished":
                for cell in fut.result():
                    counts["failed" if cell["status"] == "failed" else "ok"] += 1
                    if cell["status"] == "failed":
                        logger.warning("specimen %s failed: %s", cell["specimen_id"], cell["error"])
                bar.update(len(chunk))
            else:
                exc = fut.exception() if fut.status == "error" else None
                why = _error_line(exc) if exc is not None else f"task {fut.status}"
                left = [sid for sid in chunk if store.cell_state(run_dir, sid, run_config) != "ok"]
                if not left:  # e.g. "lost": the worker died after writing the cells; the files are the results
                    logger.info("task for specimens %s ended %s after writing its cells", chunk, why)
                    counts["ok"] += len(chunk)
                    bar.update(len(chunk))
                elif (attempt == 0 and len(chunk) > 1) or (fut.status == "lost" and attempt < 2):
                    logger.warning("task of %d cells failed (%s); resubmitting its %d unfinished cells one per task",
                                   len(chunk), why, len(left))
                    bar.update(len(chunk) - len(left))
                    counts["ok"] += len(chunk) - len(left)
                    for sid in left:
                        pending.add(submit([sid], attempt + 1))
                else:
                    for sid in chunk:
                        state = store.cell_state(run_dir, sid, run_config)
                        if state in ("missing", "stale"):
                            _write_failed(run_dir, sid, f"task failed: {why}", run_config)
                            state = "failed"
                        counts["failed" if state == "failed" else "ok"] += 1
                    logger.warning("task for specimens %s failed: %s", chunk, why)
                    bar.update(len(chunk))
            fut.release()
            bar.set_postfix(ok=counts["ok"], failed=counts["failed"], remaining=bar.total - bar.n, refresh=False)
            if time.monotonic() - last_summary > SUMMARY_EVERY_S:
                store.write_summary(run_dir)
                last_summary = time.monotonic()
    bar.close()
