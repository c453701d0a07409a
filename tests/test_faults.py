"""Fault behaviour of a corpus run: S3 errors and slowness, a Dask worker killed mid-chunk, two concurrent runs.

The S3 tests put :class:`FaultProxy`, a small threaded HTTP proxy on 127.0.0.1, between the run and the moto
server; it forwards every request and, by a schedule, answers some with 503 SlowDown or 500 InternalError
or delays them.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
import s3fs

from matchflow.config import PipelineConfig
from matchflow.flows.corpus import run_corpus
from matchflow.flows.summary import RunSummary
from matchflow.storage import fs as mfs
from matchflow.storage.corpus import game_id
from matchflow.storage.layout import OutputLayout, part_name
from matchflow.storage.lock import GameLocks, lock_url, stale_reason
from matchflow.storage.query import connect
from matchflow.synth.indexed_video import write_test_video
from matchflow.video import sample_indices

#: What the proxy does with one request: None (forward it), "slowdown" (503 SlowDown, not forwarded),
#: "reject" (500 InternalError, not forwarded), "internal" (forwarded, then 500 InternalError: the request
#: took effect but the client cannot know) or ("delay", seconds) (forwarded after that delay).
Action = str | tuple[str, float] | None
#: The proxy's schedule: (method, index of the request among those of its method (1-based), path) -> Action.
Schedule = Callable[[str, int, str], Action]

_ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "reject": (500, "InternalError", "We encountered an internal error. Please try again."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
}
_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection", "content-length"}


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 in front of an S3 endpoint, injecting faults by a schedule.

    ``counts`` holds how many requests got each action (``forwarded`` for the untouched ones), and
    ``faults`` the (method, path, action) of every injected fault. With ``max_consecutive``, a request whose
    last ``max_consecutive`` attempts (same method and path) all got an error is forwarded: a transient
    fault that clears within the client's retry budget.
    """

    def __init__(self, upstream: str, schedule: Schedule | None = None, max_consecutive: int | None = None) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.schedule: Schedule = schedule or (lambda method, k, path: None)
        self.counts: Counter[str] = Counter()
        self.faults: list[tuple[str, str, str]] = []
        self._per_method: Counter[str] = Counter()
        self._streak: Counter[tuple[str, str]] = Counter()
        self.max_consecutive = max_consecutive
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
        self.server.daemon_threads = True
        self.server.proxy = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def decide(self, method: str, path: str) -> Action:
        with self._lock:
            self._per_method[method] += 1
            action = self.schedule(method, self._per_method[method], path)
            is_error = isinstance(action, str)
            if is_error and self.max_consecutive is not None and self._streak[method, path] >= self.max_consecutive:
                action, is_error = None, False
            self._streak[method, path] = self._streak[method, path] + 1 if is_error else 0
            kind = action if isinstance(action, str) else (action[0] if action else "forwarded")
            self.counts[kind] += 1
            if action:
                self.faults.append((method, path, kind))
        return action

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in headers.items() if k.lower() not in _HOP}
            if body or method in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _error(self, kind: str) -> None:
        status, code, message = _ERRORS[kind]
        body = b"" if self.command == "HEAD" else (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>fault-proxy</RequestId></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        body = self._body()
        action = proxy.decide(self.command, self.path)
        if action in ("slowdown", "reject"):
            return self._error(action)
        if isinstance(action, tuple):
            time.sleep(action[1])
        status, headers, data = proxy.forward(self.command, self.path, dict(self.headers.items()), body)
        if action == "internal":
            return self._error(action)
        self.send_response(status)
        length = None
        for k, v in headers:
            if k.lower() == "content-length":
                length = v
            elif k.lower() not in _HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", length if self.command == "HEAD" and length else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


def _cli(*args: str, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "matchflow.cli", *args], capture_output=True, text=True, **kw)


def _s3_corpus(endpoint: str, tmp_path: Path, bucket: str, keys: list[str], halves: tuple[int, ...]) -> str:
    """Upload 3 s test clips for ``keys`` to ``s3://bucket/corpus`` (straight to moto); returns its URL."""
    s3 = s3fs.S3FileSystem(endpoint_url=endpoint)
    s3.mkdir(bucket)
    for half in halves:
        local = write_test_video(tmp_path / f"{half}.mp4", 3.0)
        for key in keys:
            s3.put_file(str(local), f"{bucket}/corpus/{key}/{half}_720p.mp4")
    return f"s3://{bucket}/corpus"


def _rows(out: str, storage_options: dict[str, Any]) -> list[tuple]:
    con = connect(out, storage_options)
    return con.execute("SELECT * EXCLUDE (game_id) FROM frames ORDER BY game, half, frame").fetchall()


