"""The database side every service shares: engine, migrations, unit of work, messaging tables.

A use case runs inside one UnitOfWork: its state change, the events it will publish (the outbox)
and, for an event handler, the id of the event it processed, all commit together or not at all.
Rule: never do network I/O (SMTP, RPC, broker) inside a unit of work. Under eventlet a blocked
SQLite writer stalls the whole process, and a long transaction holds locks for others.
"""

from __future__ import annotations

import functools
import json
import logging
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from lob_common.contracts import Event, dump_event, new_event
from lob_common.logging import correlation_id

log = logging.getLogger(__name__)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store times in UTC with a tzinfo")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def json_ready(value: Any) -> Any:
    """A value for a JSON column or event payload: datetimes as ISO 8601, tuples as lists."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def messaging_tables(metadata: MetaData) -> None:
    """Add the outbox and the processed-events table to a service's metadata."""
    Table(
        "outbox",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("event_type", String(64), nullable=False),
        Column("body", JSON, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("published_at", UTCDateTime, nullable=True, index=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
    )
    Table(
        "processed_events",
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("handler", String(128), primary_key=True),
        Column("processed_at", UTCDateTime, nullable=False),
    )


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata() -> MetaData:
    """A service's MetaData: our constraint naming convention plus the messaging tables."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    messaging_tables(metadata)
    return metadata


def make_engine(url: str) -> Engine:
    """An engine with the settings our access pattern needs on each backend."""
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Erasure really erases (AVG): deleted rows are overwritten, not left in free pages.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def migrate(engine: Engine, script_location: str | Path, lock_name: str = "") -> None:
    """Bring the schema to the newest Alembic revision.

    On PostgreSQL, replicas starting together take an advisory lock so only one migrates.
    """
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(script_location))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # SQLite changes a table by copying it, dropping it and renaming the copy (Alembic's
            # batch mode), which foreign keys of rows in other tables refuse half-way. Off
            # during the migration (it must be set outside a transaction), checked after it.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin():
            if engine.dialect.name == "postgresql":
                key = zlib.crc32(f"lob-migrate:{lock_name or script_location}".encode())
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            connection.commit()
            if broken:
                raise RuntimeError(f"migration left rows without their parent: {broken[:5]}")


def run_migrations_online(target_metadata: MetaData) -> None:
    """The body of every service's migrations/env.py (one way to run Alembic)."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:
        url = context.config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("run migrations with `lob migrate SERVICE` (no database URL given)")
        with make_engine(url).begin() as connection:
            _configure_and_run(context, connection, target_metadata)
        return
    _configure_and_run(context, connection, target_metadata)


def _configure_and_run(context: Any, connection: Any, target_metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _outbox_row(evt: Event, now: datetime) -> dict[str, Any]:
    """An event as its outbox row. The body is the JSON text the relay will publish, encoded
    once here (the JSON column's own encoder would make the same text from the dict)."""
    return {
        "event_id": evt.event_id,
        "event_type": evt.event_type,
        "body": json.dumps(dump_event(evt)),
        "created_at": now,
        "attempts": 0,
    }


@functools.cache
def _outbox_insert(outbox: Table) -> Any:
    """The INSERT of outbox rows as _outbox_row gives them: the body bound as the text it
    already is (PostgreSQL takes it as json, SQLite stores it as is), built once per table."""
    return insert(outbox).values(body=bindparam("body", type_=Text()))


class UnitOfWork:
    """One transaction: state changes + outgoing events + processed incoming event ids."""

    def __init__(
        self,
        session_factory: sessionmaker,
        metadata: MetaData,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._outbox = metadata.tables["outbox"]
        self._insert_outbox = _outbox_insert(self._outbox)
        self._processed = metadata.tables["processed_events"]
        self._on_commit = on_commit
        self._emitted = 0
        self.session: Session

    def __enter__(self) -> UnitOfWork:
        self.session = self._session_factory()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # close() ends any open transaction (uncommitted work is rolled back) without expiring
        # what was loaded, so objects read inside stay readable after the block.
        self.session.close()

    def emit(self, event_type: str, payload: dict[str, Any]) -> Event:
        """Validate an event against its contract and put it in the outbox of this transaction."""
        evt = new_event(event_type, payload, correlation_id=correlation_id.get())
        # On the session's connection, as Core: the ORM's execute path costs more than the row.
        self.session.connection().execute(self._insert_outbox, _outbox_row(evt, utcnow()))
        self._emitted += 1
        return evt

    def emit_many(self, event_type: str, payloads: Sequence[dict[str, Any]]) -> list[Event]:
        """emit() for many events of one type, in one INSERT (a class roster's sign-ups)."""
        events = [new_event(event_type, p, correlation_id=correlation_id.get()) for p in payloads]
        if not events:
            return events
        now = utcnow()
        self.session.execute(self._insert_outbox, [_outbox_row(evt, now) for evt in events])
        self._emitted += len(events)
        return events

    def claim(self, evt: Event) -> bool:
        """Record that the receiving handler processes `evt`; False if it already did."""
        if not evt.handler:
            raise ValueError("claim() needs an event as delivered to a handler")
        key = {"event_id": evt.event_id, "handler": evt.handler}
        seen = self.session.execute(select(self._processed.c.event_id).filter_by(**key)).first()
        if seen:
            return False
        # Two replicas racing on one redelivered event: the loser's commit fails on the primary
        # key, its message is retried, and the retry finds the claim above and changes nothing.
        self.session.execute(insert(self._processed).values(**key, processed_at=utcnow()))
        return True

    def claim_many(self, events: Sequence[Event]) -> list[Event]:
        """claim() for a batch of events delivered to one handler, in two statements: the
        events not processed before (each once, in the order given), now recorded as processed."""
        if not events:
            return []
        handler = events[0].handler
        if not handler or any(e.handler != handler for e in events):
            raise ValueError("claim_many() needs events as delivered to one handler")
        ids = list(dict.fromkeys(e.event_id for e in events))
        seen = set(
            self.session.scalars(
                select(self._processed.c.event_id).where(
                    self._processed.c.handler == handler, self._processed.c.event_id.in_(ids)
                )
            )
        )
        fresh = list({e.event_id: e for e in events if e.event_id not in seen}.values())
        if fresh:
            now = utcnow()
            self.session.execute(
                insert(self._processed),
                [{"event_id": e.event_id, "handler": handler, "processed_at": now} for e in fresh],
            )
        return fresh

    def commit(self) -> None:
        self.session.commit()
        if self._emitted and self._on_commit:
            self._on_commit()
        self._emitted = 0


class DatabaseHandle:
    """What a service worker gets: open units of work, reach the engine."""

    def __init__(
        self, engine: Engine, metadata: MetaData, on_commit: Callable[[], None] | None = None
    ) -> None:
        self.engine = engine
        self.metadata = metadata
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._on_commit = on_commit

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self._sessions, self.metadata, self._on_commit)

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))


P = ParamSpec("P")


def idempotent(
    effect: Callable[Concatenate[UnitOfWork, Event, P], None],
) -> Callable[Concatenate[DatabaseHandle, Event, P], bool]:
    """An event handler that applies `effect(uow, event, ...)` at most once per event.

    The one idempotent-consumer pattern: claim the event id for the receiving handler, apply the
    effect and commit, all in one transaction. The handler is called with the DatabaseHandle
    instead of a unit of work and returns False when the event was applied before (a
    redelivery), True otherwise.
    """

    @functools.wraps(effect)
    def handle(db: DatabaseHandle, event: Event, *args: P.args, **kwargs: P.kwargs) -> bool:
        with db() as uow:
            if not uow.claim(event):
                return False
            effect(uow, event, *args, **kwargs)
            uow.commit()
            return True

    return handle


def idempotent_batch(
    effect: Callable[Concatenate[UnitOfWork, list[Event], P], None],
) -> Callable[Concatenate[DatabaseHandle, list[Event], P], int]:
    """`idempotent` for a batch of events of one handler (lob_common.batch): claim the ones not
    seen before, apply the effect to those, commit, all in one transaction. The handler returns
    how many were new (0: every one was a redelivery)."""

    @functools.wraps(effect)
    def handle(db: DatabaseHandle, events: list[Event], *args: P.args, **kwargs: P.kwargs) -> int:
        with db() as uow:
            fresh = uow.claim_many(events)
            if fresh:
                effect(uow, fresh, *args, **kwargs)
            uow.commit()
            return len(fresh)

    return handle
