"""Running a compiled pipeline package on this machine the way a cluster runs it: every task as
its own process, in a fresh copy of the image's files, with a fresh HOME and TMPDIR, and with
only the environment the compiled pipeline gives it (the Secrets and ConfigMaps it names, filled
from the values given here, as the kubelet fills them) — so what passes here shared nothing but
the object store and the tracking server, as pods share nothing else.

It reads the package (the IR YAML that `photogenic kfp compile` writes and the KFP server runs):
the root DAG and the sub-DAGs of ``dsl.If`` conditions, each executor's command line with KFP's
placeholders filled in, output parameters through files, retry policies, timeouts
(``activeDeadlineSeconds``), and KFP's cache (a task whose component and inputs are those of an
earlier successful run of the same cache is not run again). ``kfp.local`` runs lightweight
components in the caller's directory and environment, which would hide a task that reads what
another task left on disk; this runner cannot.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from photogenic.errors import DataError
from photogenic.kfp.parameters import parameter_text

log = logging.getLogger(__name__)

_INPUT = re.compile(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}")
_OUTPUT = re.compile(r"\{\{\$\.outputs\.parameters\['([^']+)'\]\.output_file\}\}")
_CONDITION = re.compile(r"^inputs\.parameter_values\['([^']+)'\]\s*(==|!=)\s*'([^']*)'$")

#: what the project image itself sets (infra/docker/Dockerfile's ENV lines) besides PATH
IMAGE_ENV = {"PYTHONUNBUFFERED": "1", "DVC_NO_ANALYTICS": "1", "ZENML_ANALYTICS_OPT_IN": "false",
             "GX_ANALYTICS_ENABLED": "false", "HF_HUB_OFFLINE": "1"}


@dataclass
class TaskRun:
    name: str
    #: succeeded, failed, skipped (its condition was false) or cached
    state: str
    outputs: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    log: str | None = None


@dataclass
class PipelineRun:
    run_id: str
    tasks: dict[str, TaskRun] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return all(t.state != "failed" for t in self.tasks.values())

    def output(self, task: str, name: str = "result") -> str:
        return self.tasks[task].outputs[name]


@dataclass
class Cluster:
    """What the cluster gives the pods: Secret and ConfigMap data by name (what the compiled
    pipeline names must be here, as on a cluster a missing one fails the pod), the image's own
    environment, and the image's files: what ``dockerfile``'s COPY lines take from ``context``
    (the checkout), less what .dockerignore keeps out."""

    context: Path
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    image_env: dict[str, str] = field(default_factory=dict)
    dockerfile: str = "infra/docker/Dockerfile"
    python: str = sys.executable
    #: KFP's cache: cache key -> the outputs of the successful run that made it
    cache: dict[str, dict[str, str]] = field(default_factory=dict)
    #: the namespace the pods run in (standalone Kubeflow Pipelines': kubeflow)
    namespace: str = "kubeflow"

    def value_of(self, kind: str, name: str, key: str, optional: bool = False) -> str | None:
        """Key ``key`` of Secret (``kind`` "secret") or ConfigMap ``name``, as the kubelet reads
        it for a container's environment: a missing one fails the pod unless optional."""
        data = (self.secrets if kind == "secret" else self.config_maps).get(name)
        if data is not None and key in data:
            return data[key]
        if optional:
            return None
        if data is None:
            raise DataError(f"The pod reads {kind} {name!r}, which this cluster does not have.")
        raise DataError(f"The {kind} {name!r} has no key {key!r}, which the pod reads.")


def image_files(context: Path, dockerfile: Path, target: Path) -> Path:
    """Copy into ``target`` what the image's COPY lines take from ``context`` (COPY --from, from
    another stage, is not the project's), minus the .dockerignore patterns (``!`` re-includes)."""
    ignore = _dockerignore(context)
    lines = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8")).splitlines()
    for line in lines:
        words = line.split()
        if not words or words[0].upper() != "COPY" or any(w.startswith("--from") for w in words):
            continue
        sources, destination = [w for w in words[1:-1] if not w.startswith("--")], words[-1]
        for source in sources:
            into = target / destination.removeprefix("./") if destination not in (".", "./") else target
            if destination.endswith("/") or len(sources) > 1 or destination in (".", "./"):
                into = into / Path(source).name
            _copy(context, context / source, into, ignore)
    return target


def _copy(context: Path, source: Path, into: Path, ignore) -> None:
    if ignore(source.relative_to(context).as_posix()):
        return
    if source.is_dir():
        for child in sorted(source.iterdir()):
            _copy(context, child, into / child.name, ignore)
    elif source.exists():
        into.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, into)


