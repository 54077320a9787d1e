"""A model pod's cold start: the startup probe and rollout waits sized from the weights, and
vLLM's compile cache shared through the model-cache file system with whole entries only.

The compile-cache scripts run here for real (sh, GNU coreutils and python3, as in vLLM's Ubuntu
image): two publishers race on one shared directory, a seeder copies what they published.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components import cold_start, compile_cache
from components.model_serving import VLLM_CACHE_ROOT, VLLM_HOME
from components.settings import ModelSettings
from components.versions import VLLM_IMAGE
from tests.conftest import ROOT, base_config, settings_from, stack_settings
from tools.engine import read_stack_config, run_stack

WORKLOAD = "kubernetes:apps/v1:StatefulSet"


def _model_workloads(plan) -> dict[str, object]:
    return {d.inputs["metadata"]["name"]: d for d in plan.of_type(WORKLOAD)
            if d.inputs["metadata"]["name"].startswith("vllm-")}


def _pod(workload) -> dict:
    return workload.inputs["spec"]["template"]["spec"]


# ------------------------------------------------------------------------- the startup budget


def _vllm(pod: dict) -> dict:
    return next(c for c in pod["containers"] if c["name"] == "vllm")


def test_the_startup_probe_is_sized_from_the_weights_by_hand(stack_plans):
    """Dev's models, by hand: download at 50 MiB/s, read back from EFS at 250 MiB/s, 300 s of
    compilation, times 1.5, in 10 s probe periods."""
    qwen = (14.2 * 1024 / 50 + 14.2 * 1024 / 250 + 300) * 1.5   # 973.5 s
    bge = (2.2 * 1024 / 50 + 2.2 * 1024 / 250 + 300) * 1.5      # 531.1 s
    expected = {"vllm-qwen2-5-7b-instruct": 98, "vllm-bge-m3": 54}
    assert (round(qwen), round(bge)) == (973, 531)
    for name, workload in _model_workloads(stack_plans["dev"]).items():
        container = _vllm(_pod(workload))
        probe = container["startupProbe"]
        assert (probe["failureThreshold"], probe["periodSeconds"]) == (expected[name], 10)
        # Small models keep the floor a rollout had: 40 minutes for Pulumi.
        assert workload.custom_timeouts == {"create": "40m", "update": "40m"}


def test_a_large_model_gets_a_longer_probe_deadline_and_wait():
    """A 140 GiB model (a 70B in bf16): (2867.2 + 573.4 + 300) * 1.5 = 5611 s of probe; a pod
    adds ten minutes for the node and the image."""
    config = copy.deepcopy(read_stack_config(ROOT, "dev"))
    models = config["anythingllm:modelServing"]["models"]
    models[0].update(weightsGib=140, replicas=2)
    for key in ("maxReplicas", "idleMinutes", "awakeHours"):  # a fixed pair of replicas
        models[0].pop(key)
    models[1]["gpuMemoryUtilization"] = 0.85
    group = config["anythingllm:cluster"]["gpuNodeGroups"][0]
    group.pop("gpuSharing")  # two 0.8 replicas could not share a GPU
    group["maxSize"] = 4
    workload = _model_workloads(run_stack(ROOT, "dev", config=config))["vllm-qwen2-5-7b-instruct"]
    container = _vllm(_pod(workload))
    assert container["startupProbe"]["failureThreshold"] == 562
    # Two replicas rolling one at a time, each perhaps on a new node and after its
    # predecessor's drain (25 s preStop + 600 s of answers + 30 s): Pulumi waits for both,
    # 2 x (6220 + 655) s = 229.2, so 230 min. A StatefulSet has no progress deadline: this wait
    # bounds it.
    assert "progressDeadlineSeconds" not in workload.inputs["spec"]
    assert workload.custom_timeouts == {"create": "230m", "update": "230m"}
    # One replica: one pod's worth, (6220 + 655) s = 115 min.
    model = ModelSettings(name="big", model="org/big", kind="chat", nodeGroup="inference",
                          maxModelLen=4096, weightsGib=140, replicas=1)
    assert cold_start.pulumi_wait_minutes(model, drain_seconds=655) == 115


def test_a_model_without_its_weights_size_keeps_twenty_minutes_and_is_warned_about():
    config = base_config()
    settings = settings_from(config)
    model = settings.model_serving.models[0]
    assert model.weights_gib is None
    assert cold_start.startup_probe_failures(model) * cold_start.PROBE_PERIOD_SECONDS == 1200
    assert [w for w in settings.warnings if w.startswith("modelServing.models[0].weightsGib")]
    # The committed stacks state their models' sizes.
    for stack in ("dev", "staging", "prod"):
        assert not [w for w in stack_settings(stack).warnings if ".weightsGib" in w]


# ------------------------------------------------------------------- the shared compile cache


def test_model_pods_seed_and_publish_the_compile_cache(stack_plans):
    version = VLLM_IMAGE.rsplit(":", 1)[1]
    for name, workload in _model_workloads(stack_plans["dev"]).items():
        pod = _pod(workload)
        vllm = _vllm(pod)
        env = {e["name"]: e.get("value") for e in vllm["env"]}
        assert env["VLLM_CACHE_ROOT"] == VLLM_CACHE_ROOT
        seed, publish = pod["initContainers"]
        assert (seed["name"], publish["name"]) == ("seed-compile-cache", "publish-compile-cache")
        # A native sidecar: started before vLLM, stopped after it; the seed runs to completion.
        assert publish["restartPolicy"] == "Always" and "restartPolicy" not in seed
        for container in (seed, publish):
            assert container["image"] == VLLM_IMAGE
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            cenv = {e["name"]: e.get("value") for e in container["env"]}
            assert cenv["LOCAL_CACHE"] == f"{env['VLLM_CACHE_ROOT']}/torch_compile_cache"
            assert cenv["SHARED_CACHE"] == f"/models/shared/compile-cache/{version}/{name[5:]}"
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            # The pod's vLLM HOME (where VLLM_CACHE_ROOT is) and the model-cache claim.
            assert mounts[VLLM_HOME] == "home" and mounts["/models/shared"] == "model-cache"
            assert VLLM_CACHE_ROOT.startswith(VLLM_HOME + "/")


def test_a_model_may_compile_for_itself():
    config = base_config()
    config["modelServing"]["models"][0]["compileCache"] = "pod"
    model = settings_from(config).model_serving.models[0]
    from components.model_serving import model_pod_spec

    assert "init_containers" not in model_pod_spec(model, with_hf_token=False, selector={},
                                                   stream_seconds=600)


def _run(script: str, env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(["/bin/sh", "-c", script], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kwargs)


def _stop(process: subprocess.Popen) -> tuple[int, str]:
    os.killpg(process.pid, signal.SIGTERM)
    out, _ = process.communicate(timeout=10)
    return process.returncode, out


def _compile_cache(root: Path, marker: str) -> Path:
    """A torch_compile_cache as vLLM 0.32.0 lays it out: a backend hash directory and an AOT
    entry under torch_aot_compile, with files large enough that a copy takes a moment."""
    cache = root / "torch_compile_cache"
    for unit in ("1a2b3c4d5e/rank_0_0/backbone", "torch_aot_compile/" + "f" * 64 + "/rank_0_0"):
        directory = cache / unit
        directory.mkdir(parents=True)
        for index in range(20):
            (directory / f"artifact-{index}").write_text(marker * 50_000)
        (directory / "vllm_compile_cache.py").write_text(f"# {marker}\n{{}}\n")
    return cache


def _units(shared: Path) -> list[str]:
    return sorted(str(p.relative_to(shared)) for p in (*shared.glob("*"),
                                                      *shared.glob("torch_aot_compile/*")))


@pytest.fixture
def health(tmp_path):
    """vLLM's /health stand-in: a static server that answers 200 once `health` exists."""
    served = tmp_path / "served"
    served.mkdir()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1",
                               "--directory", str(served)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N ..."
    port = int(line.split(" port ")[1].split()[0])
    yield served, f"http://127.0.0.1:{port}/health"
    server.terminate()
    server.wait(timeout=10)


