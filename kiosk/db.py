"""Engine and sessions; no Flask here, so the worker and the domain can use it."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session, sessionmaker

# True while the current unit of work will write: SQLite then takes the write lock at
# BEGIN (BEGIN IMMEDIATE) instead of failing midway; readers use plain BEGIN and never
# queue behind writers.
write_intent: ContextVar[bool] = ContextVar("write_intent", default=False)
# True for the one write that must never wait behind others: the tap that raises an alert.
write_urgent: ContextVar[bool] = ContextVar("write_urgent", default=False)

# Set on a connection before its transaction begins: this transaction writes (and, for
# the tap, must not wait behind others). Unlike write_intent, it belongs to one session.
WRITE_OPTION = "kiosk_write"
URGENT_OPTION = "kiosk_urgent"
# How long a writer waits for the SQLite writer lock before it gives up with an error.
WRITE_LOCK_TIMEOUT_SECONDS = 30.0

log = logging.getLogger(__name__)

AFTER_COMMIT_HOOKS = "after_commit_hooks"
# Outbox rows leased to this process's deliverer, handed over after the commit.
HANDOFF_KEY = "outbox_handoff"


def make_engine(
    url: str, lock_timeout: float = WRITE_LOCK_TIMEOUT_SECONDS, **kwargs: Any
) -> Engine:
    """Create an engine; SQLite gets WAL, FULL sync, foreign keys and IMMEDIATE writes."""
    if url.startswith("sqlite"):
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("timeout", 30)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        private_sqlite_files(engine.url.database)
        _prepare_sqlite(engine, lock_timeout)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def private_sqlite_files(database: str | None) -> None:
    """Create the database file 0600 in a 0700 folder, before SQLite creates it 0644.

    SQLite gives the -wal and -shm files the database file's mode; older ones are narrowed.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = os.path.abspath(database)
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # makedirs' mode is narrowed by the umask, never widened
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(name, 0o600)


class WriterLockError(RuntimeError):
    """The SQLite writer lock could not be taken: waited too long, or taken twice."""


