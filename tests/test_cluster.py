"""Cluster choice, GPU routing by Dask resources, worker memory limits, and the deploy/ cluster specs.

Real parts only: real Dask LocalClusters (nanny processes), the real corpus flow, a real Prefect API.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import dask
import pytest
import yaml

from matchflow.config import EXECUTION_FIELDS, GPU_RESOURCE, ConfigError, PipelineConfig, load_config
from matchflow.flows.cluster import (
    WORKER_PRELOAD,
    WORKER_SATURATION,
    ClusterError,
    check_cluster,
    chunk_resources,
    scheduler_settings,
)
from matchflow.flows.corpus import run_corpus
from matchflow.pipeline import build_pipeline
from matchflow.storage.corpus import game_id
from matchflow.storage.query import connect
from matchflow.synth.indexed_video import write_test_video
from matchflow.video import sample_indices

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


# --------------------------------------------------------------------------------------------------------------
# configuration and routing rules
# --------------------------------------------------------------------------------------------------------------


def test_cluster_field_is_execution_only_and_scheduler_is_its_alias():
    base = PipelineConfig(stages=["frames"])
    for cfg in (PipelineConfig(stages=["frames"], cluster="cuda"), PipelineConfig(stages=["frames"], cluster="tcp://10.0.0.1:8786"),
                PipelineConfig(stages=["frames"], gpu_resource=True), PipelineConfig(stages=["frames"], scheduler="tcp://10.0.0.1:8786")):
        assert cfg.fingerprint() == base.fingerprint()
    assert {"cluster", "gpu_resource", "scheduler", "memory_limit"} <= EXECUTION_FIELDS

    assert base.cluster_kind == "local" and base.scheduler_address is None
    assert PipelineConfig(stages=["frames"], cluster="cuda").cluster_kind == "cuda"
    alias = PipelineConfig(stages=["frames"], scheduler="tcp://10.0.0.1:8786")
    assert alias.cluster_kind == "address" and alias.scheduler_address == "tcp://10.0.0.1:8786"
    same = PipelineConfig(stages=["frames"], cluster="tcp://10.0.0.1:8786", scheduler="tcp://10.0.0.1:8786")
    assert same.scheduler_address == "tcp://10.0.0.1:8786"

    with pytest.raises(ConfigError, match="disagree"):
        load_config(None, cluster="cuda", scheduler="tcp://10.0.0.1:8786", stages=["frames"])
    with pytest.raises(ConfigError, match="disagree"):
        load_config(None, cluster="tcp://10.0.0.2:8786", scheduler="tcp://10.0.0.1:8786", stages=["frames"])
    with pytest.raises(ConfigError, match="cluster must be local, cuda or a scheduler address"):
        load_config(None, cluster="kubernetes", stages=["frames"])


def test_chunk_resources_rules():
    det = build_pipeline(PipelineConfig(stages=["frames", "detection"]))
    frames = build_pipeline(PipelineConfig(stages=["frames"]))
    gpu, cpu = {GPU_RESOURCE: 1.0}, {}
    assert GPU_RESOURCE == "GPU"
    assert det.stages[1].uses_gpu and not frames.stages[0].uses_gpu

    # auto: only a pipeline with a GPU stage, on GPU workers (cuda cluster, or device cuda/auto with GPU workers)
    assert chunk_resources(PipelineConfig(stages=["frames"], device="auto"), det, [cpu, cpu]) == {}
    assert chunk_resources(PipelineConfig(stages=["frames"], device="auto"), det, [gpu, cpu]) == {"GPU": 1}
    assert chunk_resources(PipelineConfig(stages=["frames"], device="cpu"), det, [gpu, cpu]) == {}
    assert chunk_resources(PipelineConfig(stages=["frames"], device="auto"), frames, [gpu, cpu]) == {}
    assert chunk_resources(PipelineConfig(stages=["frames"], device="cpu", gpu_resource=True), det, [gpu, cpu]) == {"GPU": 1}
    assert chunk_resources(PipelineConfig(stages=["frames"], device="cuda", gpu_resource=False), det, [gpu]) == {}
    # routing asked for, but no worker could ever take the task: fail before any work instead of hanging
    with pytest.raises(ClusterError, match="--resources GPU=1"):
        chunk_resources(PipelineConfig(stages=["frames"], gpu_resource=True), det, [cpu, cpu])
    with pytest.raises(ClusterError, match="detection"):
        chunk_resources(PipelineConfig(stages=["frames"], cluster="cuda"), det, [cpu])


def test_cuda_cluster_fails_before_any_work(tmp_path):
    """Without dask-cuda (or without a GPU) `--cluster cuda` stops at once, naming what is missing."""
    has_dask_cuda = importlib.util.find_spec("dask_cuda") is not None
    with pytest.raises(ClusterError) as err:
        check_cluster(PipelineConfig(stages=["frames"], cluster="cuda"))
    if has_dask_cuda:
        assert "NVIDIA GPU" in str(err.value)
    else:
        assert "dask-cuda" in str(err.value) and "[gpu]" in str(err.value)
    check_cluster(PipelineConfig(stages=["frames"], cluster="local"))  # nothing to check
    check_cluster(PipelineConfig(stages=["frames"], cluster="tcp://127.0.0.1:1"))

    corpus = tmp_path / "corpus" / "g"
    corpus.mkdir(parents=True)
    write_test_video(corpus / "1_720p.mp4", 1.0)
    out = tmp_path / "out"
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "matchflow.cli", "run", str(tmp_path / "corpus"), "--out", str(out),
                          "--cluster", "cuda"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert ("dask-cuda" in res.stderr) if not has_dask_cuda else ("NVIDIA GPU" in res.stderr)
    assert not out.exists()  # no work, nothing written
    assert time.perf_counter() - t0 < 60


# --------------------------------------------------------------------------------------------------------------
# GPU stages run only on workers that declare the GPU resource
# --------------------------------------------------------------------------------------------------------------


def _worker_pid(dask_worker) -> int:  # distributed.Worker
    import os

    return os.getpid()


@pytest.mark.e2e
def test_gpu_stage_chunks_run_only_on_the_gpu_worker(prefect_api, tmp_path):
    from distributed import Client, LocalCluster

    corpus = tmp_path / "corpus"
    keys = ["route/game a", "route/game b"]
    for key in keys:
        (corpus / key).mkdir(parents=True)
        write_test_video(corpus / key / "1_720p.mp4", 3.0, size=(320, 180), texture=True)

    # a real LocalCluster of 2 worker processes, only the first declaring the resource GPU=1
    with LocalCluster(n_workers=0, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="3GiB", preload=[WORKER_PRELOAD]) as cluster:
        opts = cluster.new_spec["options"]
        cluster.worker_spec["gpu"] = {"cls": cluster.new_spec["cls"], "options": {**opts, "resources": {"GPU": 1}}}
        cluster.worker_spec["cpu"] = {"cls": cluster.new_spec["cls"], "options": dict(opts)}
        cluster.sync(cluster._correct_state)
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=120)
            info = client.scheduler_info(n_workers=-1)["workers"]
            pids = client.run(_worker_pid)
            gpu_addr = [a for a, w in info.items() if (w.get("resources") or {}).get("GPU")]
            assert len(gpu_addr) == 1 and len(info) == 2
            gpu_pid = pids[gpu_addr[0]]
            cpu_pid = next(p for a, p in pids.items() if a != gpu_addr[0])

            # forced routing on CPU: device cpu, gpu_resource true; the detection stage is a GPU stage
            cfg = PipelineConfig(cluster=cluster.scheduler_address, stages=["frames", "detection"], device="cpu",
                                 gpu_resource=True, chunk_frames=2, batch_frames=2, retries=0,
                                 stage_params={"detection": {"input_height": 96, "batch_size": 2}})
            summary = run_corpus(str(corpus), str(tmp_path / "out"), cfg)
            assert sorted(summary.committed) == keys and not summary.failed

            # control: the same run with a CPU-only pipeline spreads its chunks over both workers
            plain = PipelineConfig(cluster=cluster.scheduler_address, stages=["frames"], device="cpu",
                                   gpu_resource=True, chunk_frames=1, batch_frames=1, retries=0)
            control = run_corpus(str(corpus), str(tmp_path / "out-plain"), plain)
            assert sorted(control.committed) == keys

    per_half = len(sample_indices(75, 25.0, 2.0))
    workers_of = []
    for key in keys:
        manifest = json.loads((tmp_path / "out" / "manifests" / f"{game_id(key)}.json").read_text())
        runs = manifest["chunk_runs"]
        assert len(runs) == -(-per_half // 2)  # every chunk of the half
        workers_of += [r["worker"] for r in runs]
    assert workers_of and all(w.endswith(f":{gpu_pid}") for w in workers_of), (workers_of, gpu_pid)
    con = connect(str(tmp_path / "out"))
    assert con.execute("SELECT count(*) FROM frames").fetchone()[0] == len(keys) * per_half

    spread = []
    for key in keys:
        manifest = json.loads((tmp_path / "out-plain" / "manifests" / f"{game_id(key)}.json").read_text())
        spread += [r["worker"].rsplit(":", 1)[1] for r in manifest["chunk_runs"]]
    assert str(cpu_pid) in spread  # without a GPU stage nothing is restricted: the CPU worker took chunks


# --------------------------------------------------------------------------------------------------------------
# worker memory limit: a runaway chunk restarts its worker, then fails its game; the rest of the run goes on
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_chunk_over_the_memory_limit_fails_its_game_not_the_run(prefect_api, tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "mem/b-big").mkdir(parents=True)
    (corpus / "mem/a-small").mkdir(parents=True)
    # every frame sampled, 256 frames per batch: 250 x 1920x1080x3 = 1.56 GB of frames for the big game's batch,
    # 22 MB for the small one's; a worker holds about 220 MB after its start and about 550 MB once it has run
    # a Prefect task; it is restarted above 95% of 1 GiB
    write_test_video(corpus / "mem/b-big" / "1_720p.mp4", 10.0, size=(1920, 1080))  # 250 frames: one chunk
    write_test_video(corpus / "mem/a-small" / "1_720p.mp4", 5.0, size=(320, 180))  # one chunk
    cfg = PipelineConfig(stages=["frames"], workers=2, memory_limit="1GiB", fps=25, chunk_frames=256, batch_frames=256, retries=1)
    t0 = time.perf_counter()
    summary = run_corpus(str(corpus), str(tmp_path / "out"), cfg)
    elapsed = time.perf_counter() - t0
    print(f"\nmemory-limit run: {elapsed:.1f} s; failed: {summary.failed}")

    assert "mem/b-big" in summary.failed and summary.games == 2
    errors = " ".join(summary.failed["mem/b-big"])
    assert "exceeded its memory limit" in errors and "1GiB" in errors and "KilledWorker" in errors
    assert "tried 2 time(s)" in errors  # retries=1: the chunk ran on 2 workers, both restarted
    manifest = json.loads((tmp_path / "out" / "manifests" / f"{game_id('mem/b-big')}.json").read_text())
    assert manifest["status"] == "failed" and "exceeded its memory limit" in " ".join(manifest["errors"])
    # The small game commits whole, unless its chunk waited in the queue of a worker that the runaway chunk
    # brought down: Dask counts such a task as having died with the worker (documented in flows/cluster.py), and
    # then the same memory-limit error is all that may fail it. Either way no partial rows are visible.
    con = connect(str(tmp_path / "out"))
    rows = con.execute("SELECT game, count(*) FROM frames GROUP BY game").fetchall()
    if "mem/a-small" in summary.committed:
        assert rows == [("mem/a-small", len(sample_indices(125, 25.0, 25.0)))]
    else:
        assert "exceeded its memory limit" in " ".join(summary.failed["mem/a-small"]) and rows == []


# --------------------------------------------------------------------------------------------------------------
# deploy/: cluster specs for corpora that outgrow one machine
# --------------------------------------------------------------------------------------------------------------


def _args_value(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag and i + 1 < len(args)]


def test_kubernetes_cluster_spec_agrees_with_the_code():
    spec = yaml.safe_load((DEPLOY / "kubernetes" / "daskcluster.yaml").read_text())
    assert spec["apiVersion"] == "kubernetes.dask.org/v1" and spec["kind"] == "DaskCluster"
    worker = spec["spec"]["worker"]
    (container,) = worker["spec"]["containers"]
    args = [str(a) for a in container["args"]]
    assert args[0] == "dask-worker" or args[:2] == ["dask", "worker"]
    # the resource the flow requests, and the module the local clusters preload
    assert _args_value(args, "--resources") == [f"{GPU_RESOURCE}=1"]
    assert _args_value(args, "--preload") == [WORKER_PRELOAD]
    assert importlib.util.find_spec(WORKER_PRELOAD) is not None
    assert _args_value(args, "--nthreads") == ["1"]
    limits = container["resources"]["limits"]
    assert int(limits["nvidia.com/gpu"]) == 1
    # the worker's Dask memory limit is the container's: the nanny restarts it before the kubelet kills it
    assert _args_value(args, "--memory-limit") == [str(limits["memory"])]
    sched = spec["spec"]["scheduler"]
    (sc,) = sched["spec"]["containers"]
    assert sc["image"] == container["image"]
    ports = {p["name"]: p["containerPort"] for p in sc["ports"]}
    svc_ports = {p["name"]: p["port"] for p in sched["service"]["ports"]}
    assert ports["tcp-comm"] == svc_ports["tcp-comm"] == 8786
    env = {e["name"]: str(e["value"]) for e in sc["env"]}
    assert float(env["DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION"]) == WORKER_SATURATION
    # the image's dask is the one the flow's client runs (requirements.lock)
    required = spec["metadata"]["annotations"]["matchflow/requires"]
    assert required in (ROOT / "requirements.lock").read_text().splitlines()
    assert "PREFECT_API_URL" in {e["name"] for e in container["env"]}  # task runs report to the Prefect API


def test_jobqueue_spec_and_snippet_agree_with_the_code():
    conf = yaml.safe_load((DEPLOY / "jobqueue" / "jobqueue.yaml").read_text())
    slurm = conf["jobqueue"]["slurm"]
    assert slurm["cores"] == slurm["processes"]  # one single-threaded worker per core, as locally
    extra = " ".join(slurm["worker-extra-args"]).split()
    assert _args_value(extra, "--resources") == [f"{GPU_RESOURCE}=1"]
    assert _args_value(extra, "--preload") == [WORKER_PRELOAD]
    assert any("--gres=gpu" in d for d in slurm["job-extra-directives"])
    assert slurm["memory"]
    # the Python example parses and asks for the same resource and preload
    source = (DEPLOY / "jobqueue" / "slurm_cluster.py").read_text()
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "SLURMCluster"]
    assert len(calls) == 1
    assert '"distributed.scheduler.worker-saturation": 1.0' in source
    assert f"{GPU_RESOURCE}=1" in source and WORKER_PRELOAD in source and "--cluster" in source


def test_deploy_readme_names_the_cluster_specs():
    text = (DEPLOY / "README.md").read_text()
    for needle in ("kubernetes/daskcluster.yaml", "jobqueue/jobqueue.yaml", "--cluster tcp://", "--resources GPU=1",
                   "cluster"):
        assert needle in text, needle
    # the run configuration for an external cluster: a scheduler address, GPU routing left to auto
    cfg = load_config(DEPLOY / "cluster-config.yaml")
    assert cfg.cluster_kind == "address" and cfg.scheduler_address.endswith(":8786")
    assert cfg.gpu_resource is None and any(st.uses_gpu for st in build_pipeline(cfg).stages)
    assert cfg.fingerprint() == load_config(DEPLOY / "cluster-config.yaml", cluster="local").fingerprint()
    # the Kubernetes scheduler service is the address the configuration names
    spec = yaml.safe_load((DEPLOY / "kubernetes" / "daskcluster.yaml").read_text())
    name, ns = spec["metadata"]["name"], spec["metadata"]["namespace"]
    assert cfg.scheduler_address == f"tcp://{name}-scheduler.{ns}.svc.cluster.local:8786"


def test_a_cluster_the_run_starts_keeps_waiting_chunks_on_its_scheduler():
    # the settings' names are Dask's: a scheduler made under them has them (a misspelt key would be ignored)
    from distributed import LocalCluster

    with dask.config.set(scheduler_settings(PipelineConfig(stages=["frames"], retries=3))):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
            assert cluster.scheduler.WORKER_SATURATION == WORKER_SATURATION == 1.0
            assert cluster.scheduler.allowed_failures == 3
