"""Parsing untrusted text (sidecar metadata, annotation exports) so that any input ends as a
value or an ``UntrustedInput`` error, never as another exception from deep inside a parser.

What the standard library's parsers do with hostile input, and what is done about it here:
- ``json.loads`` raises RecursionError on deeply nested arrays, and ValueError (not
  JSONDecodeError) on an integer longer than Python's digit limit; both become UntrustedInput.
  Values nested deeper than ``MAX_JSON_DEPTH`` are refused too, so that code walking a parsed
  value recursively (``json.dumps``, a hash of it) cannot overflow later.
- ``csv`` raises ``csv.Error`` on a field over its size limit (128 KiB) and on malformed
  quoting; that becomes UntrustedInput naming the line.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from photogenic.errors import DataError

#: a Label Studio export nests about 6 deep, img2dataset's metadata 2
MAX_JSON_DEPTH = 64


class UntrustedInput(DataError):
    """Bytes from outside the project that are not what they claim to be."""


def parse_json(data: bytes | str, what: str) -> Any:
    """``data`` parsed as JSON; ``what`` names it in the error ("the .json sidecar", a file)."""
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise UntrustedInput(f"{what} is not UTF-8 text ({exc})") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise UntrustedInput(f"{what} nests arrays or objects deeper than the JSON reader follows") from None
    except ValueError as exc:  # JSONDecodeError, and integers longer than Python's digit limit
        raise UntrustedInput(f"{what} is not valid JSON: {exc}") from None
    if _depth_exceeds(value, MAX_JSON_DEPTH):
        raise UntrustedInput(f"{what} nests arrays or objects more than {MAX_JSON_DEPTH} deep")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def csv_records(text: str, what: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The header and the rows of a CSV (as ``csv.DictReader`` gives them)."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        return list(reader.fieldnames or []), list(reader)
    except csv.Error as exc:
        raise UntrustedInput(f"{what}, line {reader.line_num}: not a readable CSV row ({exc})") from None


def storable_text(text: str) -> str:
    """``text`` as valid UTF-8 can hold it: lone surrogates (from a ``\\ud800`` JSON escape, or
    an undecodable file or tar member name) become their ``\\udXXX`` escapes, which Arrow and
    Parquet accept; other text is unchanged."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
