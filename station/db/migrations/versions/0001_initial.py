"""Initial schema: candidates, check-ins, attempts and items, timeline, score sheets, signatures,
results, outbox and the audit chain.

Written as explicit operations (not `metadata.create_all`) so this revision stays what it was when
later revisions change the models. Constraint names follow `station.db.models.NAMING_CONVENTION`.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ns(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _text(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "candidates",
        _text("id_number"),
        _text("name"),
        _text("photo_ref", nullable=True),
        _text("operation"),
        _text("batch"),
        sa.Column("attempt_number", sa.Integer(), nullable=False),
        _ns("passed_at_utc_ns", nullable=True),
        sa.CheckConstraint("attempt_number IN (1, 2)", name="ck_candidates_attempt_number"),
        sa.PrimaryKeyConstraint("id_number", name="pk_candidates"),
    )
    op.create_table(
        "attempts",
        _text("attempt_id"),
        _text("candidate_id_number"),
        _text("station"),
        _text("operation"),
        _text("rubric_id"),
        _text("rubric_hash"),
        _text("state"),
        _ns("seed", nullable=True),
        _text("drawn_items"),
        sa.Column("snapshot", sa.Text(), nullable=False, server_default="{}"),
        _ns("created_utc_ns"),
        _ns("updated_utc_ns"),
        sa.ForeignKeyConstraint(["candidate_id_number"], ["candidates.id_number"],
                                name="fk_attempts_candidate_id_number_candidates"),
        sa.PrimaryKeyConstraint("attempt_id", name="pk_attempts"),
    )
    op.create_index("ix_attempts_candidate_id_number", "attempts", ["candidate_id_number"])
    op.create_table(
        "check_ins",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _text("candidate_id_number"),
        _text("attempt_id"),
        _text("verified_by"),
        _text("method"),
        _ns("utc_ns"),
        sa.CheckConstraint("method IN ('manual', 'id_card_reader')", name="ck_check_ins_method"),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.attempt_id"], name="fk_check_ins_attempt_id_attempts"),
        sa.ForeignKeyConstraint(["candidate_id_number"], ["candidates.id_number"],
                                name="fk_check_ins_candidate_id_number_candidates"),
        sa.PrimaryKeyConstraint("id", name="pk_check_ins"),
    )
    op.create_index("ix_check_ins_attempt_id", "check_ins", ["attempt_id"])
    op.create_index("ix_check_ins_candidate_id_number", "check_ins", ["candidate_id_number"])
    op.create_table(
        "attempt_items",
        _text("attempt_id"),
        _text("code"),
        _text("subject"),
        _text("state"),
        _ns("started_mono_ns", nullable=True),
        _ns("ended_mono_ns", nullable=True),
        _text("end_reason", nullable=True),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.attempt_id"], name="fk_attempt_items_attempt_id_attempts"),
        sa.PrimaryKeyConstraint("attempt_id", "code", name="pk_attempt_items"),
    )
    op.create_table(
        "timeline",
        _text("attempt_id"),
        sa.Column("seq", sa.Integer(), nullable=False),
        _text("record"),
        _text("row_hash"),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.attempt_id"], name="fk_timeline_attempt_id_attempts"),
        sa.PrimaryKeyConstraint("attempt_id", "seq", name="pk_timeline"),
    )
    op.create_table(
        "score_sheets",
        _text("attempt_id"),
        sa.Column("version", sa.Integer(), nullable=False),
        _text("sheet"),
        _text("rubric_id"),
        _text("rubric_hash"),
        _ns("created_utc_ns"),
        _text("sheet_sha256"),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.attempt_id"], name="fk_score_sheets_attempt_id_attempts"),
        sa.PrimaryKeyConstraint("attempt_id", "version", name="pk_score_sheets"),
    )
    op.create_table(
        "signatures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _text("attempt_id"),
        _text("item_code", nullable=True),
        _text("role"),
        _text("who"),
        _text("decision"),
        _ns("utc_ns"),
        sa.CheckConstraint("role IN ('candidate', 'examiner')", name="ck_signatures_role"),
        sa.CheckConstraint("decision IN ('signed', 'refused')", name="ck_signatures_decision"),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.attempt_id"], name="fk_signatures_attempt_id_attempts"),
        sa.PrimaryKeyConstraint("id", name="pk_signatures"),
    )
    op.create_index("ix_signatures_attempt_id", "signatures", ["attempt_id"])
    op.create_table(
        "results",
        _text("result_id"),
        _text("attempt_id"),
        sa.Column("site_seq", sa.Integer(), nullable=False),
        _text("document"),
        _text("document_sha256"),
        _ns("created_utc_ns"),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.attempt_id"], name="fk_results_attempt_id_attempts"),
        sa.PrimaryKeyConstraint("result_id", name="pk_results"),
        sa.UniqueConstraint("attempt_id", name="uq_results_attempt_id"),
        sa.UniqueConstraint("site_seq", name="uq_results_site_seq"),
    )
    op.create_table(
        "outbox",
        _text("result_id"),
        _text("state"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ns("next_try_utc_ns"),
        _text("last_error", nullable=True),
        _ns("delivered_utc_ns", nullable=True),
        sa.CheckConstraint("state IN ('queued', 'delivered', 'failed')", name="ck_outbox_state"),
        sa.ForeignKeyConstraint(["result_id"], ["results.result_id"], name="fk_outbox_result_id_results"),
        sa.PrimaryKeyConstraint("result_id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_state_next_try", "outbox", ["state", "next_try_utc_ns"])
    op.create_table(
        "audit",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        _ns("utc_ns"),
        _text("actor"),
        _text("action"),
        _text("subject"),
        _text("payload"),
        _text("prev_hash"),
        _text("entry_hash"),
        sa.PrimaryKeyConstraint("seq", name="pk_audit"),
    )
    op.create_index("ix_audit_subject", "audit", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_audit_subject", table_name="audit")
    op.drop_table("audit")
    op.drop_index("ix_outbox_state_next_try", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("results")
    op.drop_index("ix_signatures_attempt_id", table_name="signatures")
    op.drop_table("signatures")
    op.drop_table("score_sheets")
    op.drop_table("timeline")
    op.drop_table("attempt_items")
    op.drop_index("ix_check_ins_candidate_id_number", table_name="check_ins")
    op.drop_index("ix_check_ins_attempt_id", table_name="check_ins")
    op.drop_table("check_ins")
    op.drop_index("ix_attempts_candidate_id_number", table_name="attempts")
    op.drop_table("attempts")
    op.drop_table("candidates")
