"""The store stage: everything that reads and writes the one SQL store.

`w2s.store.db` holds the SQLModel tables, the engines and the session helpers; `schema` and `migrations/`
keep the schema's Alembic revision; `importers` brings preference pairs in, `export` writes label sets and
raw annotations out; `work` shares a job's items among many workers through the store; `auth` keeps the
app's users and passwords. This package re-exports `w2s.store.db`'s public names, so that
`from w2s.store import Pair, session_scope` (the import every stage uses) keeps working; the `on_open`
hook is set on `w2s.store.db` itself. The other modules are imported by their own path
(`from w2s.store.importers import import_file`).
"""

from w2s.store.db import (
    DEFAULT_DB,
    IN_CHUNK,
    Annotation,
    Draft,
    Job,
    LabelSet,
    Node,
    Pair,
    Principle,
    QueueItem,
    QueuePool,
    SavedMaster,
    Setting,
    Tree,
    User,
    WorkItem,
    add_annotation,
    annotation_key,
    chunks,
    current_annotations,
    db_url,
    get_engine,
    get_setting,
    make_engine,
    ping,
    redact,
    safe_url,
    select_in,
    session_scope,
    set_setting,
    utcnow,
)

__all__ = [
    "add_annotation",
    "Annotation",
    "annotation_key",
    "chunks",
    "current_annotations",
    "db_url",
    "DEFAULT_DB",
    "Draft",
    "get_engine",
    "get_setting",
    "IN_CHUNK",
    "Job",
    "LabelSet",
    "make_engine",
    "Node",
    "Pair",
    "ping",
    "Principle",
    "QueueItem",
    "QueuePool",
    "redact",
    "safe_url",
    "SavedMaster",
    "select_in",
    "session_scope",
    "set_setting",
    "Setting",
    "Tree",
    "User",
    "utcnow",
    "WorkItem",
]
