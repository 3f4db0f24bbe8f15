"""The pieces of the self-contained HTML pages the project writes for people (the funnel
report, the evaluation report, the human rating pages): escaping, inline SVG, and pictures as
data URIs, so that a page renders offline, as a ZenML visualisation or an MLflow artifact."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from PIL import Image


def escape(text: Any) -> str:
    """``text`` safe inside an element or a quoted attribute."""
    return html.escape(str(text), quote=True)


def svg(width: int, height: int, content: str, label: str) -> str:
    """An inline SVG picture that scales down with the page; ``label`` is read by screen readers."""
    # inline SVG in HTML needs no namespace; a page that names no URL fetches nothing
    return (f'<svg width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
            f'style="max-width:100%;height:auto">{content}</svg>')


def image_uri(image: Image.Image, side: int, *, fmt: str = "JPEG", quality: int = 85, enlarge: bool = False) -> str:
    """``image`` fitted into ``side`` x ``side`` as a data URI. ``enlarge``: an image under half
    of ``side`` is scaled up without smoothing (a tiny test model's samples), so a person can see it."""
    image = image.convert("RGB")
    if max(image.size) > side:
        image.thumbnail((side, side))
    if enlarge and image.width < side // 2:
        image = image.resize((side, side * image.height // image.width), resample=Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
