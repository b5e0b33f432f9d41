"""What the simulated province keeps: every result it stored and every rejection, and every site-acceptance
message (probe or report) with what it decided, in any SQLAlchemy database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import BigInteger, Boolean, Integer, Text, create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool

from hardware_sim.province_checks import stream_of


class _Base(DeclarativeBase):
    pass


class StoredResult(_Base):
    __tablename__ = "province_results"

    result_id: Mapped[str] = mapped_column(Text, primary_key=True)
    site: Mapped[str] = mapped_column(Text, index=True)
    station: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(Integer)
    attempt_id: Mapped[str] = mapped_column(Text)
    document: Mapped[str] = mapped_column(Text)
    stored_utc_ns: Mapped[int] = mapped_column(BigInteger)


class Rejection(_Base):
    __tablename__ = "province_rejections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    result_id: Mapped[str] = mapped_column(Text, index=True)
    site: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    utc_ns: Mapped[int] = mapped_column(BigInteger)


class StoredAcceptance(_Base):
    """A site-check probe or report, kept whatever the verdict (a rejected one shows the province's
    side of a key that does not match)."""

    __tablename__ = "province_acceptances"

    acceptance_id: Mapped[str] = mapped_column(Text, primary_key=True)
    site: Mapped[str] = mapped_column(Text, index=True)
    kind: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    """stored or rejected."""
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    signature_ok: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    document: Mapped[str] = mapped_column(Text)
    utc_ns: Mapped[int] = mapped_column(BigInteger)


def open_store(url: str) -> Engine:
    """An engine on `url` with the province's tables created; a SQLite file in WAL with synchronous FULL."""
    if url in ("sqlite://", "sqlite:///:memory:"):
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            @event.listens_for(engine, "connect")
            def _wal(dbapi_connection: Any, _record: Any) -> None:
                cur = dbapi_connection.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.close()
    _Base.metadata.create_all(engine)
    return engine


def stored_results(engine: Engine) -> Iterator[tuple[str, str, int, int]]:
    """(result_id, stream, seq, stored_utc_ns) of every result stored: what a restarted province
    deduplicates and counts seqs against (the stream is the site's, or its box's: `stream_of`)."""
    with Session(engine) as s:
        for rid, site, seq, at, document in s.execute(select(
                StoredResult.result_id, StoredResult.site, StoredResult.seq, StoredResult.stored_utc_ns,
                StoredResult.document)):
            box = json.loads(document).get("box") if '"box"' in document else None
            yield rid, stream_of(site, box), seq, at
