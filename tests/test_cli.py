"""The command lines as a new user meets them: one-line errors before any heavy import, the same
common flags everywhere, Ctrl-C as one line and exit code 130, and hints that work where printed.

Speed is tested without timing: a bad argument must be answered before torch (or AllenSDK,
Dask, pandas, numpy) is imported, which is what makes the answer come in well under a second.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellfit import cli
from cellfit.data.protocol import DT_MAX_MS, DT_MIN_MS
from cellfit.names import ENGINE_NAMES, MODEL_NAMES
from cellfit.timegrid import SUGGEST_GRID_MS, arp_steps, suggest_dt_arp, whole_steps

REPO = pathlib.Path(__file__).resolve().parents[1]
CLIS = ["cellfit.fit", "cellfit.batch", "cellfit.data", "pipelines.benchmark", "pipelines.classify",
        "pipelines.ephys_sweep"]
HEAVY = ("torch", "numpy", "pandas", "allensdk", "dask", "distributed", "matplotlib", "h5py", "pynwb", "scipy")

# runs a CLI as `python -m MODULE ARGS` would, then reports which heavy modules were imported
RUNNER = """
import runpy, sys
module, sys.argv = sys.argv[1], [sys.argv[1]] + sys.argv[2:]
code = 0
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
print("HEAVY=" + ",".join(m for m in %r if m in sys.modules))
sys.exit(code)
""" % (HEAVY,)


def env(**extra) -> dict:
    e = dict(os.environ, PYTHONPATH=str(REPO), CELLFIT_OFFLINE="1", **extra)
    e.pop("PYTHONWARNINGS", None)
    return e


def run_cli(module: str, *args: str, cwd=None, prefix=()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-c", RUNNER, module, *args], capture_output=True, text=True,
                          env=env(), cwd=cwd or REPO, timeout=120)


def parser_of(module: str) -> argparse.ArgumentParser:
    name = module + ".__main__" if module.startswith("cellfit.") else module
    return importlib.import_module(name).build_parser()


def main_of(module: str):
    name = module + ".__main__" if module.startswith("cellfit.") else module
    return importlib.import_module(name).main


@pytest.fixture(scope="module")
def a_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("files") / "results.txt"
    path.write_text("not a folder\n")
    return str(path)


# --------------------------------------------------------------------------
# errors before work, before the heavy imports
# --------------------------------------------------------------------------
BAD = [  # (module, argv; FILE is a regular file), a fragment of the one-line message
    ("cellfit.fit", ["--specimen", "demo", "--bogus"], "unrecognized arguments: --bogus"),
    ("cellfit.fit", ["--specimen", "demo", "--dt", "0.013"], "outside the supported range"),
    ("cellfit.fit", ["--specimen", "demo", "--dt", "0.13"], "not a whole number of --dt 0.13 ms steps"),
    ("cellfit.fit", ["--specimen", "demo", "--out", "FILE"], "is a file, not a folder"),
    ("cellfit.fit", ["--specimen", "demo", "--out", "FILE/sub"], "is a file; choose another --out"),
    ("cellfit.fit", ["--specimen", "demo", "--cache-dir", "FILE"], "--cache-dir"),
    ("cellfit.fit", ["--specimen", "nota-cell"], "nota-cell"),
    ("cellfit.fit", ["--specimen", "demo", "--device", "gpu"], "use auto, cpu, cuda or cuda:N"),
    ("cellfit.fit", ["--specimen", "demo", "--epochs", "-3"], "--epochs: must be >= 1"),
    ("cellfit.fit", ["--specimen", "demo", "--engine", "fast"], "invalid choice"),
    ("cellfit.fit", ["--specimen", "demo", "--adapt-search", "--restarts", "3"], "drop --restarts 3"),
    ("cellfit.batch", ["--specimens", "demo", "--out", "OUT", "--adapt-search", "--model", "auto"], "not auto"),
    ("cellfit.batch", ["--specimens", "demo", "--out", "FILE"], "is a file, not a folder"),
    ("cellfit.batch", ["--specimens", "demo", "123", "--out", "OUT"], "give it alone"),
    ("cellfit.batch", ["--synthetic", "2", "--out", "OUT", "--dt", "0.2", "--arp", "0.3"], "multiple of DT"),
    ("cellfit.batch", ["--specimens", "1", "--out", "OUT", "--scheduler", "nonsense"], "unknown scheduler"),
    ("cellfit.batch", ["--specimens", "1", "--out", "OUT", "--workers", "0"], "--workers: must be >= 1"),
    ("cellfit.data", ["fetch", "--specimen", "x1"], "x1"),
    ("cellfit.data", ["synthetic", "FILE", "--alif", "1"], "is a file, not a folder"),
    ("cellfit.data", ["synthetic", "OUT"], "nothing to write"),
    ("pipelines.benchmark", ["--quick", "--out", "FILE"], "is a file, not a folder"),
    ("pipelines.benchmark", ["--quick", "--out", "OUT", "--engines", "fast"], "invalid choice"),
    ("pipelines.benchmark", ["--quick", "--out", "OUT", "--device", "tpu"], "unknown device"),
    ("pipelines.classify", ["--dataset", "shd", "--epochs", "x"], "expected a whole number"),
    ("pipelines.classify", ["--dataset", "synthetic", "--dt", "1", "--arp", "2.5"], "whole number of --dt 1"),
    ("pipelines.classify", ["--dataset", "synthetic", "--out", "FILE"], "is a file, not a folder"),
    ("pipelines.ephys_sweep", ["--synthetic", "0"], "--synthetic: must be >= 1"),
    ("pipelines.ephys_sweep", ["--synthetic", "2", "--dts", "0.013"], "--dts 0.013 ms is outside"),
    ("pipelines.ephys_sweep", ["--synthetic", "2", "--out", "FILE"], "is a file, not a folder"),
    ("pipelines.ephys_sweep", ["--specimens", "demo", "--arps", "2.05"], "--arps 2.05 ms is not a whole number"),
]


@pytest.mark.parametrize("module, argv, fragment", BAD, ids=[f"{m}:{' '.join(a)}" for m, a, _ in BAD])
def test_bad_arguments_answer_in_one_line_before_heavy_imports(module, argv, fragment, a_file, tmp_path):
    argv = [a.replace("FILE", a_file).replace("OUT", str(tmp_path / "out")) for a in argv]
    proc = run_cli(module, *argv)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(err) == 1 and err[0].startswith(f"python -m {module}"), proc.stderr
    assert ": error: " in err[0] and fragment in err[0], err[0]
    assert proc.stdout.strip() == "HEAVY=", proc.stdout  # nothing heavy was imported
    assert not (tmp_path / "out").exists()  # and nothing was written


@pytest.mark.parametrize("module", CLIS)
def test_help_works_and_lists_the_common_flags(module):
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env(),
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage: python -m " + module in proc.stdout


def test_importing_the_cli_helpers_and_packages_is_light():
    code = ("import sys, cellfit, cellfit.cli, cellfit.fit, cellfit.batch, cellfit.data, cellfit.names, "
            "cellfit.timegrid; print(','.join(m for m in %r if m in sys.modules))" % (HEAVY,))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(), timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_lazy_packages_export_the_same_objects():
    import cellfit
    import cellfit.batch
    import cellfit.data
    import cellfit.fit

    for pkg in (cellfit, cellfit.fit, cellfit.batch, cellfit.data):
        for name in pkg.__all__:
            assert getattr(pkg, name) is not None, (pkg.__name__, name)
            assert name in dir(pkg)
    from cellfit import ALIF, ALIFParameters, Integrator, surrogate
    from cellfit.functional import ALIFParameters as P
    from cellfit.modules import ALIF as A, Integrator as I

    assert (ALIF, Integrator, ALIFParameters) == (A, I, P)
    assert surrogate is importlib.import_module("cellfit.functional.surrogate")
    assert cellfit.functional.ENGINES is importlib.import_module("cellfit.functional.alif").ENGINES
    with pytest.raises(AttributeError):
        cellfit.no_such_name  # noqa: B018


def test_engine_choices_are_the_engine_registry():
    from cellfit.functional import ENGINES

    assert set(ENGINE_NAMES) == set(ENGINES)


def test_model_choices_are_the_fit_variants():
    from cellfit.fit.config import MODELS

    assert set(MODEL_NAMES) == set(MODELS)


def test_benchmark_names_are_the_benchmark_registry():
    from cellfit import bench
    from cellfit.names import DEFAULT_GRID, FULL_GRID, PEER_NAMES

    assert set(PEER_NAMES) == set(bench.PEERS)
    assert {DEFAULT_GRID, FULL_GRID} <= set(bench.GRIDS)


# --------------------------------------------------------------------------
# the output folder
# --------------------------------------------------------------------------
def _as_nobody() -> tuple:
    """A command prefix that drops root's right to write anywhere, or () when not root."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root (which may write into read-only folders) and setpriv is not available "
                    "to run the command as another user")
    return ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