def _dockerignore(context: Path) -> Callable[[str], bool]:
    import fnmatch

    path = context / ".dockerignore"
    patterns = [p.strip() for p in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    patterns = [p for p in patterns if p and not p.startswith("#")]

    def ignored(relpath: str) -> bool:
        verdict = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            body = pattern[1:] if negate else pattern
            parts = relpath.split("/")
            prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
            if any(fnmatch.fnmatch(p, body) or fnmatch.fnmatch(p, body.removeprefix("**/")) or
                   (body.startswith("**/") and fnmatch.fnmatch(p.rsplit("/", 1)[-1], body[3:])) for p in prefixes):
                verdict = not negate
        return verdict

    return ignored


def run_package(package: str | Path, arguments: dict[str, Any], cluster: Cluster, workdir: Path,
                run_id: str = "local-run", on_task: Callable[[str], None] | None = None) -> PipelineRun:
    """Run the compiled ``package`` with the pipeline ``arguments``; every pod's files, home, log
    and outputs under ``workdir/<task>``. ``on_task(name)`` is called before each task starts
    (the fault tests stop a server there)."""
    documents = list(yaml.safe_load_all(Path(package).read_text(encoding="utf-8")))
    spec = documents[0]
    platform = documents[1] if len(documents) > 1 else {}
    executors_k8s = (((platform or {}).get("platforms") or {}).get("kubernetes") or {}).get("deploymentSpec", {})
    executors_k8s = executors_k8s.get("executors", {})
    root_inputs = _root_inputs(spec, arguments)
    run = PipelineRun(run_id)
    runner = _Runner(spec, executors_k8s, cluster, Path(workdir), run, on_task)
    runner.dag(spec["root"]["dag"], root_inputs, {"pipeline_job_uuid": run_id, "pipeline_job_name": f"photogenic-{run_id}"})
    return run


def _root_inputs(spec: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
    definitions = (spec["root"].get("inputDefinitions") or {}).get("parameters") or {}
    unknown = set(arguments) - set(definitions)
    if unknown:
        raise DataError(f"The pipeline has no parameters {sorted(unknown)}; it has {sorted(definitions)}.")
    values = {}
    for name, definition in definitions.items():
        if name in arguments:
            values[name] = arguments[name]
        elif "defaultValue" in definition:
            values[name] = definition["defaultValue"]
        else:
            raise DataError(f"The pipeline parameter {name!r} has no default; give it a value.")
    return values


class _Runner:
    def __init__(self, spec, executors_k8s, cluster: Cluster, workdir: Path, run: PipelineRun, on_task):
        self.spec, self.executors_k8s, self.cluster = spec, executors_k8s, cluster
        self.workdir, self.run, self.on_task = workdir, run, on_task

    def dag(self, dag: dict[str, Any], inputs: dict[str, Any], job: dict[str, str]) -> None:
        """Run a DAG's tasks in dependency order, with ``inputs`` the DAG's own input values."""
        tasks = dag["tasks"]
        done: dict[str, TaskRun] = {}
        while len(done) < len(tasks):
            ready = [n for n, t in tasks.items() if n not in done
                     and set(t.get("dependentTasks") or []) <= set(done)]
            if not ready:
                raise DataError(f"The tasks {sorted(set(tasks) - set(done))} wait on each other.")
            for name in sorted(ready):
                task = tasks[name]
                upstream_failed = any(done[d].state in ("failed", "skipped") for d in task.get("dependentTasks") or [])
                if upstream_failed:
                    done[name] = self.record(TaskRun(name, "skipped"))
                    continue
                values = self.task_inputs(task, inputs, done, job)
                condition = (task.get("triggerPolicy") or {}).get("condition")
                if condition and not _holds(condition, values):
                    log.info("%s: condition %s is false: skipped", name, condition)
                    done[name] = self.record(TaskRun(name, "skipped"))
                    continue
                component = self.spec["components"][task["componentRef"]["name"]]
                if "dag" in component:
                    self.dag(component["dag"], values, job)
                    done[name] = TaskRun(name, "failed" if not self.run.succeeded else "succeeded")
                else:
                    done[name] = self.record(self.execute(name, task, component, values))

    def record(self, task_run: TaskRun) -> TaskRun:
        self.run.tasks[task_run.name] = task_run
        return task_run

    def task_inputs(self, task, inputs, done, job) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, source in ((task.get("inputs") or {}).get("parameters") or {}).items():
            if "componentInputParameter" in source:
                values[name] = inputs[source["componentInputParameter"]]
            elif "taskOutputParameter" in source:
                producer = source["taskOutputParameter"]
                values[name] = done[producer["producerTask"]].outputs[producer["outputParameterKey"]]
            elif "runtimeValue" in source:
                constant = source["runtimeValue"]["constant"]
                if isinstance(constant, str):
                    constant = re.sub(r"\{\{\$\.(\w+)\}\}", lambda m: job.get(m.group(1), m.group(0)), constant)
                values[name] = constant
        return values

    def execute(self, name: str, task: dict, component: dict, values: dict[str, Any]) -> TaskRun:
        executor_label = component["executorLabel"]
        container = self.spec["deploymentSpec"]["executors"][executor_label]["container"]
        definitions = (component.get("inputDefinitions") or {}).get("parameters") or {}
        for key, definition in definitions.items():  # defaults of inputs the task does not set
            if key not in values and "defaultValue" in definition:
                values[key] = definition["defaultValue"]
        key = _cache_key(container, values)
        caching = (task.get("cachingOptions") or {}).get("enableCache", False)
        if caching and key in self.cluster.cache:
            log.info("%s: served from the cache", name)
            return TaskRun(name, "cached", dict(self.cluster.cache[key]))
        k8s = self.executors_k8s.get(executor_label) or {}
        retries = int((task.get("retryPolicy") or {}).get("maxRetryCount", 0))
        timeout = int(k8s["activeDeadlineSeconds"]) if k8s.get("activeDeadlineSeconds") else None
        outputs_wanted = list(((component.get("outputDefinitions") or {}).get("parameters") or {}))
        result = TaskRun(name, "failed")
        for attempt in range(1, retries + 2):
            if self.on_task is not None:
                self.on_task(name)
            pod = self.pod(name, attempt)
            outputs = {o: pod / "outputs" / o for o in outputs_wanted}
            command = [self.cluster.python if part == "python" else part for part in container["command"]]
            command += [_fill(arg, values, outputs) for arg in container.get("args") or []]
            log_path = pod / "task.log"
            with open(log_path, "w", encoding="utf-8") as out:
                try:
                    env = {**self.environment(k8s, pod), **{e["name"]: e["value"] for e in container.get("env") or []}}
                    done = subprocess.run(command, cwd=pod / "image", env=env, stdout=out,
                                          stderr=subprocess.STDOUT, timeout=timeout)
                    code = done.returncode
                except subprocess.TimeoutExpired:
                    out.write(f"\nstopped: past activeDeadlineSeconds={timeout}\n")
                    code = -1
            result = TaskRun(name, "failed", attempts=attempt, log=str(log_path))
            if code == 0:
                result = TaskRun(name, "succeeded", {o: p.read_text(encoding="utf-8") for o, p in outputs.items()},
                                 attempt, str(log_path))
                if caching:
                    self.cluster.cache[key] = dict(result.outputs)
                break
            log.warning("%s: attempt %d of %d failed (exit %s); log %s", name, attempt, retries + 1, code, log_path)
        return result

    def pod(self, name: str, attempt: int) -> Path:
        return fresh_pod(self.cluster, self.workdir, f"{name}-{attempt}")

    def environment(self, k8s: dict[str, Any], pod: Path) -> dict[str, str]:
        """What the kubelet gives the container: the image's environment, the named Secrets' and
        ConfigMaps' keys, and fields of the pod's own metadata (the run it belongs to)."""
        env = image_environment(self.cluster, pod)
        for kind, setting in (("secret", "secretAsEnv"), ("configmap", "configMapAsEnv")):
            for source in k8s.get(setting) or []:
                name = source.get("secretName") or source.get("configMapName")
                for pair in source.get("keyToEnv") or []:
                    key = pair.get("secretKey") or pair.get("configMapKey")
                    value = self.cluster.value_of(kind, name, key, optional=bool(source.get("optional")))
                    if value is not None:
                        env[pair["envVar"]] = value
        metadata = {"metadata.labels['pipeline/runid']": self.run.run_id,
                    "metadata.annotations['pipelines.kubeflow.org/run_name']": f"photogenic-{self.run.run_id}",
                    "metadata.namespace": self.cluster.namespace}
        for item in k8s.get("fieldPathAsEnv") or []:
            if item["fieldPath"] not in metadata:
                raise DataError(f"A pod field this runner does not know: {item['fieldPath']!r}.")
            env[item["name"]] = metadata[item["fieldPath"]]
        return env


def fresh_pod(cluster: Cluster, workdir: Path, name: str) -> Path:
    """A fresh pod under ``workdir/name``: the image's files (``image/``), an empty home, temp dir
    and outputs folder."""
    template = workdir / "image"
    if not template.exists():
        image_files(cluster.context, cluster.context / cluster.dockerfile, template)
    pod = workdir / name
    if pod.exists():
        shutil.rmtree(pod)
    shutil.copytree(template, pod / "image")
    for folder in ("home", "tmp", "outputs"):
        (pod / folder).mkdir(parents=True)
    return pod


def image_environment(cluster: Cluster, pod: Path) -> dict[str, str]:
    """A container's environment before its pod spec adds to it: the image's."""
    return {"PATH": os.pathsep.join([str(Path(cluster.python).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(pod / "home"), "TMPDIR": str(pod / "tmp"), "LANG": "C.UTF-8", **IMAGE_ENV, **cluster.image_env}


def container_env(cluster: Cluster, variables: list[dict[str, Any]]) -> dict[str, str]:
    """A container spec's ``env`` list as the kubelet resolves it: literal values, and
    ``valueFrom`` Secret and ConfigMap keys filled from ``cluster``."""
    env = {}
    for variable in variables:
        if "value" in variable:
            env[variable["name"]] = variable["value"]
            continue
        source = variable["valueFrom"]
        kind, ref = ("secret", source["secretKeyRef"]) if "secretKeyRef" in source else \
            ("configmap", source["configMapKeyRef"])
        value = cluster.value_of(kind, ref["name"], ref["key"], optional=bool(ref.get("optional")))
        if value is not None:
            env[variable["name"]] = value
    return env


def run_trainjob(job: dict[str, Any], cluster: Cluster, workdir: Path, timeout_s: float | None = None) -> str | None:
    """Run a Kubeflow Trainer TrainJob (photogenic.kfp.trainjob) as Trainer's torch runtime would:
    one pod per node, each a process in a fresh copy of the image's files, with the job's
    environment (its Secret and ConfigMap keys filled from ``cluster``) and the rendezvous
    variables the runtime sets (PET_*; the master at 127.0.0.1 instead of node 0's service
    name). None when every node exits 0, else why the job failed."""
    import socket

    trainer = job["spec"]["trainer"]
    with socket.socket() as probe:  # the runtime's port is 29500; any free one stands in here
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nodes = []
    for rank in range(int(trainer["numNodes"])):
        pod = fresh_pod(cluster, workdir, f"{job['metadata']['name']}-node-{rank}")
        env = {**image_environment(cluster, pod), **container_env(cluster, trainer.get("env") or [])}
        env.update({"PET_NNODES": str(trainer["numNodes"]), "PET_NPROC_PER_NODE": str(trainer["numProcPerNode"]),
                    "PET_NODE_RANK": str(rank), "PET_MASTER_ADDR": "127.0.0.1", "PET_MASTER_PORT": str(port)})
        command = [cluster.python if part == "python" else part for part in trainer["command"]]
        out = open(pod / "node.log", "w", encoding="utf-8")
        nodes.append((subprocess.Popen(command, cwd=pod / "image", env=env, stdout=out, stderr=subprocess.STDOUT),
                      out, pod / "node.log"))
    failure = None
    try:
        for rank, (process, out, log_path) in enumerate(nodes):
            try:
                code = process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                code = None
            out.close()
            if code != 0 and failure is None:
                failure = (f"node {rank} " + ("ran past the deadline" if code is None else f"exited with code {code}")
                           + f": {log_path.read_text(encoding='utf-8')[-2000:]}")
                for other, _, _ in nodes:  # the job fails as a whole: the other nodes stop
                    if other.poll() is None:
                        other.kill()
    finally:
        for process, out, _ in nodes:
            if process.poll() is None:
                process.kill()
                process.wait()
            out.close()
    return failure


def _fill(arg: str, values: dict[str, Any], outputs: dict[str, Path]) -> str:
    arg = _INPUT.sub(lambda m: parameter_text(values[m.group(1)]), arg)
    return _OUTPUT.sub(lambda m: str(outputs[m.group(1)]), arg)


def _holds(condition: str, values: dict[str, Any]) -> bool:
    match = _CONDITION.match(condition.strip())
    if match is None:
        raise DataError(f"A condition this runner cannot read: {condition!r}.")
    name, op, expected = match.groups()
    equal = parameter_text(values[name]) == expected
    return equal if op == "==" else not equal


def _cache_key(container: dict[str, Any], values: dict[str, Any]) -> str:
    """KFP's cache key: the component's container and its input values."""
    text = json.dumps({"container": container, "inputs": values}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()

