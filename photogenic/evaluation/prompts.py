"""Prompt sets: what the models under evaluation are asked to draw.

A prompt set is a table with one row per prompt: ``prompt_id``, ``prompt``, ``category`` and,
for prompts of the sample world, the scene attributes the prompt names (``kind``, ``colour``,
``placement``, ``background``), which the scene-attribute judge checks. User files come in the
shapes prompt benchmarks are distributed in:

- plain text (``.txt``): one prompt per line; blank lines and lines starting with ``#`` are
  skipped; every prompt gets the category ``uncategorised``;
- CSV or TSV (``.csv``, ``.tsv``) with a header row holding ``Prompt`` and optionally
  ``Category`` (case-insensitive), as PartiPrompts' ``PartiPrompts.tsv`` is; an ``id`` column,
  when present, names the prompts, and the attribute columns above are read when present.

A file that cannot be used (missing, empty, no ``Prompt`` column, an empty prompt, a duplicate
id) is a ``DataError`` naming the file and the line.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath

from photogenic.dataset.atomic import filesystem, write_text
from photogenic.errors import DataError

#: the scene attributes a sample-world prompt names
ATTRIBUTES = ("kind", "colour", "placement", "background")
UNCATEGORISED = "uncategorised"
COLUMNS = ("prompt_id", "prompt", "category", *ATTRIBUTES)


@dataclass(frozen=True)
class Prompt:
    prompt_id: str
    prompt: str
    category: str = UNCATEGORISED
    kind: str | None = None
    colour: str | None = None
    placement: str | None = None
    background: str | None = None

    @property
    def attributes(self) -> dict[str, str]:
        """The scene attributes this prompt names (empty for a free-text prompt)."""
        return {k: v for k in ATTRIBUTES if (v := getattr(self, k))}


def prompt_id_for(text: str) -> str:
    """A stable id for a prompt without one: the first 12 hex digits of its sha256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def load_prompts(path: str, limit: int | None = None) -> list[Prompt]:
    """Read a prompt file (text, CSV or TSV; see the module docstring)."""
    fs, target = filesystem(path)
    if not fs.exists(target):
        raise DataError(f"The prompt file {path} does not exist. Set evaluate.prompts to a .txt, .csv or .tsv "
                        "file (one prompt per line, or a table with a Prompt column).")
    try:
        text = fs.cat_file(target).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"The prompt file {path} is not UTF-8 text ({exc}).") from None
    suffix = PurePosixPath(target).suffix.lower()
    if suffix == ".txt":
        prompts = _from_lines(text)
    elif suffix in (".csv", ".tsv"):
        prompts = _from_table(text, "\t" if suffix == ".tsv" else ",", path)
    else:
        raise DataError(f"The prompt file {path} has the suffix {suffix!r}; use .txt (one prompt per line), "
                        ".csv or .tsv (a table with a Prompt column).")
    if not prompts:
        raise DataError(f"The prompt file {path} holds no prompts.")
    _check_unique(prompts, path)
    return prompts[:limit] if limit else prompts


def _from_lines(text: str) -> list[Prompt]:
    lines = (line.strip() for line in text.splitlines())
    return [Prompt(prompt_id_for(line), line) for line in lines if line and not line.startswith("#")]


def _from_table(text: str, delimiter: str, path: str) -> list[Prompt]:
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = {(name or "").strip().lower(): name for name in (reader.fieldnames or [])}
    if "prompt" not in header:
        found = ", ".join(repr(n) for n in reader.fieldnames or []) or "no header"
        raise DataError(f"The prompt table {path} needs a 'Prompt' column (found {found}); PartiPrompts-style "
                        "files have Prompt and Category columns.")
    prompts = []
    for line, row in enumerate(reader, start=2):
        if None in row:
            raise DataError(f"{path} line {line} has more fields than the header.")
        value = {key: (row.get(original) or "").strip() for key, original in header.items()}
        if not value["prompt"]:
            raise DataError(f"{path} line {line} has an empty prompt.")
        prompts.append(Prompt(
            prompt_id=value.get("prompt_id") or value.get("id") or prompt_id_for(value["prompt"]),
            prompt=value["prompt"],
            category=value.get("category") or UNCATEGORISED,
            **{k: value.get(k) or None for k in ATTRIBUTES},
        ))
    return prompts


def _check_unique(prompts: list[Prompt], path: str) -> None:
    seen: dict[str, str] = {}
    for p in prompts:
        if p.prompt_id in seen:
            raise DataError(f"The prompt file {path} names two prompts {p.prompt_id!r} ({seen[p.prompt_id]!r} and "
                            f"{p.prompt!r}); prompt ids (or, without an id column, prompt texts) must be unique.")
        seen[p.prompt_id] = p.prompt


def write_prompts(path: str, prompts: list[Prompt]) -> None:
    """Write a prompt set as TSV with every column (the format ``load_prompts`` reads back)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), delimiter="\t", lineterminator="\n")
    writer.writeheader()
    for p in prompts:
        writer.writerow({k: ("" if v is None else v) for k, v in asdict(p).items()})
    write_text(path, buffer.getvalue())
