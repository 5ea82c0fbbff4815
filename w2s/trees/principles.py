"""Principle libraries: YAML files under `prompts/principles/` (one per library), synced into the
`Principle` table so that tree nodes can name the principle they used.

A library file has `library`, `description`, `question` (the overall A/B question judges are asked)
and `principles`: a list of `{id, name, definition, cue}`. Principle ids in the store are
`<library>/<id>`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib.resources import files

import yaml
from sqlmodel import Session

from w2s.store import Principle

REQUIRED = ("id", "name", "definition", "cue")
# Which library a dataset is judged with when none is named (substring of the dataset name -> library,
# first match wins).
DATASET_LIBRARIES = {
    "harmless": "harmlessness",
    "helpful": "helpfulness",
    "honest": "honesty",
    "truthful": "honesty",
    "humaneval": "correctness",
    "code": "correctness",
    "math": "math",
    "gsm": "math",
}
DEFAULT_LIBRARY = "harmlessness"


@dataclass(frozen=True)
class LibraryPrinciple:
    """One principle as the prompts see it."""

    id: str
    name: str
    definition: str
    cue: str


@dataclass(frozen=True)
class Library:
    name: str
    description: str
    question: str
    principles: tuple[LibraryPrinciple, ...]

    def hash(self) -> str:
        """12 hex digits over what the prompts see (the question and the principles): an edit of any
        principle or of the question is a new library, and trees built with the old text a different config."""
        blob = json.dumps(
            {"question": self.question, "principles": [asdict(p) for p in self.principles]}, sort_keys=True
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def available() -> list[str]:
    return sorted(
        p.name[: -len(".yaml")]
        for p in files("prompts").joinpath("principles").iterdir()
        if p.name.endswith(".yaml")
    )


def load_library(name: str) -> Library:
    """Load and validate `prompts/principles/<name>.yaml`; errors name the file, entry and field."""
    path = files("prompts").joinpath("principles", f"{name}.yaml")
    where = f"prompts/principles/{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown principle library {name!r}; known: {', '.join(available())}")
    return parse_library(name, path.read_text(encoding="utf-8"), where)


def parse_library(name: str, text: str, where: str) -> Library:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{where}: invalid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with 'question' and 'principles'")
    for key in ("question", "principles"):
        if not data.get(key):
            raise ValueError(f"{where}: missing field '{key}'")
    principles, seen = [], set()
    for i, entry in enumerate(data["principles"]):
        for key in REQUIRED:
            if not isinstance(entry, dict) or not str(entry.get(key, "")).strip():
                raise ValueError(f"{where}: principle #{i + 1}: missing field '{key}'")
        if entry["id"] in seen:
            raise ValueError(f"{where}: principle #{i + 1}: duplicate id '{entry['id']}'")
        seen.add(entry["id"])
        principles.append(
            LibraryPrinciple(
                id=f"{name}/{entry['id']}",
                name=entry["name"].strip(),
                definition=" ".join(entry["definition"].split()),
                cue=" ".join(entry["cue"].split()),
            )
        )
    return Library(
        name=name,
        description=data.get("description", ""),
        question=data["question"].strip(),
        principles=tuple(principles),
    )


def library_match(dataset: str | None) -> tuple[str, bool]:
    """(library, matched): the library a dataset's name picks by keyword, else (harmlessness, False)."""
    lowered = (dataset or "").lower()
    for key, library in DATASET_LIBRARIES.items():
        if key in lowered:
            return library, True
    return DEFAULT_LIBRARY, False


def library_for_dataset(dataset: str | None) -> str:
    """The library a dataset is judged with: by a keyword in its name, else harmlessness."""
    return library_match(dataset)[0]


def fallback_notice(dataset: str | None) -> str | None:
    """The line a command prints when a dataset's name picks no library (None when it picks one)."""
    library, matched = library_match(dataset)
    if matched:
        return None
    keys = ", ".join(DATASET_LIBRARIES)
    return (
        f"dataset {dataset!r} matches no principle library by name (keywords: {keys}); "
        f"falling back to '{library}' (choose one with --principles)"
    )


def sync(session: Session, library: Library) -> None:
    """Insert or update the library's principles in the store."""
    from sqlalchemy.exc import IntegrityError

    for p in library.principles:
        row = session.get(Principle, p.id)
        if row is None:
            try:  # in a savepoint: workers starting together on a new store may insert the same principle
                with session.begin_nested():
                    session.add(
                        Principle(
                            id=p.id,
                            library=library.name,
                            name=p.name,
                            definition=p.definition,
                            cue_question=p.cue,
                        )
                    )
                continue
            except IntegrityError:
                row = session.get(Principle, p.id)
                if row is None:
                    raise
        row.name, row.definition, row.cue_question = p.name, p.definition, p.cue
        session.add(row)
