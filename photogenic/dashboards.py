"""The two dashboards people read lineage in, on loopback: ZenML's (runs, steps, artifacts) and
MLflow's (runs, registered models and their tags). ``make dashboards`` / ``photogenic dashboards``.

ZenML's local dashboard needs ``zenml[server]``; its server runs as a daemon (``zenml login
--local``) and serves the same local store ``photogenic run`` writes to. Its first page is a
marketing survey for the local user; answering it here (the user opted out of e-mails, survey
done) opens the dashboard on the workspace instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from photogenic.errors import ConfigError

LOOPBACK = "127.0.0.1"


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        raise ConfigError(f"`{name}` is not installed in this environment (`make install` installs it).")
    return found


def start_zenml_dashboard(port: int, timeout: float = 180) -> str:
    """Start (or reuse) the local ZenML server on ``port``; return the dashboard URL."""
    try:
        import fastapi  # noqa: F401
        import zenml.zen_server.deploy.daemon  # noqa: F401 - fails without the server extras
    except ImportError:
        raise ConfigError('The ZenML dashboard needs the server extras: pip install "zenml[server]".') from None
    env = {**os.environ, "ZENML_AUTO_OPEN_DASHBOARD": "false", "ZENML_ANALYTICS_OPT_IN": "false"}
    done = subprocess.run([_tool("zenml"), "login", "--local", "--port", str(port)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise ConfigError(f"`zenml login --local` failed: {(done.stderr or done.stdout).strip()[-1500:]}")
    url = f"http://{LOOPBACK}:{port}"
    _wait_for(f"{url}/api/v1/info", timeout)
    _skip_survey(url)
    return url


def stop_zenml_dashboard() -> None:
    env = {**os.environ, "ZENML_ANALYTICS_OPT_IN": "false"}
    subprocess.run([_tool("zenml"), "logout", "--local"], env=env, capture_output=True, text=True, timeout=120)


def _skip_survey(url: str) -> None:
    """The local server has no authentication: mark its user as past the onboarding survey."""
    body = json.dumps({"email_opted_in": False}).encode()
    request = urllib.request.Request(f"{url}/api/v1/current-user", data=body, method="PUT",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()  # noqa: S310 - loopback URL we built
    from zenml.client import Client

    client = Client()
    metadata = dict(client.get_user(client.active_user.id, hydrate=True).metadata.user_metadata or {})
    client.update_user(client.active_user.id, updated_metadata={**metadata, "finished_onboarding_survey": True})


def start_mlflow_ui(tracking_uri: str, port: int, timeout: float = 120) -> tuple[subprocess.Popen, str]:
    """Start ``mlflow ui`` for ``tracking_uri`` on loopback; return the process and its URL."""
    process = subprocess.Popen(
        [_tool("mlflow"), "ui", "--backend-store-uri", tracking_uri, "--host", LOOPBACK, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://{LOOPBACK}:{port}"
    try:
        _wait_for(f"{url}/health", timeout, process)
    except BaseException:
        process.terminate()
        process.wait(timeout=30)
        raise
    return process, url


def _wait_for(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ConfigError(f"The server for {url} exited with code {process.returncode}.")
        try:
            urllib.request.urlopen(url, timeout=5).close()  # noqa: S310 - loopback URL we built
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    raise ConfigError(f"{url} did not answer within {timeout:.0f} s.")
