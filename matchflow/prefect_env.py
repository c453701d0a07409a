"""Prefect, quiet and offline: settings, and a local API server for runs with no setup.

Without ``PREFECT_API_URL`` every Dask worker process would start its own ephemeral server on the same
SQLite file. ``local_api`` starts one server on 127.0.0.1 with a database of its own and exports its
URL before any worker is spawned, so workers inherit it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

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


@contextlib.contextmanager
def local_api() -> Iterator[str]:
    """Yield a Prefect API URL: the configured one, or a temporary local server's.

    The temporary server keeps its database in a temporary folder and stops on exit.
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

    with tempfile.TemporaryDirectory(prefix="matchflow-prefect-") as home:
        db = f"sqlite+aiosqlite:///{home}/prefect.db"
        saved = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_API_URL")}
        with temporary_settings(updates={PREFECT_HOME: home, PREFECT_API_DATABASE_CONNECTION_URL: db}):
            server = SubprocessASGIServer()
            server.start(timeout=int(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))
        # spawned Dask workers read the environment; this process reads the settings context
        os.environ.update(PREFECT_HOME=home, PREFECT_API_DATABASE_CONNECTION_URL=db, PREFECT_API_URL=server.api_url)
        try:
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
                yield server.api_url
        finally:
            server.stop()
            SubprocessASGIServer._instances.pop(server._instance_key, None)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
