"""Credentials in URIs (``https://user:password@host``, or a token as the user): refused in the
config, moved to the environment where a URI from the environment carries them, and redacted
from whatever the project logs, raises or stores.

Secrets come from the environment (MLFLOW_TRACKING_USERNAME/PASSWORD, AWS_*, Kubernetes
Secrets) and nowhere else: the config is written to params.yaml (tracked by git), to ZenML's run
metadata and to MLflow params, and log lines and tracebacks end up in CI and pod logs. What is
redacted, and where:

- log records: ``RedactingFilter`` on the handlers of the CLI and of a KFP task (``redact_output``);
- a traceback nobody caught: the excepthook ``redact_output`` installs;
- error messages built around a URI (a DVC remote, a tracking server): ``redact`` at the raise;
- params.yaml, MLflow params and tags, ZenML metadata: ``redact_tree`` on what is written.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: ``scheme://userinfo@``: everything between ``//`` and the ``@`` that ends the authority
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")
REDACTED = "***"


def redact(text: str) -> str:
    """``text`` with the user-info of every URI in it replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)


def redact_tree(value: Any) -> Any:
    """``value`` (config data, metadata) with ``redact`` applied to every string in it."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_tree(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_tree(item) for item in value)
    return value


def has_userinfo(text: str) -> bool:
    """Whether a URI in ``text`` carries ``user@`` or ``user:password@`` (a token is often the user)."""
    return _USERINFO.search(text) is not None


def has_password(uri: str) -> bool:
    """Whether ``uri`` carries ``user:password@``."""
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
    """Redacts URIs' credentials from a record's message and traceback before any handler
    formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: logging reports it itself later
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # formatters reuse exc_text as the record's traceback once it is set
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def _redacting_excepthook(kind, value, tb) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))


def redact_output(*handlers: logging.Handler) -> None:
    """For a process's entry point: redact what ``handlers`` print, and the traceback of an
    exception nothing caught (an fsspec or DVC error can quote a URL whole)."""
    for handler in handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    sys.excepthook = _redacting_excepthook