@pytest.mark.parametrize("module, argv", [
    ("cellfit.fit", ["--specimen", "demo"]),
    ("cellfit.batch", ["--specimens", "demo"]),
    ("pipelines.ephys_sweep", ["--synthetic", "2"]),
    ("pipelines.benchmark", ["--quick"]),
    ("pipelines.classify", ["--dataset", "synthetic"]),
])
def test_read_only_out_is_refused_before_work(module, argv):
    prefix = _as_nobody()
    base = pathlib.Path(tempfile.mkdtemp(prefix="cellfit-ro-"))  # under /tmp: reachable by another user
    try:
        ro = base / "ro"
        ro.mkdir()
        base.chmod(0o755)
        ro.chmod(0o555)
        for out, fragment in ((ro / "new", f"cannot create --out {ro / 'new'}: {ro} is not writable"),
                              (ro, f"--out {ro} is not writable")):
            proc = run_cli(module, *argv, "--out", str(out), cwd="/tmp", prefix=prefix)
            err = proc.stderr.strip().splitlines()
            assert proc.returncode == 2 and len(err) == 1 and fragment in err[0], proc.stderr
            assert proc.stdout.strip() == "HEAVY="
    finally:
        (base / "ro").chmod(0o755)
        shutil.rmtree(base)


def test_check_out_dir_accepts_new_and_existing_folders(tmp_path):
    assert cli.check_out_dir(tmp_path) == tmp_path
    assert cli.check_out_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # checking creates nothing


