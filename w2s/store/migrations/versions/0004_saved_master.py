"""SavedMaster: trained aligned masters kept in the store under a name (`w2s master train --name`).

A new table only: every existing row stays as it is, and masters trained before this revision stay in
their run directories, which `w2s master import DIR` brings in.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saved_master",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.Column("producer", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("saved_master", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_saved_master_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("saved_master", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saved_master_run_id"))
    op.drop_table("saved_master")
