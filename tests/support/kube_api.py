"""A Kubernetes API server on 127.0.0.1 for TrainJobs: the custom-objects REST endpoints the
kubernetes client calls (create, get, delete under
/apis/trainer.kubeflow.org/v1alpha1/namespaces/NS/trainjobs), with the API server's answers
(201, 404 NotFound, 409 AlreadyExists, 422 Invalid against Trainer's CRD schema, 403 when told to
forbid), and an ``operator`` callback standing in for Kubeflow Trainer: it gets each created job
in a thread of its own and moves it along with ``set_condition``. The real client reaches it
through the kubeconfig ``kubeconfig()`` writes."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from photogenic.kfp.crd_schema import crd_errors
from photogenic.kfp.trainjob import TRAINJOB_GROUP, TRAINJOB_PLURAL, TRAINJOB_VERSION

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "tests" / "infra" / "crds" / "trainer.kubeflow.org_trainjobs.yaml"
_PATH = re.compile(rf"^/apis/{re.escape(TRAINJOB_GROUP)}/{TRAINJOB_VERSION}/namespaces/([^/]+)/{TRAINJOB_PLURAL}"
                   r"(?:/([^/?]+))?/?(?:\?.*)?$")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeAPI:
    def __init__(self, operator: Callable[[dict], None] | None = None):
        self.crd = yaml.safe_load(CRD_FILE.read_text())
        self.operator = operator
        self.jobs: dict[tuple[str, str], dict] = {}
        #: (method, namespace, name, HTTP status) of every request
        self.requests: list[tuple[str, str, str | None, int]] = []
        self.forbid = False
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, code: int, body: dict, namespace: str = "", name: str | None = None) -> None:
                api.requests.append((self.command, namespace, name, code))
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self):
                match = _PATH.match(self.path)
                if match is None:
                    self._answer(404, _status(404, "NotFound", f"the server could not find {self.path}"))
                    return None
                if api.forbid:
                    self._answer(403, _status(403, "Forbidden", f'trainjobs.{TRAINJOB_GROUP} is forbidden: User '
                                              f'"system:serviceaccount:{match.group(1)}:default" cannot '
                                              f'{self.command.lower()} resource "trainjobs"'), *match.groups())
                    return None
                return match.groups()

            def do_POST(self):
                route = self._route()
                if route is None:
                    return
                namespace, name = route
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                name = body.get("metadata", {}).get("name")
                errors = crd_errors(body, api.crd)
                if body.get("metadata", {}).get("namespace") not in (None, namespace):
                    errors.append("metadata.namespace: does not match the request's namespace")
                if errors:
                    self._answer(422, _status(422, "Invalid", "; ".join(errors)), namespace, name)
                    return
                with api.lock:
                    if (namespace, name) in api.jobs:
                        self._answer(409, _status(409, "AlreadyExists", f'trainjobs.{TRAINJOB_GROUP} "{name}" '
                                                  "already exists"), namespace, name)
                        return
                    body["metadata"].update({"namespace": namespace, "uid": f"uid-{len(api.requests)}",
                                             "creationTimestamp": _now()})
                    body["status"] = {}
                    api.jobs[(namespace, name)] = body
                self._answer(201, body, namespace, name)
                if api.operator is not None:
                    thread = threading.Thread(target=api.operator, args=(json.loads(json.dumps(body)),), daemon=True)
                    api.threads.append(thread)
                    thread.start()

            def do_GET(self):
                route = self._route()
                if route is None:
                    return
                namespace, name = route
                with api.lock:
                    job = api.jobs.get((namespace, name))
                if job is None:
                    self._answer(404, _not_found(name), namespace, name)
                else:
                    self._answer(200, job, namespace, name)

            def do_DELETE(self):
                route = self._route()
                if route is None:
                    return
                namespace, name = route
                with api.lock:
                    job = api.jobs.pop((namespace, name), None)
                if job is None:
                    self._answer(404, _not_found(name), namespace, name)
                else:
                    self._answer(200, {**_status(200, "", ""), "status": "Success"}, namespace, name)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kubeconfig(self, path: Path, namespace: str = "kubeflow") -> Path:
        """A kubeconfig whose current context is this server, in ``namespace``."""
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "local",
            "clusters": [{"name": "local", "cluster": {"server": self.url}}],
            "users": [{"name": "local", "user": {"token": "test-token"}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": "local", "namespace": namespace}}]}))
        return path

    def set_condition(self, namespace: str, name: str, kind: str, reason: str, message: str) -> None:
        """What Trainer does as the job moves on: one condition more, the object still valid."""
        with self.lock:
            job = self.jobs[(namespace, name)]
            conditions = job["status"].setdefault("conditions", [])
            conditions.append({"type": kind, "status": "True", "reason": reason, "message": message,
                               "lastTransitionTime": _now()})
            errors = crd_errors(job, self.crd)
        assert errors == [], errors

    def created(self) -> list[str]:
        return [name for method, _, name, code in self.requests if method == "POST" and code == 201]

    def stop(self) -> None:
        for thread in self.threads:
            thread.join(timeout=900)
        self.server.shutdown()
        self.server.server_close()


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def _not_found(name: str) -> dict:
    return _status(404, "NotFound", f'trainjobs.{TRAINJOB_GROUP} "{name}" not found')
