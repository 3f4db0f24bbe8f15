"""The run configuration: one pydantic model, loaded from YAML, with ``--set a.b=c`` overrides.

Unknown keys and bad values are errors that name the key path and, where the value comes from
a fixed set, the allowed values. The resolved config (defaults filled in) is what every runner
stores with its run and what ``params.yaml`` holds for DVC.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from photogenic.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _dataset_name(value: str) -> str:
    """Dataset names become folder names under <data.root>/datasets: no paths allowed."""
    if not _NAME.match(value):
        raise ValueError("must be a plain dataset name (letters, digits, '_', '-', '.'), not a path")
    return value


#: a dataset name: a folder under <data.root>/datasets, never a path
DatasetName = Annotated[str, AfterValidator(_dataset_name)]


class _Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    root: str = Field("data", description="The data folder; relative paths in the config live under it.")


class SamplePoolConfig(_Section):
    """The embedded synthetic pool that `make demo` ingests."""

    out: str = Field("raw/sample-pool", description="Folder under the data root.")
    n: int = Field(4000, ge=1)
    seed: int = 0
    shard_size: int = Field(1000, ge=1)


class SourceConfig(_Section):
    """One source of image–text pairs for ingest."""

    kind: Literal["webdataset", "folder", "table"]
    uri: str = Field(
        description="webdataset: tar path/URL, glob or brace pattern (shard-{00000..00009}.tar); "
        "folder: a folder of images with sidecar .txt captions; table: a .parquet or .csv file."
    )
    image_column: str = Field("image", description="table only: column with an image path or bytes")
    caption_column: str = Field("caption", description="table only: column with the caption")
    key_column: str | None = Field(None, description="table only: column with a stable row key")


class IngestGateConfig(_Section):
    """Thresholds of the Great Expectations suite that gates the ingested dataset."""

    max_quarantine_share: float = Field(0.05, ge=0.0, le=1.0)
    min_rows: int = Field(1, ge=0)


class IngestConfig(_Section):
    sources: list[SourceConfig] = Field(
        default_factory=lambda: [SourceConfig(kind="webdataset", uri="raw/sample-pool/*.tar")]
    )
    output: DatasetName = Field("ingested", description="Dataset name; written to <data.root>/datasets/<output>.")
    workers: int = Field(2, ge=0, description="Decode processes; 0 decodes in the main process.")
    batch_size: int = Field(64, ge=1, description="Samples sent to the decode workers at a time.")
    max_pixels: int = Field(
        64_000_000, ge=1, description="Decompression-bomb limit: images with more pixels are quarantined."
    )
    max_image_bytes: int = Field(64 * 2**20, ge=1)
    max_caption_chars: int = Field(1000, ge=1, description="Longer captions are truncated; the original is kept.")
    shard_max_images: int = Field(10_000, ge=1)
    shard_max_bytes: int = Field(2**30, ge=1)
    gate: IngestGateConfig = Field(default_factory=IngestGateConfig)



class Bounds(_Section):
    min: float | None = None
    max: float | None = None


class SizeFilterConfig(_Section):
    """Emu's size and aspect-ratio filter. Small images are not rejected outright: photogenic
    ones below the training resolution are upsampled later; only the unusably small go."""

    enabled: bool = True
    min_short_side: int = Field(128, ge=1)
    max_aspect_ratio: float = Field(3.0, ge=1.0)


class MetadataFilterConfig(_Section):
    """Thresholds on numeric source metadata (img2dataset's JSON, a table's columns), as Emu's
    last automatic step used engagement signals."""

    thresholds: dict[str, Bounds] = Field(
        default_factory=dict, description="metadata name (e.g. likes, views) -> {min, max}"
    )
    missing: Literal["keep", "reject"] = Field("keep", description="rows without the metadata")


class TechnicalFilterConfig(_Section):
    """Weight-free technical quality (photogenic.scoring.technical)."""

    enabled: bool = True
    min_quality: float = Field(0.6, ge=0.0, le=1.0, description="Combined technical_quality below this is rejected.")
    min_component: float = Field(
        0.2, ge=0.0, le=1.0, description="Any single measure's [0,1] score below this is rejected, and named."
    )


class DedupFilterConfig(_Section):
    """Near-duplicate clusters by perceptual hash; one member of each is kept."""

    enabled: bool = True
    # 4 with the colour hash at 8 (see photogenic.filtering.scorers.dedup for the calibration);
    # the grey hash alone at 6 bits merges colour-swapped renders of one scene template on the
    # sample pool (photogenic recall 0.82 vs 0.96 at 2): set 2 if max_chroma_distance is null
    max_distance: int = Field(4, ge=0, le=63, description="Hamming distance in bits (see photogenic.scoring.dedup).")
    max_chroma_distance: int | None = Field(
        8, ge=0, le=63, description="Colour-layout hash distance that must also hold; null: the grey hash alone."
    )
    keep_best_by: str | None = Field(
        "score_technical_quality", description="Score column that picks the member kept (higher wins)."
    )


class OcrFilterConfig(_Section):
    """Share of the image covered by text lines found by the detection model that ships in
    rapidocr-onnxruntime (no recognition: where text is, not what it says)."""

    enabled: bool = True
    # calibrated on the sample pool (benchmarks/filter_quality.py, no ground truth in the
    # pipeline): its planted overlays and watermarks cover >= 2% of the frame
    max_text_area: float = Field(
        0.015, ge=0.0, le=1.0, description="Images whose text lines cover more than this share are rejected."
    )
    min_side: int = Field(
        320, ge=32, description="The detector sees the image with its short side scaled to this many px (small "
        "corner watermarks are missed below it; the cost grows with it), its long side at most 4x that."
    )
    box_threshold: float = Field(0.5, ge=0.0, le=1.0, description="Detector confidence a text box needs.")
    # calibrated on the sample pool: the detector's boxes on planted text lines are 4.5-10 times as
    # wide as tall (a short watermark about 2-2.3); the spurious boxes it puts on textured
    # photogenic scenes 1.5-2.1. At 1.5, 6% of photogenic images were rejected; at 2.5, none
    min_line_aspect: float = Field(
        2.5, ge=0.0, description="A box counts as a text line when its width is at least this times its height."
    )
    max_line_height: float = Field(
        0.35, gt=0.0, le=1.0, description="...and its height at most this share of the image's short side "
        "(the detector also fires on large textured regions, which are no text line)."
    )


#: nudenet classes that mean offensive content (the covered, face and feet classes do not)
NSFW_OFFENSIVE = ("FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED",
                  "BUTTOCKS_EXPOSED", "ANUS_EXPOSED")


class NsfwFilterConfig(_Section):
    """Offensive content, by the NSFW detector that ships in nudenet."""

    enabled: bool = True
    max_score: float = Field(
        0.5, ge=0.0, le=1.0, description="Images where any offensive class is detected above this are rejected."
    )
    classes: list[str] = Field(
        default_factory=lambda: list(NSFW_OFFENSIVE), description="nudenet classes that count as offensive."
    )


class ClipFilterConfig(_Section):
    """CLIP image-caption cosine similarity, through transformers. Off without a checkpoint."""

    model: str | None = Field(
        None, description="CLIP checkpoint: a Hugging Face hub id or a local folder (CLIPModel + processor). "
        "Also used by filter.aesthetic and filter.concept."
    )
    min_score: float | None = Field(0.2, description="Image-caption cosine below this is rejected (None: record only).")
    batch_size: int = Field(16, ge=1)
    cost_ms: float = Field(150.0, gt=0, description="Per-image cost on one core, for ordering the cascade.")


class AestheticFilterConfig(_Section):
    """LAION-style aesthetic predictor: an MLP head on normalised CLIP image embeddings of
    filter.clip.model. Off without a head."""

    head: str | None = Field(
        None, description="Weights of the MLP head (.pth/.pt state dict or .safetensors), e.g. LAION's "
        "sac+logos+ava1-l14-linearMSE.pth for CLIP ViT-L/14; a relative path lives under data.root."
    )
    min_score: float | None = Field(5.0, description="Predicted aesthetic score (1-10) below this is rejected.")


class ConceptFilterConfig(_Section):
    """Balance the candidate pool across visual concepts: cap each concept's share, keeping the
    best rows of an over-represented concept by ``keep_best_by``."""

    enabled: bool = True
    max_share: float = Field(0.3, gt=0.0, le=1.0, description="Largest share of the candidates one concept may hold.")
    concepts: list[str] = Field(
        default_factory=lambda: ["portrait", "food", "animal", "landscape", "car", "plant", "architecture"],
        description="Concepts for CLIP zero-shot assignment (when filter.clip.model is set).",
    )
    prompt: str = Field("a photo of {concept}", description="Zero-shot prompt template.")
    metadata_key: str = Field(
        "category", description="Without CLIP: the source metadata field (img2dataset .json) naming the concept."
    )
    keep_best_by: str | None = Field("score_technical_quality", description="Score column; higher is kept first.")


class TopKConfig(_Section):
    """Optionally send exactly ``k`` candidates to curation: the best by ``by``."""

    k: int | None = Field(None, ge=1, description="None: every survivor goes on.")
    by: str = Field("score_technical_quality", description="Score column; higher is better.")


class FilterConfig(_Section):
    input: DatasetName = Field("ingested", description="Dataset to filter.")
    output: DatasetName = Field("candidates", description="The candidate pool for human curation.")
    workers: int = Field(2, ge=0)
    batch_size: int = Field(32, ge=1)
    size: SizeFilterConfig = Field(default_factory=SizeFilterConfig)
    metadata: MetadataFilterConfig = Field(default_factory=MetadataFilterConfig)
    technical: TechnicalFilterConfig = Field(default_factory=TechnicalFilterConfig)
    dedup: DedupFilterConfig = Field(default_factory=DedupFilterConfig)
    ocr: OcrFilterConfig = Field(default_factory=OcrFilterConfig)
    nsfw: NsfwFilterConfig = Field(default_factory=NsfwFilterConfig)
    clip: ClipFilterConfig = Field(default_factory=ClipFilterConfig)
    aesthetic: AestheticFilterConfig = Field(default_factory=AestheticFilterConfig)
    concept: ConceptFilterConfig = Field(default_factory=ConceptFilterConfig)
    top_k: TopKConfig = Field(default_factory=TopKConfig)



class DvcConfig(_Section):
    enabled: bool = Field(True, description="Version every dataset a run produces with DVC.")
    push: bool = Field(True, description="Push versioned datasets to the default DVC remote.")


class RunConfig(_Section):
    """Everything one run needs. Sections map one-to-one onto the stages."""

    data: DataConfig = Field(default_factory=DataConfig)
    sample_pool: SamplePoolConfig = Field(default_factory=SamplePoolConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    dvc: DvcConfig = Field(default_factory=DvcConfig)

    def resolved(self) -> dict[str, Any]:
        """The config with every default filled in, as plain data (JSON/YAML-safe)."""
        return self.model_dump(mode="json")


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Load a run config from YAML (or the defaults when ``path`` is None) and apply overrides."""
    origin = str(path) if path is not None else "the defaults"
    config = config_from_dict(_read_yaml(Path(path)) if path is not None else {}, origin)
    if not overrides:
        return config
    # overrides apply to the resolved tree, so they can reach into defaults (lists included)
    tree = config.resolved()
    for item in overrides:
        key, value = _parse_override(item)
        _set_path(tree, key, value)
    return config_from_dict(tree, origin=f"{origin} with overrides {' '.join(overrides)}")


