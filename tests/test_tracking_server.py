"""A run that tracks to a server asks it first, briefly: a server that does not answer stops the
run with a message naming it (never its credentials), not minutes of MLflow's retries."""

import http.server
import threading
import time

import pytest

from photogenic.errors import DataError
from photogenic.tracking_server import require_reachable
from tests.cluster.conftest import free_port


def test_a_server_that_does_not_answer_stops_the_run_at_once():
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(DataError, match=rf"tracking server at http://127\.0\.0\.1:{port} does not answer") as error:
        require_reachable(f"http://ana:s3cret@127.0.0.1:{port}")
    assert time.monotonic() - started < 5 and "s3cret" not in str(error.value)


def test_a_server_that_answers_its_health_check_passes_and_local_stores_are_not_asked(tmp_path):
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's API
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        require_reachable(f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(DataError, match="answered HTTP 404"):
            require_reachable(f"http://127.0.0.1:{server.server_port}/not-mlflow")
    finally:
        server.shutdown()
    require_reachable(f"sqlite:///{tmp_path / 'mlflow.db'}")
    require_reachable((tmp_path / "mlruns").as_uri())


def test_a_server_behind_credentials_is_asked_with_them_never_with_them_in_the_url(monkeypatch):
    seen = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's API
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    try:
        require_reachable(f"http://ana:s3cret@127.0.0.1:{server.server_port}")
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bo")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")
        require_reachable(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert seen == [("/health", "Basic YW5hOnMzY3JldA=="), ("/health", "Basic Ym86cHc=")]  # ana:s3cret, bo:pw