def test_racing_publishers_leave_each_entry_whole_and_once(tmp_path, health):
    """Both pods find an entry unpublished and copy it (a `cp` that takes half a second makes
    sure they overlap); one rename wins, the other pod drops its copy."""
    served, url = health
    shared = tmp_path / "efs" / "compile-cache" / "v0" / "model"
    slow = tmp_path / "bin"
    slow.mkdir()
    (slow / "cp").write_text("#!/bin/sh\nsleep 0.5\nexec /bin/cp \"$@\"\n")
    (slow / "cp").chmod(0o755)
    publishers = []
    for pod in ("pod-a", "pod-b"):
        local = _compile_cache(tmp_path / pod, marker=pod[-1])
        publishers.append(_run(compile_cache.PUBLISH_SCRIPT, {
            "LOCAL_CACHE": str(local), "SHARED_CACHE": str(shared), "HEALTH_URL": url,
            "POD_NAME": pod, "HEALTH_POLL_SECONDS": "0.5",
            "PATH": f"{slow}:{os.environ['PATH']}"}))
    time.sleep(1)
    assert not shared.exists()  # nothing is published before vLLM is healthy
    (served / "health").write_text("ok")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(_units(shared) if shared.exists() else []) < 3:
        time.sleep(0.2)
    time.sleep(0.8)
    outputs = [_stop(p) for p in publishers]
    assert [rc for rc, _ in outputs] == [0, 0]  # TERM ends the sidecar at once, cleanly
    assert _units(shared) == ["1a2b3c4d5e", "torch_aot_compile",
                              "torch_aot_compile/" + "f" * 64]
    for unit in ("1a2b3c4d5e/rank_0_0/backbone", "torch_aot_compile/" + "f" * 64 + "/rank_0_0"):
        files = sorted((shared / unit).iterdir())
        assert len(files) == 21
        # Whole: every file of an entry comes from the same pod.
        markers = {f.read_text()[0] if f.name != "vllm_compile_cache.py" else f.read_text()[2]
                   for f in files}
        assert len(markers) == 1, markers
    # No pod's staging copy is left behind, published or not.
    leftovers = [p for p in shared.rglob(".*")]
    assert leftovers == []
    text = "".join(out for _, out in outputs)
    assert text.count("\npublished ") + text.startswith("published ") == 2, text
    # Each entry by exactly one of the two; a pod that copied too found it taken at its rename.
    assert text.count("kept the copy another pod published first") >= 1, text


