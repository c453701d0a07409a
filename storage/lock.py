"""Per-game locks: two runs on the same output root never process the same game at the same time.

The rule. Before a run prepares a game it takes the game's lock, ``<root>/locks/<game_id>.lock``, a small
JSON record (run id, a token of this acquisition, host, process id and start time, expiry). The run that
creates the lock first processes the game; creating it is atomic:

- S3: ``PutObject`` with ``If-None-Match: *`` (a conditional create; ``412`` means another run holds it).
  A create whose reply was lost and that botocore retried ends in ``412`` too; the lock is then read back
  and is ours when it holds our token (create, then verify). Takeover, refresh and release are
  conditional on the ETag that was read (``If-Match``), so they never overwrite another run's lock.
- local folder: every check-and-write happens under an exclusive ``fcntl.flock`` of
  ``<root>/locks/.mutex`` (also across hosts on NFS with working locks).

A run that finds a game locked by another live run leaves it for later and tries again every
:data:`POLL_S` seconds (less often for long lists), meanwhile working on the games it could lock. Once it
holds the lock it reads the game's manifest again: a game the other run committed is skipped as up to
date, a game it failed (or left unfinished) is processed. So when two runs overlap, each game is processed
by one of them and committed once, and both end when every game is committed; each exits as it would
alone (0, or 1 when a game failed). A run locks all the games it has to process as it starts, so of two
runs started together the first to list the games usually processes them all while the other waits and
then reports them as skipped (up to date); ``--force`` makes the waiting run redo them after the first.

A lock is stale, and is taken over, when its expiry has passed (the holder refreshes it every
``ttl_s / 4`` seconds while it works on the game, ``ttl_s`` = :data:`LOCK_TTL_S` by default), or at once
when it names a process on this host that no longer runs (a run killed with SIGKILL). Clocks of hosts
sharing an output root are assumed to agree to well within ``ttl_s``. Before committing, a run checks that
it still holds the lock (:meth:`GameLocks.lost`); if its lock was taken over it writes no manifest.
Locks are removed when their game is finished, so ``locks/`` is empty (but for ``.mutex``) between runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fsspec.asyn import sync

from matchflow.storage import fs

log = logging.getLogger(__name__)

#: Seconds a lock stays valid without being refreshed by its holder.
LOCK_TTL_S = 60.0
#: Seconds between two attempts to take a lock held by another run.
POLL_S = 2.0

_HOST = socket.gethostname()


def lock_url(root: str, game_id: str) -> str:
    """Where the lock of ``game_id`` lives under the output root ``root``."""
    return fs.join(fs.normalize(root), "locks", f"{game_id}.lock")


def _process_start(pid: int) -> float | None:
    """Start time of process ``pid`` on this host (None when it does not run)."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def stale_reason(record: dict[str, Any], now: float | None = None) -> str | None:
    """Why a lock record no longer protects anything (None while its holder is live)."""
    now = time.time() if now is None else now
    if float(record.get("expires_at", 0)) < now:
        return f"expired at {record.get('expires_at')}"
    if record.get("host") == _HOST:
        started = _process_start(int(record.get("pid", -1)))
        if started is None or abs(started - float(record.get("pid_started", 0))) > 1.0:
            return f"process {record.get('pid')} on {_HOST} is gone"
    return None


