"""Evidence video: the segment index, camera gaps, attempt links to segments, check-in stills.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ns(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _text(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _int(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "evidence_segments",
        _text("segment_id"), _text("station"), _text("camera"), _text("path"), _text("sha256"),
        _ns("size_bytes"), _ns("start_utc_ns"), _ns("end_utc_ns"), _ns("start_mono_ns"), _ns("end_mono_ns"),
        _text("clock_run"), _int("frames"), _text("codec"), _int("width"), _int("height"), _int("recovered"),
        _ns("keep_until_utc_ns", nullable=True), _ns("deleted_utc_ns", nullable=True),
        sa.CheckConstraint("end_utc_ns >= start_utc_ns", name="ck_evidence_segments_time_order"),
        sa.PrimaryKeyConstraint("segment_id", name="pk_evidence_segments"),
        sa.UniqueConstraint("path", name="uq_evidence_segments_path"),
    )
    op.create_index("ix_evidence_segments_station_start", "evidence_segments", ["station", "start_utc_ns"])
    op.create_table(
        "camera_gaps",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        _text("station"), _text("camera"), _ns("from_utc_ns"), _ns("to_utc_ns", nullable=True),
        _ns("from_mono_ns"), _ns("to_mono_ns", nullable=True), _text("clock_run"), _text("cause"),
        sa.PrimaryKeyConstraint("id", name="pk_camera_gaps"),
    )
    op.create_index("ix_camera_gaps_station_from", "camera_gaps", ["station", "from_utc_ns"])
    op.create_table(
        "attempt_evidence",
        _text("attempt_id"), _text("segment_id"),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.attempt_id"],
                                name="fk_attempt_evidence_attempt_id_attempts"),
        sa.ForeignKeyConstraint(["segment_id"], ["evidence_segments.segment_id"],
                                name="fk_attempt_evidence_segment_id_evidence_segments"),
        sa.PrimaryKeyConstraint("attempt_id", "segment_id", name="pk_attempt_evidence"),
    )
    op.create_table(
        "attempt_stills",
        _text("attempt_id"), _text("camera"), _text("path"), _text("sha256"), _ns("utc_ns"),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.attempt_id"], name="fk_attempt_stills_attempt_id_attempts"),
        sa.PrimaryKeyConstraint("attempt_id", "camera", name="pk_attempt_stills"),
    )


def downgrade() -> None:
    op.drop_table("attempt_stills")
    op.drop_table("attempt_evidence")
    op.drop_index("ix_camera_gaps_station_from", table_name="camera_gaps")
    op.drop_table("camera_gaps")
    op.drop_index("ix_evidence_segments_station_start", table_name="evidence_segments")
    op.drop_table("evidence_segments")
