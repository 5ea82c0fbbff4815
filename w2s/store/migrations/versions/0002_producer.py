"""Annotation.producer (what made a model's label) and Tree/Node.cached_tokens.

Model annotations stored before this revision get the producer 'v0-' + 12 hex digits over what the old
rows recorded of their producer (method, annotator, strong model, tree config): old runs of different
configs stay apart, and no old producer equals a new one (new ones are hex digits only). Human rows keep
'' (the person is the producer).

Revision ID: 0002
Revises: 0001
"""

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

annotation = sa.table(
    "annotation",
    sa.column("id", sa.Integer),
    sa.column("annotator_kind", sa.String),
    sa.column("method", sa.String),
    sa.column("annotator", sa.String),
    sa.column("meta", sa.JSON),
    sa.column("producer", sa.String),
)


def legacy_producer(method: str, annotator: str, meta: dict | None) -> str:
    meta = meta or {}
    what = {
        "method": method,
        "annotator": annotator,
        "strong": meta.get("strong"),
        "tree_config": meta.get("tree_config"),
    }
    return "v0-" + hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]


def upgrade() -> None:
    conn = op.get_bind()
    for table in ("tree", "node"):
        # a store made by main between its cached_tokens commit and this revision has the column already
        if "cached_tokens" not in {c["name"] for c in sa.inspect(conn).get_columns(table)}:
            op.add_column(table, sa.Column("cached_tokens", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("annotation", sa.Column("producer", sa.String(), nullable=False, server_default=""))
    op.create_index("ix_annotation_producer", "annotation", ["producer"])
    rows = conn.execute(
        sa.select(annotation.c.id, annotation.c.method, annotation.c.annotator, annotation.c.meta).where(
            annotation.c.annotator_kind != "human"
        )
    ).all()
    by_producer: dict[str, list[int]] = {}
    for id_, method, annotator, meta in rows:
        by_producer.setdefault(legacy_producer(method, annotator, meta), []).append(id_)
    for producer, ids in by_producer.items():
        for i in range(0, len(ids), 500):
            conn.execute(
                annotation.update().where(annotation.c.id.in_(ids[i : i + 500])).values(producer=producer)
            )


def downgrade() -> None:
    op.drop_index("ix_annotation_producer", "annotation")
    with op.batch_alter_table("annotation") as batch:
        batch.drop_column("producer")
    for table in ("node", "tree"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("cached_tokens")
