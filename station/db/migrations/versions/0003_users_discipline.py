"""The proctor UI's users, and the discipline incidents (考场违纪) recorded at stations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("stations", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_utc_ns", sa.BigInteger(), nullable=False),
        sa.Column("disabled", sa.Integer(), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'examiner', 'proctor')", name="ck_users_role"),
        sa.PrimaryKeyConstraint("name", name="pk_users"),
    )
    op.create_table(
        "discipline_incidents",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("station", sa.Text(), nullable=False),
        sa.Column("attempt_id", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.Text(), nullable=False),
        sa.Column("utc_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.attempt_id"],
                                name="fk_discipline_incidents_attempt_id_attempts"),
        sa.PrimaryKeyConstraint("id", name="pk_discipline_incidents"),
    )
    op.create_index("ix_discipline_incidents_attempt_id", "discipline_incidents", ["attempt_id"])


def downgrade() -> None:
    op.drop_index("ix_discipline_incidents_attempt_id", table_name="discipline_incidents")
    op.drop_table("discipline_incidents")
    op.drop_table("users")
