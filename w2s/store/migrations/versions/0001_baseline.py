"""Baseline: the schema of commit 5758463, the last w2s before migrations (its stores have no version table).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_kind"), ["kind"], unique=False)

    op.create_table(
        "pair",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("dataset", sa.String(), nullable=False),
        sa.Column("split", sa.String(), nullable=False),
        sa.Column("prompt", sa.String(), nullable=False),
        sa.Column("response_a", sa.String(), nullable=False),
        sa.Column("response_b", sa.String(), nullable=False),
        sa.Column("gold", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("position_seed", sa.Integer(), nullable=True),
        sa.Column("swapped", sa.Boolean(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("pair", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pair_dataset"), ["dataset"], unique=False)
        batch_op.create_index(batch_op.f("ix_pair_split"), ["split"], unique=False)

    op.create_table(
        "principle",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("library", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("definition", sa.String(), nullable=False),
        sa.Column("cue_question", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("principle", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_principle_library"), ["library"], unique=False)

    op.create_table(
        "setting",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_name"), ["name"], unique=True)

    op.create_table(
        "draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("pair_id", sa.String(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pair_id"],
            ["pair.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user", "pair_id"),
    )
    with op.batch_alter_table("draft", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_draft_user"), ["user"], unique=False)

    op.create_table(
        "labelset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("pair_id", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("soft_label", sa.Float(), nullable=False),
        sa.Column("entropy", sa.Float(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("n_votes", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pair_id"],
            ["pair.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "pair_id"),
    )
    with op.batch_alter_table("labelset", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_labelset_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_labelset_pair_id"), ["pair_id"], unique=False)

    op.create_table(
        "queueitem",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("pair_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("is_gold", sa.Boolean(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("annotation_id", sa.Integer(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("served_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["pair_id"],
            ["pair.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user", "pair_id"),
    )
    with op.batch_alter_table("queueitem", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queueitem_pair_id"), ["pair_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_queueitem_user"), ["user"], unique=False)
        batch_op.create_index("ix_queueitem_user_status", ["user", "status"], unique=False)

    op.create_table(
        "queuepool",
        sa.Column("pair_id", sa.String(), nullable=False),
        sa.Column("is_gold", sa.Boolean(), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("n_assigned", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pair_id"],
            ["pair.id"],
        ),
        sa.PrimaryKeyConstraint("pair_id"),
    )
    with op.batch_alter_table("queuepool", schema=None) as batch_op:
        batch_op.create_index(
            "ix_queuepool_pick", ["is_gold", "eligible", "n_assigned", "priority", "pair_id"], unique=False
        )

    op.create_table(
        "tree",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.String(), nullable=False),
        sa.Column("strong_model", sa.String(), nullable=False),
        sa.Column("library", sa.String(), nullable=False),
        sa.Column("config_hash", sa.String(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("backtraces", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pair_id"],
            ["pair.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pair_id", "strong_model", "config_hash"),
    )
    with op.batch_alter_table("tree", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tree_pair_id"), ["pair_id"], unique=False)

    op.create_table(
        "annotation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.String(), nullable=False),
        sa.Column("annotator", sa.String(), nullable=False),
        sa.Column("annotator_kind", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("p_a", sa.Float(), nullable=True),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("variant", sa.String(), nullable=False),
        sa.Column("tree_id", sa.Integer(), nullable=True),
        sa.Column("consulted_node_ids", sa.JSON(), nullable=True),
        sa.Column("pruned", sa.JSON(), nullable=True),
        sa.Column("comment", sa.String(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("retracted", sa.Boolean(), nullable=False),
        sa.Column("dedup_key", sa.String(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pair_id"],
            ["pair.id"],
        ),
        sa.ForeignKeyConstraint(
            ["supersedes_id"],
            ["annotation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["tree_id"],
            ["tree.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_key"),
    )
    with op.batch_alter_table("annotation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_annotation_annotator"), ["annotator"], unique=False)
        batch_op.create_index(batch_op.f("ix_annotation_method"), ["method"], unique=False)
        batch_op.create_index("ix_annotation_pair_annotator", ["pair_id", "annotator"], unique=False)
        batch_op.create_index(batch_op.f("ix_annotation_pair_id"), ["pair_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_annotation_supersedes_id"), ["supersedes_id"], unique=False)

    op.create_table(
        "node",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tree_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("principle_id", sa.String(), nullable=False),
        sa.Column("principle_name", sa.String(), nullable=False),
        sa.Column("relevance", sa.Float(), nullable=False),
        sa.Column("thought", sa.String(), nullable=False),
        sa.Column("p_a", sa.Float(), nullable=False),
        sa.Column("p_b", sa.Float(), nullable=False),
        sa.Column("entropy", sa.Float(), nullable=False),
        sa.Column("info", sa.Float(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("template_hash", sa.String(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tree_id"],
            ["tree.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("node", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_node_tree_id"), ["tree_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("node", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_node_tree_id"))

    op.drop_table("node")
    with op.batch_alter_table("annotation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_annotation_supersedes_id"))
        batch_op.drop_index(batch_op.f("ix_annotation_pair_id"))
        batch_op.drop_index("ix_annotation_pair_annotator")
        batch_op.drop_index(batch_op.f("ix_annotation_method"))
        batch_op.drop_index(batch_op.f("ix_annotation_annotator"))

    op.drop_table("annotation")
    with op.batch_alter_table("tree", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tree_pair_id"))

    op.drop_table("tree")
    with op.batch_alter_table("queuepool", schema=None) as batch_op:
        batch_op.drop_index("ix_queuepool_pick")

    op.drop_table("queuepool")
    with op.batch_alter_table("queueitem", schema=None) as batch_op:
        batch_op.drop_index("ix_queueitem_user_status")
        batch_op.drop_index(batch_op.f("ix_queueitem_user"))
        batch_op.drop_index(batch_op.f("ix_queueitem_pair_id"))

    op.drop_table("queueitem")
    with op.batch_alter_table("labelset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_labelset_pair_id"))
        batch_op.drop_index(batch_op.f("ix_labelset_name"))

    op.drop_table("labelset")
    with op.batch_alter_table("draft", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_draft_user"))

    op.drop_table("draft")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_name"))

    op.drop_table("user")
    op.drop_table("setting")
    with op.batch_alter_table("principle", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_principle_library"))

    op.drop_table("principle")
    with op.batch_alter_table("pair", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pair_split"))
        batch_op.drop_index(batch_op.f("ix_pair_dataset"))

    op.drop_table("pair")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_kind"))

    op.drop_table("job")
