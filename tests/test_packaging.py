"""pyproject.toml declares what the code imports, and nothing it does not (a dependency pulled in by
another is still declared when w2s imports it itself); it installs only w2s's own top-level packages, and
both `pip install .` and `pip install -e .` give a working `w2s` with the app and its assets."""

import ast
import json
import os
import re
import shutil
import site
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from paths import ROOT

OWN = {"w2s", "annotators", "w2s_app", "prompts"}
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
    for folder in ("w2s", "annotators", "w2s_app"):
        for path, module in _imports(ROOT / folder):
            top = module.split(".")[0]
            if top not in sys.stdlib_module_names and top not in OWN:
                found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def _imports(folder: Path):
    """(file, module) for every absolute import in the folder's Python files."""
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                yield from ((path, a.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield path, node.module


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
    assert not unused, f"declared in pyproject.toml but never imported by w2s's packages: {unused}"


# ------------------------------------------------------------------------------ what gets installed

PACKAGES = {"w2s", "w2s_app", "annotators", "prompts"}
"""The top-level packages w2s installs. The app is `w2s_app`, not `app`: a top-level `app` in
site-packages collides with any other project's."""


def test_the_core_never_imports_the_packages_built_on_it():
    outer = {"annotators", "w2s_app"}
    found = [f"{p.relative_to(ROOT)}: {m}" for p, m in _imports(ROOT / "w2s") if m.split(".")[0] in outer]
    assert not found, f"w2s imports a package that builds on it (use an entry point): {found}"


def test_the_installed_top_level_packages_are_ours():
    from setuptools import find_namespace_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    found = find_namespace_packages(where=str(ROOT), include=include)
    assert {p.split(".")[0] for p in found} == PACKAGES
    assert set(config["tool"]["setuptools"]["package-data"]) <= PACKAGES
    for value in config["project"]["entry-points"]["w2s.cli"].values():
        assert value.split(".")[0] in PACKAGES, value


CHECK_INSTALL = """
import importlib.metadata as md, importlib.util, json
from importlib import resources
import annotators, prompts, w2s, w2s_app
import w2s.cli  # loads every w2s.cli entry point
eps = md.entry_points(group="w2s.cli")
app = importlib.util.find_spec("app")
print(json.dumps({
    "modules": [m.__file__ for m in (w2s, w2s_app, annotators, prompts)],
    "entry_points": sorted(ep.value for ep in eps),
    "assets": [resources.files("w2s_app").joinpath(f).is_file()
               for f in ("guidelines.md", "static/keys.js", "static/style.css")],
    "templates": resources.files("prompts").joinpath("templates/judge.jinja").is_file(),
    "app": app.origin if app else None,
}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("editable", [False, True], ids=["pip-install", "pip-install-e"])
def test_pip_install_into_a_fresh_venv(tmp_path, editable):
    """`pip install .` and `pip install -e .` of a copy of the sources (the build writes beside them) into a
    venv that borrows the dependencies: the packages, entry points and assets come from that install alone."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in sorted(PACKAGES):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    # The new venv borrows this environment's packages (pip, setuptools, the dependencies) through a .pth
    # file, so that the build runs offline without build isolation. `--system-site-packages` would borrow
    # the base interpreter's instead, which inside a user's venv lacks them (or has an old setuptools).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    own_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    borrowed = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    (Path(own_site) / "w2s_test_borrowed.pth").write_text("\n".join(borrowed) + "\n")
    pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, *(["-e"] if editable else []), str(src)], check=True, cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only what was installed
    check = subprocess.run(
        [str(python), "-c", CHECK_INSTALL], check=False, cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    got = json.loads(check.stdout.strip().splitlines()[-1])
    home = src if editable else venv
    assert all(Path(f).resolve().is_relative_to(home.resolve()) for f in got["modules"]), got["modules"]
    assert got["entry_points"] == ["annotators.cli:register", "w2s_app.cli:register"]
    assert all(got["assets"]) and got["templates"]
    # this install brings no top-level `app` (one may exist elsewhere, e.g. an older w2s install)
    assert got["app"] is None or not Path(got["app"]).resolve().is_relative_to(tmp_path.resolve())
    serve = subprocess.run(
        [str(venv / "bin" / "w2s"), "serve", "--help"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert serve.returncode == 0 and "--strong" in serve.stdout, serve.stdout + serve.stderr


def test_an_entry_point_of_a_moved_package_is_skipped_with_a_hint(tmp_path, monkeypatch, capsys):
    """An install made before `app` became `w2s_app` still names `app.cli`: every command but the app's
    keeps working, and the message says to reinstall. A plugin that fails inside is not hidden."""
    from importlib.metadata import EntryPoint

    import typer

    import w2s.cli as cli

    moved = EntryPoint(name="app", value="w2s_test_moved_app.cli:register", group="w2s.cli")
    monkeypatch.setattr(cli, "app", typer.Typer())
    monkeypatch.setattr(cli, "entry_points", lambda group: [moved])
    cli._register_all()
    err = capsys.readouterr().err
    assert "skipped the commands of w2s_test_moved_app.cli:register" in err and "reinstall w2s" in err

    (tmp_path / "w2s_test_broken_plugin.py").write_text("import w2s_test_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = EntryPoint(name="broken", value="w2s_test_broken_plugin:register", group="w2s.cli")
    monkeypatch.setattr(cli, "entry_points", lambda group: [broken])
    with pytest.raises(ModuleNotFoundError, match="w2s_test_missing_dependency"):
        cli._register_all()
