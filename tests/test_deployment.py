"""The Prefect deployments as a user serves and runs them: deploy/serve.sh (a server, the work pool, the
deployments of deploy/prefect.yaml, a worker), then `prefect deployment run ... --watch`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from matchflow.prefect_env import QUIET_OFFLINE
from matchflow.storage.query import connect
from matchflow.synth import synthesize_corpus
from matchflow.video import sample_indices

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PREFECT = str(BIN / "prefect")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        url + path, data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}, method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _deployment_names(url: str) -> set[str]:
    try:
        return {d["name"] for d in _api(url, "/deployments/filter", {})}
    except OSError:
        return set()


class Served:
    """A running deploy/serve.sh: its API URL, the environment for CLI calls and its log."""

    def __init__(self, url: str, env: dict[str, str], log: Path) -> None:
        self.url, self.env, self.log = url, env, log

    def prefect(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PREFECT, *args], env=self.env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """deploy/serve.sh on a free port with a temporary PREFECT_HOME; its process group is stopped at the end."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # never the user's server
    env.update(QUIET_OFFLINE, PREFECT_HOME=str(home), PREFECT_API_URL=url, PREFECT_WORKER_QUERY_SECONDS="2",
               PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",
               MATCHFLOW_BIN=str(BIN))
    log = home / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["bash", str(ROOT / "deploy" / "serve.sh"), str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 150
        while _deployment_names(url) != {"adhoc", "nightly"} or "worker on matchflow-process" not in log.read_text():
            assert proc.poll() is None, f"serve.sh exited {proc.returncode}:\n{log.read_text()[-4000:]}"
            assert time.time() < deadline, f"no deployments after 150 s:\n{log.read_text()[-4000:]}"
            time.sleep(1)
        yield Served(url, env, log)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # serve.sh stops the server, the worker and their children
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def test_nightly_deployment_has_its_cron_schedule(served: Served) -> None:
    res = served.prefect("deployment", "inspect", "process-corpus/nightly", "--output", "json")
    assert res.returncode == 0, res.stdout + res.stderr
    dep = json.loads(res.stdout)
    [sched] = dep["schedules"]
    assert sched["schedule"]["cron"] == "0 2 * * *" and sched["schedule"]["timezone"] == "UTC"
    assert set(dep["parameters"]) == {"corpus", "out", "config", "force"}
    assert dep["work_pool_name"] == "matchflow-process"
    # the installed package's module path: no pull step needs the repository's location
    assert dep["entrypoint"] == "matchflow.flows.corpus:process_corpus"
    assert not dep["pull_steps"]
    # the server's scheduler puts the coming nights' runs on the calendar, at 02:00 UTC
    deadline = time.time() + 90
    while True:
        runs = _api(served.url, "/flow_runs/filter",
                    {"flow_runs": {"deployment_id": {"any_": [dep["id"]]}, "state": {"type": {"any_": ["SCHEDULED"]}}}})
        if runs or time.time() > deadline:
            break
        time.sleep(2)
    assert runs, f"no scheduled nightly runs:\n{served.log.read_text()[-3000:]}"
    assert all(r["expected_start_time"][11:19] == "02:00:00" for r in runs)


def test_adhoc_deployment_run_processes_a_corpus_on_dask(served: Served, tmp_path: Path) -> None:
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    synthesize_corpus(corpus, games=1, halves=1, seconds=2.0, seed=3, width=320, height=180, workers=1)
    res = served.prefect(
        "deployment", "run", "process-corpus/adhoc", "--param", f"corpus={corpus}", "--param", f"out={out}",
        "--param", 'config={"workers": 1, "stages": ["frames"]}', "--watch", timeout=150,
    )
    assert res.returncode == 0, res.stdout + res.stderr + served.log.read_text()[-4000:]
    assert "Completed" in res.stdout

    [manifest] = [json.loads(p.read_text()) for p in (out / "manifests").glob("*.json")]
    assert manifest["status"] == "committed"
    con = connect(str(out))
    assert con.execute("SELECT count(*) FROM frames").fetchone()[0] == len(sample_indices(50, 25.0, 2.0))

    # the deployment's run handed the work to a subflow on Dask: chunks ran in a Dask worker process
    runs = [r for r in _api(served.url, "/flow_runs/filter", {}) if r["state_type"] != "SCHEDULED"]  # not the nights
    [outer] = [r for r in runs if r["deployment_id"]]
    [inner] = [r for r in runs if not r["deployment_id"]]
    assert outer["state_type"] == inner["state_type"] == "COMPLETED"
    assert inner["parent_task_run_id"]
    [chunk] = manifest["chunk_runs"]
    assert outer["infrastructure_pid"] and chunk["worker"].split(":")[-1] != outer["infrastructure_pid"].split(":")[-1]