class _LocalBackend:
    """Lock files in a local folder; every operation runs under an exclusive flock of ``.mutex``."""

    def __init__(self, root: str) -> None:
        self.dir = os.path.join(fs.normalize(root), "locks")

    @contextlib.contextmanager
    def _mutex(self) -> Iterator[None]:
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, ".mutex"), "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    @staticmethod
    def _read(url: str) -> bytes | None:
        try:
            with open(url, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def read(self, url: str) -> tuple[bytes | None, Any]:
        with self._mutex():
            data = self._read(url)
        return data, data

    def create(self, url: str, data: bytes) -> Any | None:
        with self._mutex():
            if self._read(url) is not None:
                return None
            fs.write_bytes_atomic(url, data)
        return data

    def replace(self, url: str, data: bytes, version: Any) -> Any | None:
        with self._mutex():
            if self._read(url) != version:
                return None
            fs.write_bytes_atomic(url, data)
        return data

    def delete(self, url: str, version: Any) -> bool:
        with self._mutex():
            if self._read(url) != version:
                return False
            os.unlink(url)
        return True


class _S3Backend:
    """Lock objects on S3: conditional create (If-None-Match) and ETag-conditional replace and delete."""

    def __init__(self, root: str, storage_options: dict[str, Any] | None) -> None:
        self.fs = fs.filesystem(root, storage_options)

    def _call(self, method: str, **kwargs: Any) -> Any:
        return sync(self.fs.loop, self.fs._call_s3, method, **kwargs)

    @staticmethod
    def _code(exc: BaseException) -> str:
        cause = exc if hasattr(exc, "response") else exc.__cause__
        while cause is not None and not hasattr(cause, "response"):
            cause = cause.__cause__
        return str(getattr(cause, "response", {}).get("Error", {}).get("Code", "")) if cause else ""

    def read(self, url: str) -> tuple[bytes | None, Any]:
        bucket, key, _ = self.fs.split_path(url)

        async def get() -> tuple[bytes, str]:
            resp = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
            try:
                return await resp["Body"].read(), resp["ETag"]
            finally:
                resp["Body"].close()

        try:
            return sync(self.fs.loop, get)
        except FileNotFoundError:
            return None, None

    def create(self, url: str, data: bytes) -> Any | None:
        bucket, key, _ = self.fs.split_path(url)
        try:
            resp = self._call("put_object", Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except FileExistsError:
            return None
        return resp["ETag"]

    def replace(self, url: str, data: bytes, version: Any) -> Any | None:
        bucket, key, _ = self.fs.split_path(url)
        try:
            resp = self._call("put_object", Bucket=bucket, Key=key, Body=data, IfMatch=version)
        except (FileNotFoundError, OSError) as exc:
            if isinstance(exc, FileNotFoundError) or self._code(exc) in ("PreconditionFailed", "412"):
                return None
            raise
        return resp["ETag"]

    def delete(self, url: str, version: Any) -> bool:
        bucket, key, _ = self.fs.split_path(url)
        try:
            self._call("delete_object", Bucket=bucket, Key=key, IfMatch=version)
        except FileNotFoundError:
            return True  # gone already (a retried delete whose first reply was lost)
        except OSError as exc:
            if self._code(exc) in ("PreconditionFailed", "412"):
                return False
            raise
        return True


class GameLocks:
    """The game locks of one run on one output root, refreshed by a background thread while held.

    Use as a context manager: leaving it stops the refresh and releases every lock still held.
    """

    def __init__(
        self,
        root: str,
        run_id: str,
        storage_options: dict[str, Any] | None = None,
        ttl_s: float = LOCK_TTL_S,
    ) -> None:
        self.root, self.run_id, self.ttl_s = fs.normalize(root), run_id, ttl_s
        self.backend: _LocalBackend | _S3Backend = (
            _S3Backend(self.root, storage_options) if fs.is_remote(self.root) else _LocalBackend(self.root)
        )
        self._held: dict[str, tuple[dict[str, Any], Any]] = {}  # game id -> (our record, its version)
        self._lost: dict[str, str] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GameLocks:
        self._thread = threading.Thread(target=self._heartbeat, name="matchflow-game-locks", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for gid in list(self._held):
            self.release(gid)

    def _record(self, game_id: str, token: str) -> dict[str, Any]:
        now = time.time()
        pid = os.getpid()
        return {
            "game_id": game_id, "run_id": self.run_id, "token": token, "host": _HOST, "pid": pid,
            "pid_started": _process_start(pid), "acquired_at": now, "expires_at": now + self.ttl_s,
        }

    @staticmethod
    def _decode(data: bytes | None) -> dict[str, Any] | None:
        if data is None:
            return None
        try:
            rec = json.loads(data)
        except ValueError:
            return {"expires_at": 0, "run_id": "?", "token": "?"}  # unreadable: treated as stale
        return rec if isinstance(rec, dict) else {"expires_at": 0, "run_id": "?", "token": "?"}

    def acquire(self, game_id: str) -> tuple[bool, dict[str, Any] | None]:
        """Try to take the lock of ``game_id``: ``(True, our record)``, or ``(False, the live holder's record)``.

        A stale lock is taken over. Storage errors propagate (OSError naming the lock's URL).
        """
        url = lock_url(self.root, game_id)
        token = uuid.uuid4().hex
        for _ in range(5):  # a few rounds: another run may take over or release in between
            rec = self._record(game_id, token)
            data = json.dumps(rec, sort_keys=True).encode()
            version = self.backend.create(url, data)
            if version is not None:
                break
            current, version = self.backend.read(url)
            holder = self._decode(current)
            if holder is None:
                continue  # released in between: create again
            if holder.get("token") == token:
                break  # our own create, whose reply was lost and retried
            reason = stale_reason(holder)
            if reason is None:
                return False, holder
            log.warning("taking over the lock of %s from run %s: %s", game_id, holder.get("run_id"), reason)
            self.backend.delete(url, version)
        else:
            current, _ = self.backend.read(url)
            return False, self._decode(current)
        with self._guard:
            self._held[game_id] = (rec, version)
            self._lost.pop(game_id, None)
        return True, rec

    def lost(self, game_id: str) -> str | None:
        """Why this run no longer holds the lock of ``game_id`` (None while it does)."""
        if game_id in self._lost:
            return self._lost[game_id]
        with self._guard:
            held = self._held.get(game_id)
        if held is None:
            return f"run {self.run_id} does not hold the lock of {game_id}"
        current, _ = self.backend.read(lock_url(self.root, game_id))
        holder = self._decode(current)
        if holder is None or holder.get("token") != held[0]["token"]:
            who = "nobody" if holder is None else f"run {holder.get('run_id')}"
            return f"lock {lock_url(self.root, game_id)} was taken over; it is now held by {who}"
        return None

    def release(self, game_id: str) -> None:
        """Remove our lock of ``game_id`` (never another run's); errors are logged, not raised."""
        with self._guard:
            held = self._held.pop(game_id, None)
        if held is None:
            return
        url = lock_url(self.root, game_id)
        try:
            current, version = self.backend.read(url)
            holder = self._decode(current)
            if holder is not None and holder.get("token") == held[0]["token"]:
                self.backend.delete(url, version)
        except Exception as exc:  # it expires by itself
            log.warning("could not release %s: %s", url, exc)

    def refresh(self) -> None:
        """Push the expiry of every lock held forward by ``ttl_s``; a lock found taken over is recorded lost."""
        with self._guard:
            held = dict(self._held)
        for gid, (rec, version) in held.items():
            url = lock_url(self.root, gid)
            new = {**rec, "expires_at": time.time() + self.ttl_s}
            try:
                got = self.backend.replace(url, json.dumps(new, sort_keys=True).encode(), version)
                if got is None:
                    current, got = self.backend.read(url)
                    holder = self._decode(current)
                    if holder is None or holder.get("token") != rec["token"]:
                        self._lost[gid] = f"lock {url} was taken over by run {holder and holder.get('run_id')}"
                        with self._guard:
                            self._held.pop(gid, None)
                        continue
                    new = holder
            except Exception as exc:  # a storage hiccup: try again at the next beat
                log.warning("could not refresh %s: %s", url, exc)
                continue
            with self._guard:
                if gid in self._held:
                    self._held[gid] = (new, got)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            self.refresh()