# --------------------------------------------------------------------------
# consistent flags
# --------------------------------------------------------------------------
def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    out = {}
    for action in parser._actions:
        for flag in action.option_strings:
            out[flag] = action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out.update(_actions(sub))
    return out


@pytest.mark.parametrize("module", CLIS)
def test_common_flags_mean_the_same_everywhere(module):
    actions = _actions(parser_of(module))
    for name, (flags, spec) in cli.COMMON_FLAGS.items():
        action = actions.get(flags[0])
        if action is None or action.help == argparse.SUPPRESS:  # absent, or a deprecated alias
            continue
        assert action.type is spec.get("type"), (module, flags[0])
        assert list(action.choices or []) == list(spec.get("choices") or []), (module, flags[0])
        assert action.metavar == spec.get("metavar"), (module, flags[0])
    # the old spellings are gone from the help (classify keeps them as hidden deprecated aliases)
    for old in ("--dt-ms", "--arp-ms"):
        assert old not in actions or actions[old].help == argparse.SUPPRESS
    if "--workers" in actions and actions["--workers"].help != argparse.SUPPRESS:
        assert "Dask" in actions["--workers"].help  # --workers always means Dask workers


def test_every_cli_takes_device_seed_and_out():
    for module in ["cellfit.fit", "cellfit.batch", "pipelines.benchmark", "pipelines.classify",
                   "pipelines.ephys_sweep"]:
        actions = _actions(parser_of(module))
        assert {"--device", "--seed", "--out"} <= set(actions), module
        assert actions["--device"].type is cli.device_name


