"""Whether an MLflow tracking server answers, asked once and briefly before a run starts.

MLflow's client retries a server that does not answer with exponential backoff, for minutes per
call; a training or evaluation task whose tracking server is down would sit silent that long
before failing, and a run that trains first and finds the server gone at the end loses the
training. So a run that tracks to a server asks its ``/health`` first and stops with a message
naming the server when it gets no answer.
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit, urlunsplit

from photogenic.errors import DataError

#: seconds to wait for the server's answer
TIMEOUT = 10.0


def require_reachable(uri: str, timeout: float = TIMEOUT) -> None:
    """Raise DataError unless the tracking server at ``uri`` (http/https; other stores are
    local and always there) answers its health check."""
    if not uri.startswith(("http://", "https://")):
        return
    parts = urlsplit(uri)
    host = parts.netloc.rsplit("@", 1)[-1]  # credentials never go into a URL urllib sees, nor a message
    shown = urlunsplit((parts.scheme, host, parts.path, "", ""))
    request = urllib.request.Request(urlunsplit((parts.scheme, host, parts.path.rstrip("/") + "/health", "", "")))
    user = unquote(parts.username or "") or os.environ.get("MLFLOW_TRACKING_USERNAME", "")
    if user:  # as MLflow's client authenticates: the URI's user:password@, else the environment's
        password = unquote(parts.password or "") or os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only, checked above
            if response.status == 200:
                return
            problem = f"it answered HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        problem = f"it answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        problem = f"{getattr(exc, 'reason', exc)}"
    raise DataError(f"The MLflow tracking server at {shown} does not answer ({problem}); the run stops before it "
                    "starts rather than wait on it. Start the server, or point MLFLOW_TRACKING_URI "
                    "(training.tracking.tracking_uri) at one that answers.")
