"""Caption cleaning: the rules every stage applies to caption text it did not write itself.

A caption is kept only if it is text: strict UTF-8 (a leading BOM is dropped), not binary
(NUL bytes or mostly control characters), and not empty once whitespace is collapsed and
control characters are removed. Over-long captions are cut at a word boundary. Whenever the
cleaned caption differs from the source bytes in a way that loses information (undecodable,
binary, empty, truncated), the original bytes are returned too, so they can be kept.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from photogenic.dataset.schema import (
    CAPTION_BINARY,
    CAPTION_EMPTY,
    CAPTION_MISSING,
    CAPTION_NOT_UTF8,
    CAPTION_OK,
    CAPTION_TRUNCATED,
)

_WHITESPACE = re.compile(r"\s+")
#: a caption with more than this share of control characters is binary, not text
_MAX_CONTROL_SHARE = 0.1


@dataclass(frozen=True)
class CleanCaption:
    text: str | None
    status: str
    #: the source bytes, kept when cleaning lost something; None when status is ok
    raw: bytes | None


def clean_caption(raw: bytes | None, max_chars: int) -> CleanCaption:
    if raw is None:
        return CleanCaption(None, CAPTION_MISSING, None)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return CleanCaption(None, CAPTION_NOT_UTF8, raw)
    if _looks_binary(text):
        return CleanCaption(None, CAPTION_BINARY, raw)
    cleaned = _WHITESPACE.sub(" ", "".join(" " if _is_control(c) else c for c in text)).strip()
    if not cleaned:
        return CleanCaption(None, CAPTION_EMPTY, raw)
    if len(cleaned) > max_chars:
        cut = cleaned[:max_chars]
        space = cut.rfind(" ")
        cut = cut[:space] if space > max_chars // 2 else cut
        return CleanCaption(cut.rstrip(), CAPTION_TRUNCATED, raw)
    return CleanCaption(cleaned, CAPTION_OK, None)


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co") and char not in "\t\n\r "


def _looks_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    controls = sum(1 for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r")
    return bool(text) and controls / len(text) > _MAX_CONTROL_SHARE
