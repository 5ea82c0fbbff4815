"""WorkItem: the leased items of jobs that many `w2s trees build` / `w2s annotate` workers share.

One tree per (pair, strong model, config) needs no change here: the unique constraint on tree(pair_id,
strong_model, config_hash) is in the baseline (every w2s store has had it), so no store holds duplicates.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workitem",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"]),
        sa.PrimaryKeyConstraint("job_id", "item"),
    )
    op.create_index("ix_workitem_claim", "workitem", ["job_id", "done", "position"])


def downgrade() -> None:
    op.drop_index("ix_workitem_claim", "workitem")
    op.drop_table("workitem")
