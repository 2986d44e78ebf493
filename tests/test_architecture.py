"""The layer rule of ARCHITECTURE.md: imports go down only, and every module is in a known layer.

Every ``import`` and ``from ... import`` in cellfit/ and pipelines/ (at any depth, so a
deferred import is an edge too) is resolved to a module and both ends are placed in the
layers below; an import from a higher layer fails the test with the offending line.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: low to high; a module belongs to the first layer with a prefix that matches its dotted name
#: (longest prefix wins). Kept in step with the table in ARCHITECTURE.md.
LAYERS = [
    ("base", ["cellfit._lazy", "cellfit.io", "cellfit.device", "cellfit.names", "cellfit.timegrid"]),
    ("functional", ["cellfit.functional"]),
    ("modules", ["cellfit.modules"]),
    ("data", ["cellfit.data"]),
    ("fitting", ["cellfit.fit.metrics", "cellfit.fit.coincidence", "cellfit.fit.config", "cellfit.fit.loss",
                 "cellfit.fit.optim", "cellfit.fit.init", "cellfit.fit.fitter", "cellfit.fit.results",
                 "cellfit.fit.select", "cellfit.fit.api"]),
    ("cell figures", ["cellfit.figures.common", "cellfit.figures.fit", "cellfit.figures.classify"]),
    ("cell files", ["cellfit.fit.outputs"]),
    ("runs of many fits", ["cellfit.batch"]),
    ("applications", ["cellfit.bench", "cellfit.classify"]),
    ("figures of runs", ["cellfit.figures.panel", "cellfit.figures.sweep", "cellfit.figures.speed"]),
    ("command lines", ["cellfit.cli", "cellfit.fit.__main__", "cellfit.batch.__main__", "cellfit.data.__main__",
                       "cellfit.batch.worker_setup", "pipelines"]),
]
#: package __init__ files: their exports are lazy (cellfit._lazy), so they sit with their package's
#: lowest layer and may name anything inside it
PACKAGES = {"cellfit": "base", "cellfit.fit": "fitting", "cellfit.figures": "cell figures"}


def layer_of(module: str) -> int:
    names = [name for name, _ in LAYERS]
    if module in PACKAGES:
        return names.index(PACKAGES[module])
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank is None:
        raise KeyError(module)
    return rank


def modules():
    for top in ("cellfit", "pipelines"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def imports(module: str, path: pathlib.Path):
    """(line, imported module) for every import of a project module in ``path``."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in ("cellfit", "pipelines"):
                yield node.lineno, target


def known(target: str, names: set) -> str:
    """The project module that ``target`` names (``pkg.mod.attr`` -> ``pkg.mod``)."""
    while target and target not in names:
        target = target.rsplit(".", 1)[0] if "." in target else ""
    return target


def test_every_module_has_a_layer():
    missing = []
    for module, _ in modules():
        try:
            layer_of(module)
        except KeyError:
            missing.append(module)
    assert not missing, f"add these modules to a layer (here and in ARCHITECTURE.md): {missing}"


def test_imports_go_down_only():
    names = {m for m, _ in modules()}
    upward = []
    for module, path in modules():
        mine = layer_of(module)
        for line, target in imports(module, path):
            target = known(target, names)
            if not target or target == module:
                continue
            theirs = layer_of(target)
            if theirs > mine:
                upward.append(f"{path.relative_to(ROOT)}:{line}: {module} ({LAYERS[mine][0]}) imports {target} "
                              f"({LAYERS[theirs][0]})")
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("name", [name for name, _ in LAYERS])
def test_architecture_md_names_every_layer(name):
    assert name in (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
