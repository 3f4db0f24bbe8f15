"""Credentials in URIs (``https://user:password@host``): refused in the config, moved to the
environment where a URI from the environment carries them, and redacted from every message
the project logs or raises.

Secrets come from the environment (MLFLOW_TRACKING_USERNAME/PASSWORD, AWS_*, Kubernetes
Secrets) and nowhere else: the config is written to params.yaml (tracked by git), to ZenML's run
metadata and to MLflow params, and log lines end up in CI logs.
"""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import urlsplit, urlunsplit

#: ``scheme://userinfo@``: everything between ``//`` and the ``@`` that ends the authority
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")
REDACTED = "***"


def redact(text: str) -> str:
    """``text`` with the user-info of every URI in it replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)


def has_password(uri: str) -> bool:
    """Whether ``uri`` carries ``user:password@`` (a bare ``user@`` is a name, not a secret)."""
    match = _USERINFO.search(uri)
    return match is not None and ":" in match["userinfo"]


def mlflow_credentials_to_environment(uri: str) -> str:
    """``uri`` without its ``user:password@``, which goes to MLFLOW_TRACKING_USERNAME and
    MLFLOW_TRACKING_PASSWORD (where MLflow reads them) unless those are set already."""
    parts = urlsplit(uri)
    if not parts.scheme or parts.username is None:
        return uri
    os.environ.setdefault("MLFLOW_TRACKING_USERNAME", parts.username)
    if parts.password is not None:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", parts.password)
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class RedactingFilter(logging.Filter):
    """Redacts URIs' credentials from a record's message before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: logging reports it itself later
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
