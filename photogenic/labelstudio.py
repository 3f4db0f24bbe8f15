"""Label Studio, the annotation tool of both human passes (curation's two stages, the
evaluation's pairwise ratings): its labeling-config XML, who made an annotation, and the shape of
its JSON export, in one place.

The config is built from a few tag helpers rather than templates, so every attribute value is
quoted and escaped the same way. An annotation's author is named as Label Studio exports it:
``completed_by`` holds the user's id (``user-<id>``) or, in some versions, the user object (its
email, else username, else ``user-<id>``).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

from photogenic.errors import DataError
from photogenic.safety.parsing import UntrustedInput, parse_json


def tag(kind: str, /, **attributes: Any) -> str:
    """One self-closing tag; attribute names in snake_case become camelCase (``to_name`` ->
    ``toName``); None values are left out."""
    attrs = "".join(f" {_camel(key)}={quoteattr(str(value).lower() if isinstance(value, bool) else str(value))}"
                    for key, value in attributes.items() if value is not None)
    return f"<{kind}{attrs}/>"


def element(kind: str, children: list[str], /, **attributes: Any) -> list[str]:
    """A tag with children, as indented lines."""
    opening = tag(kind, **attributes)[:-2] + ">"
    return [opening, *(f"  {line}" for line in children), f"</{kind}>"]


def choices(name: str, to_name: str, values: list[str] | tuple[str, ...], *, choice: str = "single",
            required: bool = True, inline: bool = True, hints: dict[str, str] | None = None) -> list[str]:
    return element("Choices", [tag("Choice", value=v, hint=(hints or {}).get(v)) for v in values],
                   name=name, to_name=to_name, choice=choice, required=required or None, show_inline=inline)


def view(children: list[str], /, **attributes: Any) -> str:
    """The whole labeling config."""
    return "\n".join(element("View", children, **attributes)) + "\n"


def annotator(completed_by: Any) -> str | None:
    """Who made an annotation, from its ``completed_by``; None when it does not say."""
    if isinstance(completed_by, bool) or completed_by in (None, ""):
        return None
    if isinstance(completed_by, int):
        return f"user-{completed_by}"
    if isinstance(completed_by, dict):
        name = completed_by.get("email") or completed_by.get("username") or completed_by.get("id")
        return None if name in (None, "") else (f"user-{name}" if isinstance(name, int) else str(name))
    return str(completed_by)


def read_tasks(path: str, text: str) -> list[Any]:
    """The task list of a Label Studio JSON export (Export → JSON), or a DataError saying why not."""
    try:
        tasks = parse_json(text, f"Annotation file {path}")
    except UntrustedInput as exc:
        raise DataError(f"{exc}; expected a Label Studio JSON export (Export → JSON).") from None
    if not isinstance(tasks, list):
        raise DataError(f"Annotation file {path} holds a JSON {type(tasks).__name__}, not the list of tasks "
                        "of a Label Studio JSON export (Export → JSON; JSON-MIN and COCO are not supported).")
    return tasks


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)
