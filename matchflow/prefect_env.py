"""Prefect, quiet and offline: settings, and a local API server for runs with no setup.

Without ``PREFECT_API_URL`` every Dask worker process would start its own ephemeral server on the same
SQLite file. ``local_api`` starts one server on 127.0.0.1 with a database of its own and exports its
URL before any worker is spawned, so workers inherit it.

The local server's database is kept between runs in a slot of the user's cache folder
(``$MATCHFLOW_STATE_DIR`` or ``~/.cache/matchflow``, ``prefect/slot-N``): a fresh SQLite database spends about 7
of the server's 10 s start-up in its schema migrations, a migrated one starts in about 3 s. Each process holds
its slot under an exclusive file lock, so concurrent runs never share a database; a database that has grown past
:data:`MAX_DB_BYTES` (the history of many runs) or that the server cannot open is started afresh. Where no slot
can be had, a temporary folder is used as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

QUIET_OFFLINE = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "1",
}


def apply_quiet_offline(log_level: str = "WARNING") -> None:
    """Set Prefect's offline and quiet settings (values already in the environment win)."""
    for k, v in QUIET_OFFLINE.items():
        os.environ.setdefault(k, v)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", log_level)


#: A kept database larger than this (bytes) is started afresh: it only holds the history of past runs.
MAX_DB_BYTES = 256 * 2**20

#: Slots tried for a kept database before falling back to a temporary folder.
SLOTS = 16

log = logging.getLogger(__name__)


def state_dir() -> Path:
    """The folder of Matchflow's per-user state: ``$MATCHFLOW_STATE_DIR`` or ``$XDG_CACHE_HOME/matchflow``."""
    if os.environ.get("MATCHFLOW_STATE_DIR"):
        return Path(os.environ["MATCHFLOW_STATE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matchflow"


@contextlib.contextmanager
def _prefect_home() -> Iterator[Path]:
    """A Prefect home for this process's local server: the first free slot of :func:`state_dir` (held under an
    exclusive lock until exit), or a temporary folder when none can be had."""
    root = state_dir() / "prefect"
    for i in range(SLOTS):
        slot = root / f"slot-{i}"
        try:
            slot.mkdir(parents=True, exist_ok=True)
            fh = open(slot / ".lock", "w")  # held until the slot is released
        except OSError:
            break  # the state folder cannot be written: a temporary folder instead
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another process holds this slot
            fh.close()
            continue
        try:
            db = slot / "prefect.db"
            if db.exists() and db.stat().st_size > MAX_DB_BYTES:
                _forget_database(slot)
            yield slot
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
        return
    with tempfile.TemporaryDirectory(prefix="matchflow-prefect-") as home:
        yield Path(home)


def _flush_api_logs() -> None:
    """Send the logs this process still holds for the Prefect API (best effort)."""
    try:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
    except Exception as exc:  # a log that cannot be sent is no reason to fail the run
        log.debug("flushing the Prefect API logs failed: %s", exc)


def _forget_database(home: Path) -> None:
    """Remove the Prefect database (and SQLite's side files) of a home."""
    for name in ("prefect.db", "prefect.db-wal", "prefect.db-shm", "prefect.db-journal"):
        (home / name).unlink(missing_ok=True)
    shutil.rmtree(home / "storage", ignore_errors=True)


@contextlib.contextmanager
def local_api() -> Iterator[str]:
    """Yield a Prefect API URL: the configured one, or a local server's (see the module docstring).

    The local server stops on exit.
    """
    apply_quiet_offline()
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import (
        PREFECT_API_DATABASE_CONNECTION_URL,
        PREFECT_API_URL,
        PREFECT_HOME,
        temporary_settings,
    )

    with _prefect_home() as home_path:
        home = str(home_path)
        db = f"sqlite+aiosqlite:///{home}/prefect.db"
        saved = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_API_URL")}
        timeout = int(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"])
        with temporary_settings(updates={PREFECT_HOME: home, PREFECT_API_DATABASE_CONNECTION_URL: db}):
            server = SubprocessASGIServer()
            try:
                server.start(timeout=timeout)
            except Exception as exc:  # a kept database the server cannot open: start afresh, once
                if not (home_path / "prefect.db").exists():
                    raise
                log.warning("the local Prefect server did not start on its kept database (%s); starting afresh", exc)
                server.stop()
                SubprocessASGIServer._instances.pop(server._instance_key, None)
                _forget_database(home_path)
                server = SubprocessASGIServer()
                server.start(timeout=timeout)
        # spawned Dask workers read the environment; this process reads the settings context
        os.environ.update(PREFECT_HOME=home, PREFECT_API_DATABASE_CONNECTION_URL=db, PREFECT_API_URL=server.api_url)
        try:
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
                try:
                    yield server.api_url
                finally:
                    _flush_api_logs()  # while the server still listens: no "Error logging to API" at exit
        finally:
            server.stop()
            SubprocessASGIServer._instances.pop(server._instance_key, None)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