def _lock_files(out: str, storage_options: dict[str, Any]) -> list[str]:
    return [u for u in mfs.list_files(mfs.join(out, "locks"), storage_options) if u.endswith(".lock")]


@pytest.fixture(scope="module")
def s3_cluster(s3_endpoint, prefect_api):
    """A 2-worker Dask LocalCluster shared by the S3 runs of this module (its workers get the AWS environment)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="2GiB") as cluster:
        yield cluster.scheduler_address


# --------------------------------------------------------------------------------------------------------------
# 1. S3: transient errors and slowness are retried; a persistent failure fails the games, quickly and invisibly
# --------------------------------------------------------------------------------------------------------------


def _transient(method: str, k: int, path: str) -> Action:
    """Every 4th request of each method is faulted, in turn 503 SlowDown, 500 InternalError, a 1-1.8 s delay."""
    if k % 4:
        return None
    kind = ("slowdown", "internal", "delay")[(k // 4) % 3]
    return ("delay", 1.0 + (k % 5) / 5) if kind == "delay" else kind


@pytest.mark.e2e
def test_s3_transient_errors_and_slowness_are_retried(s3_endpoint, s3_cluster, tmp_path):
    keys = ["faults/game a", "faults/game b"]
    corpus = _s3_corpus(s3_endpoint, tmp_path, "transient-corpus", keys, (1, 2))
    s3fs.S3FileSystem(endpoint_url=s3_endpoint).mkdir("transient-out")
    base = dict(scheduler=s3_cluster, chunk_frames=4, batch_frames=2, retries=2)
    direct = {"endpoint_url": s3_endpoint}

    clean = run_corpus(corpus, "s3://transient-out/clean", PipelineConfig(stages=["frames"], **base, storage_options=direct))
    assert sorted(clean.committed) == keys and not clean.failed

    with FaultProxy(s3_endpoint, _transient, max_consecutive=2) as proxy:
        t0 = time.perf_counter()
        cfg = PipelineConfig(stages=["frames"], **base, storage_options={"endpoint_url": proxy.url})
        summary = run_corpus(corpus, "s3://transient-out/faulty", cfg)
        elapsed = time.perf_counter() - t0
    faults = Counter((m, kind) for m, _, kind in proxy.faults)
    print(f"\nS3 through the fault proxy: {dict(proxy.counts)} in {elapsed:.1f} s; faults by method: {dict(faults)}")

    # faults were injected, on reads and on writes of the output, and every kind of them
    assert proxy.counts["slowdown"] >= 3 and proxy.counts["internal"] >= 3 and proxy.counts["delay"] >= 3
    put_faults = {kind for (m, kind) in faults if m == "PUT"}
    assert put_faults == {"slowdown", "internal", "delay"}
    assert any(m == "PUT" and "/tables/" in p for m, p, _ in proxy.faults)
    assert any(m == "GET" for m, _, _ in proxy.faults)

    # the run completed as if nothing happened: every game committed, exactly the fault-free rows
    assert sorted(summary.committed) == keys and not summary.failed
    assert summary.frames == clean.frames
    per_half = len(sample_indices(75, 25.0, 2.0))
    faulty_rows = _rows("s3://transient-out/faulty", direct)
    assert len(faulty_rows) == len(keys) * 2 * per_half
    assert faulty_rows == _rows("s3://transient-out/clean", direct)
    assert len({r[:3] for r in faulty_rows}) == len(faulty_rows)  # unique (game, half, frame)
    assert _lock_files("s3://transient-out/faulty", direct) == []


def _fail_puts(match: Callable[[str], bool]) -> Schedule:
    return lambda method, k, path: "reject" if method == "PUT" and match(path) else None


@pytest.mark.e2e
def test_s3_persistent_put_failure_fails_games_quickly_and_invisibly(s3_endpoint, s3_cluster, tmp_path):
    keys = ["persist/game a", "persist/game b"]
    corpus = _s3_corpus(s3_endpoint, tmp_path, "persist-corpus", keys, (1,))
    s3fs.S3FileSystem(endpoint_url=s3_endpoint).mkdir("persist-out")
    direct = {"endpoint_url": s3_endpoint}
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_endpoint}

    # (a) every PUT to the output bucket fails: no game can even be locked; each fails naming the object
    out = "s3://persist-out/all-puts"
    with FaultProxy(s3_endpoint, _fail_puts(lambda p: p.startswith("/persist-out/"))) as proxy:
        cfg = PipelineConfig(stages=["frames"], scheduler=s3_cluster, chunk_frames=4, batch_frames=2, retries=1,
                             storage_options={"endpoint_url": proxy.url})
        t0 = time.perf_counter()
        summary = run_corpus(corpus, out, cfg)
        elapsed_all = time.perf_counter() - t0
    print(f"\nevery PUT failing: {dict(proxy.counts)}, run ended in {elapsed_all:.1f} s; errors: {summary.failed}")
    assert sorted(summary.failed) == keys and not summary.committed
    for key in keys:
        assert lock_url(out, game_id(key)) in " ".join(summary.failed[key])  # the error names the S3 object
    assert proxy.counts["reject"] == len(keys) * mfs.S3_MAX_ATTEMPTS  # each lock PUT tried 5 times, then given up
    assert elapsed_all < 90  # bounded by the retry policy, no hang
    assert mfs.list_files(out, direct) == []  # nothing at all was written

    # (b) the PUTs of one chunk's Parquet files fail: the other chunks are written, yet nothing is visible
    out = "s3://persist-out/one-chunk"
    with FaultProxy(s3_endpoint, _fail_puts(lambda p: p.endswith("-c00001.parquet"))) as proxy:
        cfg = PipelineConfig(stages=["frames"], scheduler=s3_cluster, chunk_frames=2, batch_frames=2, retries=1,
                             storage_options={"endpoint_url": proxy.url})
        t0 = time.perf_counter()
        summary = run_corpus(corpus, out, cfg)
        elapsed_chunk = time.perf_counter() - t0
    print(f"one chunk's PUTs failing: {dict(proxy.counts)}, run ended in {elapsed_chunk:.1f} s")
    assert sorted(summary.failed) == keys and not summary.committed
    layout = OutputLayout.at(out)
    for key in keys:
        bad = layout.part_file("frames", game_id(key), 1, 1)
        assert bad in " ".join(summary.failed[key])
        written = mfs.list_files(layout.partition("frames", game_id(key)), direct)
        assert layout.part_file("frames", game_id(key), 1, 0) in written and bad not in written
        manifest = json.loads(mfs.read_bytes(layout.manifest(game_id(key)), direct))
        assert manifest["status"] == "failed" and bad in " ".join(manifest["errors"])
    assert proxy.counts["reject"] == 2 * len(keys) * mfs.S3_MAX_ATTEMPTS  # 2 task attempts x 5 requests per chunk
    assert elapsed_chunk < 90
    assert _lock_files(out, direct) == []

    # readers see no row of either output, though chunk files of the failed games exist; the output no PUT
    # reached does not exist, and readers say so
    res = _cli("sql", "s3://persist-out/all-puts", "SELECT count(*) AS n FROM frames", "--format", "csv", env=env)
    assert res.returncode == 2 and "does not exist" in res.stderr
    res = _cli("sql", out, "SELECT count(*) AS n FROM frames", "--format", "csv", env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["n", "0"]


# --------------------------------------------------------------------------------------------------------------
# 2. A Dask worker process killed in the middle of a chunk
# --------------------------------------------------------------------------------------------------------------


def _executing_chunks(dask_worker: Any) -> list[tuple[str, int, int, str]]:
    """(game id, half, chunk, Prefect task run id) of the chunk tasks executing on a worker."""
    found = []
    for ts in list(dask_worker.state.executing):
        kwargs = getattr(ts.run_spec, "kwargs", None) or {}
        spec = (kwargs.get("parameters") or {}).get("spec")
        if spec is not None and hasattr(spec, "chunk"):
            found.append((spec.game_id, spec.half, spec.chunk, str(kwargs.get("task_run_id"))))
    return found


@pytest.mark.e2e
def test_worker_killed_mid_chunk_is_recovered(prefect_api, tmp_path):
    from distributed import Client, LocalCluster

    corpus = tmp_path / "corpus"
    keys = ["kill/game a", "kill/game b"]
    for key in keys:
        for half in (1, 2):
            (corpus / key).mkdir(parents=True, exist_ok=True)
            write_test_video(corpus / key / f"{half}_720p.mp4", 10.0, size=(640, 360), texture=True)
    out = tmp_path / "out"

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="2GiB") as cluster, Client(cluster) as client:
        cfg = PipelineConfig(stages=["frames"], scheduler=cluster.scheduler_address, fps=10, chunk_frames=20, batch_frames=4,
                             retries=2, device="cpu")
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                result["summary"] = run_corpus(str(corpus), str(out), cfg)
            except BaseException as exc:  # reported by the assertions below
                result["error"] = exc

        flow = threading.Thread(target=run, name="corpus-flow")
        flow.start()
        killed: dict[str, Any] | None = None
        deadline = time.time() + 120
        while flow.is_alive() and killed is None and time.time() < deadline:
            if len(list((out / "tables").rglob("*.parquet"))) < 3:  # kill in the middle of the run
                time.sleep(0.05)
                continue
            running = client.run(_executing_chunks)
            for addr, chunks in running.items():
                # a chunk whose rows are written has done its work: killing it now tests nothing
                chunks = [c for c in chunks if not list(Path(OutputLayout.at(str(out)).partition("frames", c[0])).glob(
                    f"*{part_name(c[1], c[2])}"))]
                if chunks:
                    pid = client.run(os.getpid, workers=[addr])[addr]
                    os.kill(pid, signal.SIGKILL)
                    killed = {"t": time.time(), "pid": pid, "worker": addr, "chunk": chunks[0]}
                    break
            time.sleep(0.02)
        flow.join(timeout=150)
        assert not flow.is_alive(), "the run did not finish"
        assert killed is not None, "no chunk was caught running"

    assert "error" not in result, result.get("error")
    summary: RunSummary = result["summary"]
    assert sorted(summary.committed) == keys and not summary.failed

    # exactly one row per sampled frame: nothing lost, nothing duplicated
    per_half = len(sample_indices(250, 25.0, 10.0))
    con = connect(str(out))
    assert con.execute("SELECT count(*) FROM frames").fetchone()[0] == len(keys) * 2 * per_half
    assert con.execute(
        "SELECT count(*) FROM (SELECT game, half, frame FROM frames GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()[0] == 0
    got = con.execute("SELECT game, half, list(frame ORDER BY frame) FROM frames GROUP BY ALL").fetchall()
    assert all(frames == list(range(per_half)) for _, _, frames in got) and len(got) == len(keys) * 2

    # the killed chunk was run again, elsewhere, from the start, after the kill
    gid, half, chunk, task_run_id = killed["chunk"]
    manifest = json.loads((out / "manifests" / f"{gid}.json").read_text())
    run_of = {(r["half"], r["chunk"]): r for r in manifest["chunk_runs"]}[(half, chunk)]
    started = dt.datetime.fromisoformat(run_of["started"]).timestamp()
    assert not run_of["worker"].endswith(f":{killed['pid']}")
    assert started >= killed["t"] - 0.5
    done = started + run_of["wall_s"]

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        task_run = prefect.read_task_run(task_run_id)
    assert task_run.state_name == "Completed"

    recovery = {
        "killed_worker_pid": killed["pid"],
        "chunk": {"game_id": gid, "half": half, "chunk": chunk},
        "kill_to_retry_start_s": round(started - killed["t"], 3),
        "retry_wall_s": run_of["wall_s"],
        "kill_to_retried_chunk_done_s": round(done - killed["t"], 3),
        "prefect_task_run_count": task_run.run_count,
        "run_seconds": round(summary.seconds, 3),
    }
    (tmp_path / "recovery.json").write_text(json.dumps(recovery, indent=2))
    print(f"\nworker killed mid-chunk: recovery {recovery['kill_to_retried_chunk_done_s']:.2f} s "
          f"(kill to retried chunk done); details in {tmp_path / 'recovery.json'}: {recovery}")
    assert 0 < recovery["kill_to_retried_chunk_done_s"] < 60


# --------------------------------------------------------------------------------------------------------------
# 3. Two runs on the same output at once
# --------------------------------------------------------------------------------------------------------------


def test_game_locks_rules(tmp_path, s3_endpoint):
    """The lock rules on a local folder and on S3: one holder, stale locks taken over, lost replies verified."""
    root = str(tmp_path / "out")
    a, b = GameLocks(root, "run-a"), GameLocks(root, "run-b")
    assert a.acquire("g")[0]
    ok, holder = b.acquire("g")
    assert not ok and holder["run_id"] == "run-a" and b.lost("g") and a.lost("g") is None
    a.refresh()
    assert a.lost("g") is None
    a.release("g")
    assert b.acquire("g")[0]
    b.release("g")

    # many contenders at once: exactly one wins
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda i=i: wins.append(GameLocks(root, f"r{i}").acquire("h")[0]))
               for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(wins) == [False] * 7 + [True]

    # stale: expired, or held by a process of this host that is gone (taken over at once)
    c = GameLocks(root, "run-c", ttl_s=0.3)
    assert c.acquire("e")[0]
    assert not a.acquire("e")[0]
    time.sleep(0.5)
    assert a.acquire("e")[0] and "taken over" in c.lost("e")
    gone = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    started = psutil.Process(gone.pid).create_time()
    gone.wait()
    record = {"game_id": "d", "run_id": "killed-run", "token": "t", "host": socket.gethostname(),
              "pid": gone.pid, "pid_started": started, "acquired_at": time.time(), "expires_at": time.time() + 600}
    assert "is gone" in stale_reason(record)
    mfs.write_bytes_atomic(lock_url(root, "d"), json.dumps(record).encode())
    assert a.acquire("d")[0]

    # S3: conditional create; a create whose reply is lost (500 after it took effect) is verified as ours
    s3fs.S3FileSystem(endpoint_url=s3_endpoint).mkdir("lock-bucket")
    first_lock_put = {"done": False}

    def lose_first_reply(method: str, k: int, path: str) -> Action:
        if method == "PUT" and path.endswith("/x.lock") and not first_lock_put["done"]:
            first_lock_put["done"] = True
            return "internal"
        return None

    with FaultProxy(s3_endpoint, lose_first_reply) as proxy:
        so = {"endpoint_url": proxy.url}
        s3a, s3b = GameLocks("s3://lock-bucket/out", "run-a", so), GameLocks("s3://lock-bucket/out", "run-b", so)
        assert s3a.acquire("x")[0] and proxy.counts["internal"] == 1
        ok, holder = s3b.acquire("x")
        assert not ok and holder["run_id"] == "run-a"
        s3a.refresh()
        assert s3a.lost("x") is None
        s3a.release("x")
        assert s3b.acquire("x")[0] and "does not hold" in s3a.lost("x")
        s3b.release("x")
        assert _lock_files("s3://lock-bucket/out", so) == []


@pytest.mark.e2e
def test_two_runs_on_the_same_output_commit_every_game_once(prefect_api, tmp_path):
    corpus = tmp_path / "corpus"
    n_games = 4
    for g in range(n_games):
        for half in (1, 2):
            (corpus / f"season/game {g}").mkdir(parents=True, exist_ok=True)
            # long enough that neither run can finish every game before the other has started
            write_test_video(corpus / f"season/game {g}" / f"{half}_720p.mp4", 12.0, size=(192, 108))
    out = tmp_path / "out"
    cfg = tmp_path / "run.yaml"
    cfg.write_text("stages: [frames]\nchunk_frames: 2\nbatch_frames: 1\n")
    cmd = [sys.executable, "-m", "matchflow.cli", "run", str(corpus), "--out", str(out), "--workers", "1",
           "--config", str(cfg)]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        outputs = [p.communicate(timeout=170) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    elapsed = time.perf_counter() - t0

    summaries = []
    for p, (stdout, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stdout + stderr  # documented: each exits 0 when every game ends committed
        m = re.search(r"run (\S+): (\d+) games, (\d+) committed, (\d+) skipped \(up to date\), (\d+) failed", stdout)
        assert m, stdout
        summaries.append({"run_id": m.group(1), "games": int(m.group(2)), "committed": int(m.group(3)),
                          "skipped": int(m.group(4)), "failed": int(m.group(5)), "stderr": stderr})
    for s in summaries:
        s["waited"] = "being processed by run" in s.pop("stderr")
    print(f"\ntwo concurrent runs in {elapsed:.1f} s: {summaries}")
    for s in summaries:
        assert s["games"] == n_games and s["failed"] == 0 and s["committed"] + s["skipped"] == n_games
    # they overlapped: one waited for a game the other held (or they split the games between them)
    assert any(s["waited"] for s in summaries) or all(s["committed"] for s in summaries)

    # every game committed exactly once, by one of the two runs
    assert sum(s["committed"] for s in summaries) == n_games
    manifests = [json.loads(p.read_text()) for p in sorted((out / "manifests").glob("*.json"))]
    assert len(manifests) == n_games and all(m["status"] == "committed" for m in manifests)
    by_run = Counter(m["run_id"] for m in manifests)
    assert by_run == Counter({s["run_id"]: s["committed"] for s in summaries if s["committed"]})

    # exactly one copy of every row
    per_half = len(sample_indices(300, 25.0, 2.0))
    con = connect(str(out))
    assert con.execute("SELECT count(*) FROM frames").fetchone()[0] == n_games * 2 * per_half
    assert con.execute(
        "SELECT count(*) FROM (SELECT game, half, frame FROM frames GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()[0] == 0
    files = list((out / "tables" / "frames").rglob("*.parquet"))
    assert len(files) == n_games * 2 * (per_half // 2 + per_half % 2)
    assert list((out / "locks").glob("*.lock")) == []