def test_classify_keeps_the_old_spellings_with_a_warning(capsys):
    args = parser_of("pipelines.classify").parse_args(["--dataset", "synthetic", "--dt-ms", "0.5", "--arp-ms",
                                                       "2", "--workers", "3"])
    assert (args.dt, args.arp, args.loader_workers) == (0.5, 2.0, 3)
    assert capsys.readouterr().err.count("is deprecated; use") == 3


@pytest.mark.parametrize("text", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "CPU"])
def test_device_names(text):
    assert cli.device_name(text) == text.lower()


@pytest.mark.parametrize("text", ["gpu", "cuda:", "cuda:x", "mps", ""], ids=repr)  # not the 'gpu' marker
def test_bad_device_names(text):
    with pytest.raises(argparse.ArgumentTypeError, match="auto, cpu, cuda or cuda:N"):
        cli.device_name(text)


# --------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------
INTERRUPT_AT = [  # the library function each command line calls for its work, and its arguments
    ("cellfit.fit", "cellfit.fit.api", "fit_cell", ["--specimen", "123456789", "--out", "OUT"], "fit it again"),
    ("cellfit.batch", "cellfit.batch.run", "run_batch", ["--specimens", "123456789", "--out", "OUT"], "resume"),
    ("cellfit.data", "cellfit.data.demo", "ensure_demo_cell", ["demo"], "rerun"),
    ("pipelines.benchmark", "cellfit.bench", "run_benchmark", ["--quick", "--device", "cpu", "--out", "OUT"],
     "results.csv"),
    ("pipelines.classify", "cellfit.classify.train", "train_classifier",
     ["--dataset", "synthetic", "--max-samples", "8", "--out", "OUT", "--device", "cpu"], "rerun"),
    ("pipelines.ephys_sweep", "cellfit.batch.sweep", "run_sweep", ["--specimens", "123456789", "--out", "OUT"],
     "resume"),
]


@pytest.mark.parametrize("module, where, name, argv, fragment", INTERRUPT_AT, ids=[m for m, *_ in INTERRUPT_AT])
def test_ctrl_c_is_one_line_and_exit_130(module, where, name, argv, fragment, monkeypatch, tmp_path, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module(where), name, interrupted)
    monkeypatch.setenv("CELLFIT_CACHE", str(tmp_path / "cache"))
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    assert main_of(module)(argv) == 130
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "interrupted" in line]
    assert len(lines) == 1 and lines[0].startswith(f"python -m {module}: interrupted") and fragment in lines[0], err
    assert err.strip().splitlines()[-1] == lines[0] and "Traceback" not in err


