"""pyproject.toml declares what the code imports, and nothing it does not (a dependency pulled in by
another is still declared when w2s imports it itself)."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from paths import ROOT

OWN = {"w2s", "annotators", "app", "prompts"}
USED_INDIRECTLY = {"gguf": "transformers reads GGUF files with it"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = lambda specs: {_norm(re.split(r"[<>=!~\[; ]", s, maxsplit=1)[0]) for s in specs}
    extras = set().union(*(names(v) for v in project["optional-dependencies"].values()))
    return names(project["dependencies"]), extras


def _imported() -> dict[str, str]:
    """Top-level third-party modules imported by the installed packages -> a file importing it."""
    found = {}
    for folder in ("w2s", "annotators", "app"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    mods = [node.module]
                else:
                    continue
                for m in mods:
                    top = m.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in OWN:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_import_is_declared_and_every_dependency_imported():
    core, extras = _declared()
    dists = packages_distributions()
    used = {}
    for module, where in _imported().items():
        for dist in dists.get(module, [module]):
            used[_norm(dist)] = where
    undeclared = {d: w for d, w in used.items() if d not in core | extras}
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
    unused = core - set(used) - set(USED_INDIRECTLY)
    assert not unused, f"declared in pyproject.toml but never imported by w2s, annotators or app: {unused}"