def config_from_dict(raw: dict[str, Any], origin: str = "config") -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.resolved(), sort_keys=False)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file {path} cannot be read: {exc}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of sections, not {type(data).__name__}.")
    return data


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"Override {item!r} must look like section.key=value.")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text  # not YAML: take the text as a string and let validation judge it
    return key.strip().split("."), value


def _set_path(tree: dict[str, Any], key: list[str], value: Any) -> None:
    """Set ``tree[k0][k1]...`` = value, creating mappings; numeric parts index into lists."""
    node: Any = tree
    for depth, part in enumerate(key[:-1]):
        nxt = _child(node, part, key[: depth + 1])
        if nxt is None:
            nxt = {}
            _assign(node, part, nxt, key[: depth + 1])
        node = nxt
    _assign(node, key[-1], value, key)


def _child(node: Any, part: str, where: list[str]) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, where)]
    if isinstance(node, dict):
        return node.get(part)
    raise ConfigError(f"Override key {'.'.join(where)} goes inside a value that is not a section.")


def _assign(node: Any, part: str, value: Any, where: list[str]) -> None:
    if isinstance(node, list):
        node[_index(node, part, where)] = value
    elif isinstance(node, dict):
        node[part] = value
    else:
        raise ConfigError(f"Override key {'.'.join(where)} goes inside a value that is not a section.")


def _index(node: list, part: str, where: list[str]) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"Override key {'.'.join(where)}: {part!r} is not an index of a list of {len(node)}.")
    return int(part)


def _describe(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(err["loc"][:-1])
            lines.append(f"unknown key {key!r}" + (f" (allowed here: {', '.join(allowed)})" if allowed else ""))
        else:
            lines.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
    return f"Invalid configuration in {origin}: " + "; ".join(lines) + "."


def _allowed_keys(loc: tuple) -> list[str]:
    """The field names of the section at ``loc``, for 'unknown key' messages."""
    model: Any = RunConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        model = _section_model(field.annotation)
        if model is None:
            return []
    return sorted(model.model_fields)


def _section_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):  # list[SourceConfig], Optional[...]
        found = _section_model(arg)
        if found is not None:
            return found
    return None