class _UrgentFirstLock:
    """A lock for the threads of one process that lets urgent waiters go first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._urgent_waiting = 0

    def acquire(self, urgent: bool, timeout: float) -> None:
        me = threading.get_ident()
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._owner == me:
                # The same thread opening a second writer would wait for itself forever.
                raise WriterLockError(
                    "this thread already holds the database writer lock: a unit of work "
                    "was opened inside another one"
                )
            if urgent:
                self._urgent_waiting += 1
            try:
                while self._owner is not None or (not urgent and self._urgent_waiting):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise WriterLockError(f"waited {timeout:g} s for the database writer lock")
                    self._cond.wait(left)
            finally:
                if urgent:
                    self._urgent_waiting -= 1
            self._owner = me

    def release(self) -> None:
        with self._cond:
            self._owner = None
            self._cond.notify_all()


class WriterLock:
    """Queue writers to one SQLite file: threads on a lock (urgent first), processes on flock.

    SQLite's own busy handler makes a waiting writer sleep and poll, so under load the
    write lock often sits free while waiters sleep, and a writer can be passed over for
    seconds. Taking this lock before BEGIN IMMEDIATE hands the database to the next
    writer the moment the last one commits, and a tap that raises an alert goes first.
    Waiting has a limit (timeout) and a thread that asks twice is refused at once.
    """

    def __init__(self, path: str, timeout: float = WRITE_LOCK_TIMEOUT_SECONDS) -> None:
        self.path = path
        self.timeout = timeout
        self._thread_lock = _UrgentFirstLock()
        self._fd: int | None = None
        self._held: int | None = None  # the descriptor holding the flock

    def acquire(self, urgent: bool = False) -> None:
        began = time.monotonic()
        self._thread_lock.acquire(urgent, self.timeout)
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._flock(self.timeout - (time.monotonic() - began))
        except BaseException:
            self._thread_lock.release()
            raise

    def _flock(self, left: float) -> None:
        """Take the lock between processes, waiting at most `left` seconds."""
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._held = self._fd
            return
        except BlockingIOError:
            pass
        # Another process writes. Wait in the kernel, which hands over the lock the moment
        # that process lets go; a helper thread waits so that this one can give up on time.
        fd = _FlockWaiter(self.path).result(left)
        if fd is None:
            raise WriterLockError(
                f"waited {self.timeout:g} s for the database writer lock held by another process"
            )
        self._held = fd

    def release(self) -> None:
        try:
            held, self._held = self._held, None
            if held is not None:
                fcntl.flock(held, fcntl.LOCK_UN)
                if held != self._fd:
                    os.close(held)
        finally:
            self._thread_lock.release()


class _FlockWaiter:
    """One blocking flock on a descriptor of its own, in a helper thread. If the caller
    gives up first, the helper lets the lock go (closes its descriptor) once it gets it."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._wanted = True
        self._failed = False
        threading.Thread(target=self._wait, name="writer-lock-wait", daemon=True).start()

    def _wait(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            taken = True
        except OSError:
            log.exception("database writer lock: flock failed")
            taken = False
        with self._lock:
            if taken and self._wanted:
                self._done.set()
                return
            self._wanted = False
            self._done.set()
        os.close(self.fd)  # gave up, or failed: closing lets the lock go

    def result(self, timeout: float) -> int | None:
        """The descriptor that now holds the lock, or None if it was not taken in time."""
        self._done.wait(max(0.0, timeout))
        with self._lock:
            if self._done.is_set() and self._wanted:
                return self.fd
            self._wanted = False
            return None


def _driver(connection: Any) -> Any:
    """The sqlite3 connection behind whatever SQLAlchemy hands an event."""
    return getattr(connection, "driver_connection", None) or connection


def _prepare_sqlite(engine: Engine, lock_timeout: float) -> None:
    database = engine.url.database
    lock = (
        WriterLock(f"{database}-writer.lock", lock_timeout)
        if database and database != ":memory:"
        else None
    )
    holders: set[int] = set()  # ids of sqlite3 connections that hold the writer lock
    holders_lock = threading.Lock()

    def release(connection: Any) -> None:
        key = id(_driver(connection))
        with holders_lock:
            if key not in holders:
                return
            holders.discard(key)
        assert lock is not None
        lock.release()

    if lock is not None:
        dialect = engine.dialect
        do_commit, do_rollback = dialect.do_commit, dialect.do_rollback

        # The connection events fire before the COMMIT is sent; the lock must outlive it.
        def commit_then_release(dbapi_connection: Any) -> None:
            try:
                do_commit(dbapi_connection)
            finally:
                release(dbapi_connection)

        def rollback_then_release(dbapi_connection: Any) -> None:
            try:
                do_rollback(dbapi_connection)
            finally:
                release(dbapi_connection)

        dialect.do_commit = commit_then_release  # type: ignore[method-assign]
        dialect.do_rollback = rollback_then_release  # type: ignore[method-assign]

        @event.listens_for(engine, "checkin")
        def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
            release(dbapi_connection)  # never leave the lock held by an idle connection

        @event.listens_for(engine, "invalidate")
        def _on_invalidate(dbapi_connection: Any, _record: Any, _exc: Any) -> None:
            release(dbapi_connection)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling is switched off so that BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if not (options.get(WRITE_OPTION) or write_intent.get()):
            connection.exec_driver_sql("BEGIN")
            return
        key = id(_driver(connection.connection))
        if lock is not None:
            with holders_lock:
                held = key in holders
            if not held:
                try:
                    lock.acquire(urgent=bool(options.get(URGENT_OPTION) or write_urgent.get()))
                except WriterLockError as exc:
                    log.error("database writer lock not taken: %s", exc)
                    raise
                with holders_lock:
                    holders.add(key)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            release(connection.connection)
            raise


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(engine, expire_on_commit=False)

    @event.listens_for(factory, "after_commit")
    def _run_after_commit(session: Session) -> None:
        hooks: list[Callable[[], None]] = session.info.pop(AFTER_COMMIT_HOOKS, [])
        for hook in hooks:
            hook()

    @event.listens_for(factory, "after_rollback")
    def _forget_hooks(session: Session) -> None:
        session.info.pop(AFTER_COMMIT_HOOKS, None)
        session.info.pop(HANDOFF_KEY, None)

    return factory


def after_commit(session: Session, hook: Callable[[], None]) -> None:
    """Run hook once the session's transaction has committed (never on rollback)."""
    hooks = session.info.setdefault(AFTER_COMMIT_HOOKS, [])
    if hook not in hooks:
        hooks.append(hook)


@contextlib.contextmanager
def unit_of_work(factory: sessionmaker[Session], *, urgent: bool = False) -> Iterator[Session]:
    """One write: a session whose transaction takes the write lock at BEGIN, commits once
    when the block ends (rolls back if it raises), and is closed. Load the row you act on
    with `locked()`, decide on it, change it; render only after the block."""
    session = factory()
    try:
        session.connection(execution_options={WRITE_OPTION: True, URGENT_OPTION: urgent})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


T = TypeVar("T")


def locked(session: Session, model: type[T], row_id: int) -> T | None:
    """Load one row for update: FOR UPDATE on PostgreSQL (SQLite's BEGIN IMMEDIATE already
    holds every other writer off), refreshed from the database, not from the session."""
    return session.scalar(
        select(model)  # type: ignore[arg-type]
        .where(model.id == row_id)  # type: ignore[attr-defined]
        .with_for_update()
        .execution_options(populate_existing=True)
    )


@contextlib.contextmanager
def urgent() -> Iterator[None]:
    """Mark the enclosed write as the one that must not wait behind others."""
    token = write_urgent.set(True)
    try:
        yield
    finally:
        write_urgent.reset(token)


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Mark the enclosed unit of work as a writer (for CLI commands and workers)."""
    token = write_intent.set(True)
    try:
        yield
    finally:
        write_intent.reset(token)
