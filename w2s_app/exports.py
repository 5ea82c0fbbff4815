"""Exports made from the admin page: written into a private folder, served only to admins, deleted soon after.

A label-set name comes from a free-text dropdown, so it is checked against the stored label sets and never
used as a path: file names are built from a slug. Files are 0600 in a 0700 folder of their own (not Gradio's
shared file cache, which any logged-in user can read by URL), handed out under an unguessable download id,
and deleted `ttl` seconds after they were written and when the server stops.
"""

from __future__ import annotations

import atexit
import re
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

from sqlmodel import Session

from w2s_app import stats

KINDS = ("labelset", "raw", "current")
FORMATS = ("jsonl", "parquet")
ROUTE = "w2s-export"
"""URL prefix of the downloads, relative to the app's root: w2s-export/<id>/<file name>."""


def slug(name: str) -> str:
    """A file-name-safe form of `name`: no separators, no dot-dot, no leading dot."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:60] or "labelset"


class ExportRefused(ValueError):
    """A request the export cannot honour (unknown label set or format); the message names it."""


class AdminExports:
    def __init__(self, ttl: float = 600.0, clock=time.monotonic):
        self.ttl, self.clock = ttl, clock
        self._dir: Path | None = None
        self.files: dict[str, tuple[Path, float]] = {}  # download id -> (path, written at)
        self.lock = threading.Lock()

    @property
    def dir(self) -> Path:
        """The private folder, made on the first export (mkdtemp makes it 0700), removed at exit."""
        with self.lock:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="w2s-exports-"))
                atexit.register(shutil.rmtree, self._dir, True)
            return self._dir

    def write(self, session: Session, kind: str, fmt: str, label_set: str | None) -> tuple[str, Path, int]:
        """Export into the private folder; returns (download id, path, rows)."""
        if kind not in KINDS:
            raise ExportRefused(f"unknown export {kind!r}")
        fmt = "jsonl" if kind == "current" else (fmt or "jsonl")
        if fmt not in FORMATS:
            raise ExportRefused(f"unknown format {fmt!r}: choose {' or '.join(FORMATS)}")
        if kind == "labelset":
            known = stats.label_set_names(session)
            if label_set not in known:
                listed = ", ".join(known) or "none yet; build one with `w2s labels build`"
                raise ExportRefused(f"no label set named {label_set!r} (known: {listed})")
            name = f"w2s-{slug(label_set)}.{fmt}"
        else:
            name = f"w2s-{kind}-annotations.{fmt}"
        self.sweep()
        token = secrets.token_urlsafe(24)
        folder = self.dir / token
        folder.mkdir(mode=0o700)
        path = folder / name
        if kind == "labelset":  # the 0700 folder keeps other local users out while the file is written
            n = stats.export_label_set(session, path, label_set=label_set, fmt=fmt)
        elif kind == "raw":
            n = stats.export_raw(session, path, fmt=fmt)
        else:
            n = stats.export_annotations(session, path)
        path.chmod(0o600)
        with self.lock:
            self.files[token] = (path, self.clock())
        return token, path, n

    def get(self, token: str) -> Path | None:
        """The file of a download id that has not expired."""
        self.sweep()
        with self.lock:
            hit = self.files.get(token)
        return hit[0] if hit and hit[0].is_file() else None

    def sweep(self) -> None:
        """Delete the exports older than `ttl`."""
        now = self.clock()
        with self.lock:
            old = [t for t, (_, at) in self.files.items() if now - at > self.ttl]
            for t in old:
                del self.files[t]
        for t in old:
            shutil.rmtree(self._dir / t, ignore_errors=True)

    @staticmethod
    def link(token: str, path: Path) -> str:
        return f"{ROUTE}/{token}/{path.name}"
