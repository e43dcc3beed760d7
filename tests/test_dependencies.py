"""Every dependency is declared, and the demo install (no test extras) works.

* An AST scan of every module of the shipped packages (``[tool.maturin]
  python-packages``), imports inside functions included: each third-party import is
  resolved to the distribution that installed its file, which must be a main
  ``[project].dependencies`` entry (never only a ``test`` extra, never only a
  transitive one).
* A fresh interpreter in which every distribution that only the ``test`` extra
  brings is unimportable imports every shipped module and evaluates a JSON-path
  tolerance (``jsonpath-ng``), as ``pip install .`` without extras would have to."""

from __future__ import annotations

import ast
import importlib.metadata as md
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES: list[str] = PYPROJECT["tool"]["maturin"]["python-packages"]
FIRST_PARTY = {*PACKAGES, "rust_core", "tests"}


def _name(req: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~;\[]", req.strip(), maxsplit=1)[0]).lower()


MAIN = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
TEST = {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from ns import sub": the submodule when it is one (namespace packages)
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if _is_module(sub) else node.module)
    return out


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@cache
def _owners() -> dict[Path, str]:
    owners: dict[Path, str] = {}
    for dist in md.distributions():
        for f in dist.files or ():
            if f.suffix in (".py", ".so", ".pyd", ".pth") or f.name == "__init__.py":
                owners[Path(str(dist.locate_file(f))).resolve()] = _name(dist.metadata["Name"])
    return owners


def _distribution(module: str) -> str | None:
    """The distribution whose files provide ``module`` (its most specific findable part)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        try:
            spec = importlib.util.find_spec(".".join(parts[:n]))
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        origin = spec.origin
        if origin in (None, "namespace") and spec.submodule_search_locations:
            continue  # a namespace package: look at the more specific module instead
        if origin is None:
            return None
        return _owners().get(Path(origin).resolve())
    return None


def test_every_third_party_import_is_a_main_dependency() -> None:
    stdlib = set(sys.stdlib_module_names)
    problems: list[str] = []
    for path in _modules():
        for module in sorted(_imports(path)):
            top = module.split(".")[0]
            if top in stdlib or top in FIRST_PARTY or top == "__future__":
                continue
            dist = _distribution(module)
            where = f"{path.relative_to(ROOT)}: import {module}"
            if dist is None:
                problems.append(f"{where}: no installed distribution provides it")
            elif dist not in MAIN:
                extra = " (only in the test extra)" if dist in TEST else ""
                problems.append(f"{where}: {dist} is not in [project].dependencies{extra}")
    assert not problems, "\n".join(problems)


_SCRIPT = r"""
import importlib, importlib.abc, json, sys
blocked = set(json.loads(sys.argv[1]))

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} (test extra only) is not installed", name=name)
        return None

sys.meta_path.insert(0, Blocker())
failed = []
for mod in json.loads(sys.argv[2]):
    try:
        importlib.import_module(mod)
    except Exception as exc:
        failed.append(f"{mod}: {type(exc).__name__}: {exc}")
from chaos.tolerance import JsonPathTolerance, Observation, evaluate
ok, detail = evaluate(
    JsonPathTolerance(path="$.checks[0].ok", expect=True),
    Observation(status=200, body='{"checks": [{"name": "db", "ok": true}]}'),
)
leaked = sorted({m.split(".")[0] for m in sys.modules} & blocked)
print(json.dumps({"failed": failed, "jsonpath": [ok, detail], "leaked": leaked}))
"""


def _test_only_modules() -> list[str]:
    """Top-level import names provided only by distributions the test extra brings."""
    main_closure = _closure(MAIN)
    test_only = _closure(TEST) - main_closure
    names = []
    for top, dists in md.packages_distributions().items():
        norm = {_name(d) for d in dists}
        if norm & test_only and not norm & main_closure:
            names.append(top)
    return sorted(names)


def _closure(roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        todo += [_name(r) for r in reqs if "extra ==" not in r]
    return seen


def test_demo_install_imports_every_module_and_evaluates_a_jsonpath_tolerance() -> None:
    blocked = _test_only_modules()
    assert {"pytest", "kmock", "hypothesis"} <= set(blocked)
    modules = [_module_name(p) for p in _modules() if p.name != "__main__.py"]  # runs the CLI
    res = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(blocked), json.dumps(modules)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["failed"] == [], "\n".join(got["failed"])
    assert got["jsonpath"][0] is True, got["jsonpath"]
    assert got["leaked"] == []