def test_the_sidecar_stops_at_once_mid_copy_and_leaves_nothing(tmp_path, health):
    """The kubelet signals only the container's PID 1, the shell, while a copy runs: it must
    stop the copy, remove its staging directory and exit, not finish the copy first."""
    served, url = health
    (served / "health").write_text("ok")
    shared = tmp_path / "shared"
    slow = tmp_path / "bin"
    slow.mkdir()
    (slow / "cp").write_text("#!/bin/sh\nsleep 30\nexec /bin/cp \"$@\"\n")
    (slow / "cp").chmod(0o755)
    (shared / "1a2b3c4d5e").parent.mkdir(parents=True)
    local = _compile_cache(tmp_path / "pod-a", marker="a")
    publisher = _run(compile_cache.PUBLISH_SCRIPT, {
        "LOCAL_CACHE": str(local), "SHARED_CACHE": str(shared), "HEALTH_URL": url,
        "POD_NAME": "pod-a", "HEALTH_POLL_SECONDS": "1", "PATH": f"{slow}:{os.environ['PATH']}"})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and subprocess.run(
            ["pgrep", "-g", str(publisher.pid), "-f", "sleep 30"], capture_output=True).returncode:
        time.sleep(0.1)
    # A copy is running (the slow cp); give it the partial staging copy a real cp would have.
    (shared / ".pod-a.1a2b3c4d5e").mkdir()
    (shared / ".pod-a.1a2b3c4d5e" / "artifact-0").write_text("torn")
    started = time.monotonic()
    os.kill(publisher.pid, signal.SIGTERM)  # the shell alone
    publisher.communicate(timeout=10)
    assert publisher.returncode == 0 and time.monotonic() - started < 5
    # Staging removed and nothing published: at most the empty parent of the AOT entries.
    assert not list(shared.rglob(".*"))
    assert [p for p in shared.rglob("*") if p.name != "torch_aot_compile"] == []
    time.sleep(0.3)
    # The copy was stopped too: nothing of the group runs (an exited child may linger as a
    # zombie until this machine's init reaps it).
    states = subprocess.run(["ps", "-o", "stat=", "-g", str(publisher.pid)],
                            capture_output=True, text=True).stdout.split()
    assert all(state.startswith("Z") for state in states), states