MARKER_RUNNER = """
import os, runpy, sys, time
import cellfit.fit.fitter as fitter
original = fitter.fit_population
def fit_population(*args, **kwargs):
    print("FITTING", flush=True)
    return original(*args, **kwargs)
fitter.fit_population = fit_population
module, sys.argv = sys.argv[1], [sys.argv[1]] + sys.argv[2:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def test_ctrl_c_during_a_fit_in_a_real_process(tmp_path):
    """SIGINT to the process group (as a terminal's Ctrl-C) while the demo cell is being fitted."""
    cmd = [sys.executable, "-c", MARKER_RUNNER, "cellfit.fit", "--specimen", "demo", "--dt", "0.5", "--epochs",
           "100000", "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=REPO,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "FITTING"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("result.json"))


# --------------------------------------------------------------------------
# hints that work where they are printed
# --------------------------------------------------------------------------
# which command lines can print a message raised in a library module
PRINTED_BY = {
    "cellfit/data/": ["cellfit.fit", "cellfit.batch", "pipelines.ephys_sweep"],
    "cellfit/data/allen.py": ["cellfit.data"],
    "cellfit/data/panels.py": ["cellfit.data"],
    "cellfit/data/demo.py": ["cellfit.data"],
    "cellfit/data/synthetic": ["cellfit.data"],
    "cellfit/device.py": ["cellfit.fit", "cellfit.batch", "pipelines.ephys_sweep", "pipelines.classify",
                          "pipelines.benchmark"],
    "cellfit/batch/": ["cellfit.batch", "pipelines.ephys_sweep"],
    "cellfit/fit/": ["cellfit.fit", "cellfit.batch", "pipelines.ephys_sweep"],
    "cellfit/classify/": ["pipelines.classify"],
    "cellfit/bench": ["pipelines.benchmark"],
    "cellfit/functional/": CLIS,
}


def _hint_flags() -> dict[tuple[str, str], str]:
    """``(file, --flag) -> message`` for every ``--flag`` in a string of a ``raise`` in the library."""
    found = {}
    for path in sorted((REPO / "cellfit").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.endswith("__main__.py") or rel.startswith("cellfit/cli/"):
            continue
        tree = ast.parse(path.read_text())
        strings = {}
        for node in ast.walk(tree):  # module-level constants used in messages (e.g. _CACHE_FIX)
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                strings[node.targets[0].id] = " ".join(
                    n.value for n in ast.walk(node.value) if isinstance(n, ast.Constant) and isinstance(n.value, str))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            text = " ".join(n.value for n in ast.walk(node.exc) if isinstance(n, ast.Constant)
                            and isinstance(n.value, str))
            text += " ".join(strings.get(n.id, "") for n in ast.walk(node.exc) if isinstance(n, ast.Name))
            for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", text):
                found[(rel, flag)] = text
    return found


def test_every_flag_a_library_message_suggests_exists_where_it_is_printed():
    flags = _hint_flags()
    assert ("cellfit/data/load.py", "--specimen") in flags  # the scan sees the hints (the check can fail)
    missing = []
    for (rel, flag), text in flags.items():
        for prefix, modules in PRINTED_BY.items():
            if rel.startswith(prefix):
                for module in modules:
                    if flag not in _actions(parser_of(module)):
                        missing.append(f"{rel} suggests {flag}, which {module} does not take: {text[:80]}")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("module, argv", [
    ("cellfit.fit", ["--specimen", "demo"]),
    ("cellfit.batch", ["--specimen", "demo", "--out", "runs/x"]),
    ("pipelines.ephys_sweep", ["--specimen", "demo"]),
    ("cellfit.data", ["fetch", "--specimen", "demo"]),
    ("cellfit.data", ["panel", "--specimen", "demo"]),
    ("cellfit.data", ["panel", "demo"]),
])
def test_the_demo_hint_parses_in_every_cli_that_prints_it(module, argv):
    args = parser_of(module).parse_args(argv)
    assert "demo" in (getattr(args, "specimens", None) or getattr(args, "specimen", None)
                      or [getattr(args, "panel", None)])


def test_data_cli_fetch_demo_works_offline(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cellfit.data", "fetch", "--specimen", "demo", "--cache-dir",
                           str(tmp_path)], capture_output=True, text=True, env=env(), cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"demo cell 990000000 in {tmp_path / 'demo'}" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "cellfit.data", "panel", "demo", "--cache-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env(), cwd=REPO, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "990000000", proc.stderr


def _satisfies_every_rule(dt: float, arp, interval_ms) -> bool:
    """The library's own checks: DT range and sampling grid (data layer), ARP in whole steps (engine)."""
    from cellfit.data import CellDataError
    from cellfit.data.preprocess import check_dt_window, samples_per_bin

    # an unknown sampling rate: the suggestion must suit the Allen recordings (200 kHz) and synthetic cells (20 kHz)
    rates = [1e3 / interval_ms] if interval_ms else [200_000.0, 20_000.0]
    try:
        check_dt_window(dt, 1.0)
        for rate in rates:
            samples_per_bin(dt, rate)
        if arp is not None:
            arp_steps(arp, dt)
    except (CellDataError, ValueError):
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(dt=st.floats(0.001, 8.0), arp=st.one_of(st.none(), st.floats(0.01, 30.0)),
       interval=st.sampled_from([None, 0.005, 0.02, 0.05]))
def test_every_suggested_dt_and_arp_is_accepted_by_every_check(dt, arp, interval):
    dt, arp = round(dt, 3), None if arp is None else round(arp, 3)
    problem = suggest_dt_arp(dt, arp, dt_range=(DT_MIN_MS, DT_MAX_MS), interval_ms=interval)
    if problem is None:
        assert DT_MIN_MS <= dt <= DT_MAX_MS and (arp is None or whole_steps(arp, dt) is not None)
        return
    assert problem.options and problem.fix.startswith("try --")
    for new_dt, new_arp in problem.options:
        assert _satisfies_every_rule(new_dt, new_arp, interval), (dt, arp, interval, problem)
        assert (new_arp is None) == (arp is None)


@pytest.mark.parametrize("dt, arp", [(0.013, 2.0), (0.13, 2.0), (0.07, 2.0), (5.0, 2.0), (0.3, 2.0), (0.2, 0.3),
                                     (0.125, 2.0)])
def test_fit_cli_suggestions_are_commands_that_work(dt, arp, tmp_path):
    """Run the fit CLI's checks with the bad pair, then with each suggestion as printed: it passes them all,
    including the demo cell's sampling interval (checked after the heavy imports)."""
    from cellfit.data.demo import DEMO_SAMPLING_RATE_HZ
    from cellfit.fit import __main__ as fit_cli

    parser = fit_cli.build_parser()
    base = ["--specimen", "demo", "--out", str(tmp_path / "out"), "--dt", str(dt), "--arp", str(arp)]

    def check(argv):
        args = parser.parse_args(argv)
        fit_cli._validate(args)
        cli.check_dt_arp(args.dt, args.arp, interval_ms=1e3 / DEMO_SAMPLING_RATE_HZ)  # as _run does for demo

    with pytest.raises(cli.UsageError) as info:
        check(base)
    fix = str(info.value).split("; try ")[1]
    for option in fix.split(" or "):
        check(base + option.split())  # the suggestion, appended as a user would: no error


def test_suggest_grid_is_a_whole_number_of_samples_of_every_supported_rate():
    for rate_hz in (20_000, 200_000):
        assert whole_steps(SUGGEST_GRID_MS, 1e3 / rate_hz) is not None


DOCS = ["README.md", "cellfit/batch/README.md", "data/README.md", "benchmarks/README.md", "BENCHMARKS.md",
        "FITTING.md", "notebooks/README.md"]
PLACEHOLDERS = {"ID": "485909730", "DIR": "runs/x", "N": "2", "FILE.yaml": "cluster.yaml"}


def _documented_commands() -> list[tuple[str, str, list[str]]]:
    """``(document, module, argv)`` of every ``python -m <cli> ...`` shown in the documents."""
    import shlex

    found = []
    for doc in DOCS:
        path = REPO / doc
        if not path.exists():
            continue
        text = path.read_text().replace("\\\n", " ")
        for match in re.finditer(r"python -m (cellfit\.fit|cellfit\.batch|cellfit\.data|pipelines\.\w+)([^`\n#]*)",
                                 text):
            module, rest = match.group(1), match.group(2)
            if "..." in rest or "<" in rest:  # an elided command, not one to copy
                continue
            rest = rest.split("&&")[0].split("|")[0]
            argv = [PLACEHOLDERS.get(a, a) for a in shlex.split(rest)]
            if any(a.startswith("-") for a in argv):  # a command, not a mention of the module or sub-command
                found.append((doc, module, argv))
    return found


def test_documented_commands_parse():
    """Every command the documents show is accepted by its command line's parser."""
    commands = _documented_commands()
    assert any(m == "cellfit.batch" and "--synthetic" in argv for _, m, argv in commands)
    failed = []
    for doc, module, argv in commands:
        if "--help" in argv or "-h" in argv:
            continue
        parser = parser_of(module)
        try:
            cli.check_lazy_choices(parser, parser.parse_args(argv))
        except (SystemExit, cli.UsageError):
            failed.append(f"{doc}: python -m {module} {' '.join(argv)}")
    assert not failed, "\n".join(failed)