def _age(path: Path, days: float) -> None:
    when = time.time() - days * 86400
    os.utime(path, (when, when))


def test_the_seed_takes_the_newest_entries_and_marks_them_used(tmp_path):
    shared = tmp_path / "shared"
    for index in range(compile_cache.SEED_MAX_ENTRIES + 2):
        (shared / f"entry{index:02d}" / "rank_0_0").mkdir(parents=True)
        _age(shared / f"entry{index:02d}", days=index + 1)  # entry00 newest
    local = tmp_path / "pod" / "torch_compile_cache"
    result = subprocess.run(["/bin/sh", "-c", compile_cache.SEED_SCRIPT],
                            env={**os.environ, "LOCAL_CACHE": str(local), "SHARED_CACHE": str(shared)},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _units(local) == [f"entry{i:02d}" for i in range(compile_cache.SEED_MAX_ENTRIES)]
    # Seeded entries count as used now; the two left out keep their age.
    ages = {p.name: (time.time() - p.stat().st_mtime) / 86400 for p in shared.iterdir()}
    assert all(ages[f"entry{i:02d}"] < 1 for i in range(compile_cache.SEED_MAX_ENTRIES))
    assert ages["entry09"] > 9


def test_a_publisher_prunes_entries_unused_for_two_weeks(tmp_path, health):
    served, url = health
    (served / "health").write_text("ok")
    shared = tmp_path / "shared"
    for name, days in (("old", compile_cache.PRUNE_AFTER_DAYS + 2), ("recent", 3)):
        (shared / name / "rank_0_0").mkdir(parents=True)
        _age(shared / name, days)
    (shared / "torch_aot_compile" / ("e" * 64)).mkdir(parents=True)
    _age(shared / "torch_aot_compile" / ("e" * 64), compile_cache.PRUNE_AFTER_DAYS + 1)
    local = _compile_cache(tmp_path / "pod-a", marker="a")
    publisher = _run(compile_cache.PUBLISH_SCRIPT, {
        "LOCAL_CACHE": str(local), "SHARED_CACHE": str(shared), "HEALTH_URL": url,
        "POD_NAME": "pod-a", "HEALTH_POLL_SECONDS": "1"})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (shared / "old").exists():
        time.sleep(0.2)
    time.sleep(0.5)
    rc, out = _stop(publisher)
    assert rc == 0, out
    assert _units(shared) == ["1a2b3c4d5e", "recent", "torch_aot_compile",
                              "torch_aot_compile/" + "f" * 64], out
    assert not list(shared.rglob(".*"))


def test_the_seed_copies_only_published_entries(tmp_path):
    shared = tmp_path / "shared"
    source = _compile_cache(tmp_path / "published", marker="p")
    shared.parent.mkdir(exist_ok=True)
    source.rename(shared)
    # Another pod's copy in progress, under its dot-name: not an entry yet.
    (shared / ".pod-c.9z9z9z9z9z").mkdir()
    (shared / ".pod-c.9z9z9z9z9z" / "half").write_text("torn")
    local = tmp_path / "pod" / "torch_compile_cache"
    result = subprocess.run(["/bin/sh", "-c", compile_cache.SEED_SCRIPT],
                            env={**os.environ, "LOCAL_CACHE": str(local), "SHARED_CACHE": str(shared)},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _units(local) == ["1a2b3c4d5e", "torch_aot_compile", "torch_aot_compile/" + "f" * 64]
    assert not (local / ".pod-c.9z9z9z9z9z").exists()
    assert not list(local.rglob(".partial*"))
    assert (local / "1a2b3c4d5e/rank_0_0/backbone/artifact-3").read_text() == "p" * 50_000


def test_the_seed_starts_a_pod_when_nothing_is_published(tmp_path):
    local = tmp_path / "pod" / "torch_compile_cache"
    result = subprocess.run(["/bin/sh", "-c", compile_cache.SEED_SCRIPT],
                            env={**os.environ, "LOCAL_CACHE": str(local),
                                 "SHARED_CACHE": str(tmp_path / "missing")},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and local.is_dir()
    assert "no published compile cache yet" in result.stdout
