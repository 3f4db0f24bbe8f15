"""Fit the auto-filter's thresholds from people's stage-1 verdicts.

Emu's paper gives no thresholds; the defaults here were calibrated by hand on the synthetic
sample pool. This fits them from what a team already produces: the generalists' keep/reject
verdicts of stage 1. What it needs:

- labels: stage-1 Label Studio JSON exports or curation CSVs (a sample's verdict is the
  majority of its annotators', a tie keeps, as in stage 1), or stage-1 ``result.parquet``
  files that ``photogenic curation import`` wrote;
- the labelled images, in a dataset (``filter.calibrate.dataset``, the filter's input by
  default). Labels of the candidate pool alone are censored: people never saw what the current
  thresholds rejected, so a fit could only tighten them. A random sample of the filter's input
  labelled as in stage 1 lets a threshold move either way.

Every labelled image is scored by every scorer the config turns on (no cascade, no early stop;
pool-wide scorers and policy scorers such as NSFW, ``calibrated = False``, are not fitted).
Each fitted threshold is a ``bounded_by`` key of a scorer's section: a one-sided bound on one
of its columns.

The fit (``fit_thresholds``) starts with every threshold open and tightens them together,
greedily: each step moves the one threshold whose next slice of rows (the rows it would
newly reject, at least ``MIN_SLICE`` of them) has the lowest share of images people kept,
as long as the thresholds together still keep ``target_recall`` of those images, and only
while that share is below the current precision (so each step raises it). That is: reach the
target recall of what people kept, then the best precision the labels allow. Labels are split
by a hash of the sample id; the fit sees one part, the numbers reported are on the other.

Outputs, under ``filter.calibrate.output``: ``filter-thresholds.yaml`` (a config fragment with
the fitted thresholds, each with its held-out recall and precision; a valid run config alone),
``config.yaml`` (the run config calibrate was given with the thresholds merged in, for
``photogenic run --config``), ``calibration.json`` (every number) and one SVG per threshold
(histograms of the scores of kept and rejected images, the fitted and the configured threshold),
all logged to MLflow (``filter.calibrate.mlflow``): to the active run, else a new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from photogenic.config import RunConfig
from photogenic.curation.labels import KEEP
from photogenic.curation.submissions import read_export
from photogenic.dataset.atomic import filesystem, read_text, write_text
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError, DataError
from photogenic.filtering.cascade import score_every_row
from photogenic.filtering.registry import build_scorers
from photogenic.filtering.report import KEPT, REJECTED_HERE, Marker, histogram_svg
from photogenic.filtering.scorer import GlobalScorer, Scorer
from photogenic.paths import dataset_dir, is_url, join, under_root

log = logging.getLogger(__name__)

#: the fewest rows one step of the fit may newly reject, as a share of the fitted rows (and at
#: least MIN_SLICE_ROWS): single rows would let label noise move a threshold
MIN_SLICE = 0.01
MIN_SLICE_ROWS = 5
#: thresholds a knob may take: its scores' quantiles at this many evenly spaced levels
GRID = 400
FRAGMENT, MERGED, NUMBERS = "filter-thresholds.yaml", "config.yaml", "calibration.json"


@dataclass(frozen=True)
class Knob:
    """One fittable threshold: ``filter.<section>.<key>`` bounds ``column`` from one ``side``."""

    scorer: str
    section: str
    key: str
    column: str
    #: "min": rows below the threshold are rejected; "max": rows above it
    side: str
    #: the configured value (None: the bound is off)
    configured: float | None

    @property
    def path(self) -> str:
        return f"filter.{self.section}.{self.key}"


def knobs(config: RunConfig) -> list[Knob]:
    """The thresholds ``config``'s scorers let calibrate fit, in cascade order."""
    found = []
    for scorer in build_scorers(config, check=False):
        if isinstance(scorer, GlobalScorer) or not scorer.calibrated:
            continue
        section = scorer.section or scorer.name
        for key, (part, side) in scorer.bounded_by.items():
            value = getattr(scorer.config, key)
            found.append(Knob(scorer.name, section, key, scorer.column(part), side,
                              None if value is None else float(value)))
    return found


# -- labels ----------------------------------------------------------------------------------


def read_labels(paths: list[str]) -> dict[str, bool]:
    """Sample id -> kept, from stage-1 exports (majority of annotators, a tie keeps) and/or
    stage-1 ``result.parquet`` files (their ``stage1_verdict``)."""
    if not paths:
        raise DataError("No label files: give stage-1 Label Studio exports, curation CSVs or stage-1 result.parquet "
                        "files (filter.calibrate.labels names the folder read when none are given).")
    votes: dict[str, list[bool]] = defaultdict(list)
    verdicts: dict[str, bool] = {}
    for path in paths:
        if path.lower().endswith(".parquet"):
            verdicts.update(_result_verdicts(path))
            continue
        parsed = read_export(path, expected_stage=1)
        if parsed.bad:
            shown = "; ".join(bad.describe() for bad in parsed.bad[:5])
            raise DataError(f"Label file {path} has {len(parsed.bad)} bad rows ({shown}). Fix them, or import the "
                            "file with `photogenic curation import --skip-bad` and calibrate from the stage's "
                            "result.parquet.")
        seen = set()
        for item in parsed.submissions:
            if (item.sample_id, item.annotator) in seen:
                continue  # the same annotator's submission in two copies of one export
            seen.add((item.sample_id, item.annotator))
            votes[item.sample_id].append(item.answers["verdict"] == KEEP)
    # the stage-1 rule of photogenic.curation.importer: the majority, a tie keeps (recall)
    verdicts.update({sample_id: 2 * sum(kept) >= len(kept) for sample_id, kept in votes.items()})
    if not verdicts:
        raise DataError(f"The label files ({', '.join(paths)}) hold no stage-1 verdict.")
    return verdicts


def _result_verdicts(path: str) -> dict[str, bool]:
    fs, local = filesystem(path)
    with fs.open(local, "rb") as handle:
        table = pq.read_table(handle)
    if "stage1_verdict" not in table.column_names:
        raise DataError(f"{path} has no stage1_verdict column: expected a stage-1 result.parquet of "
                        "`photogenic curation import`.")
    return {row["sample_id"]: row["stage1_verdict"] == KEEP for row in table.select(["sample_id", "stage1_verdict"])
            .to_pylist()}


def label_files(config: RunConfig) -> list[str]:
    """The exports in ``filter.calibrate.labels``."""
    folder = under_root(config.data.root, config.filter.calibrate.labels, "filter.calibrate.labels")
    fs, local = filesystem(folder)
    if not fs.isdir(local):
        raise ConfigError(f"No label files given and the folder filter.calibrate.labels ({folder}) does not exist. "
                          "Name stage-1 exports on the command line or put them there.")
    return sorted(p for p in fs.ls(local, detail=False) if p.lower().endswith((".json", ".csv", ".parquet")))


def sample_for_labels(config: RunConfig, n: int | None = None, *, seed: int = 0, simulate: bool = False,
                      progress: bool = True) -> list[str]:
    """Export ``n`` (default ``filter.calibrate.sample``) images of ``filter.calibrate.dataset``,
    drawn at random, as stage-1 tasks under ``<curation.dir>/calibration/`` (Label Studio tasks,
    labeling config, CSV, per-annotator batches), for people to label what the filter would
    reject too; their exports go to ``calibration/stage1/annotations/`` (the default of
    ``filter.calibrate.labels``). ``simulate``: SIMULATED annotators label them from the sample
    pool's ground truth (demo and benchmarks only). Returns the files written."""
    from photogenic.curation.export import write_tasks
    from photogenic.curation.layout import CurationLayout
    from photogenic.curation.simulate import load_truth, simulate_tasks

    dataset = _dataset(config)
    ids = sorted(dataset.read_manifest(["sample_id"])["sample_id"].to_pylist())
    count = min(n or config.filter.calibrate.sample, len(ids))
    chosen = sorted(np.random.default_rng(seed).choice(ids, size=count, replace=False).tolist())
    layout = CurationLayout(join(CurationLayout.of(config).root, "calibration"))
    exported = write_tasks(config, 1, dataset, chosen, layout, progress=progress)
    files = list(exported.files.values())
    if simulate:
        tasks = json.loads(read_text(exported.files["tasks"]))
        files += simulate_tasks(config, 1, tasks, load_truth(config, dataset), layout.annotations(1))
    return files


def _dataset(config: RunConfig) -> Dataset:
    name = config.filter.calibrate.dataset
    dataset = Dataset(dataset_dir(config.data.root, name), name=name)
    if not dataset.exists():
        raise ConfigError(f"filter.calibrate.dataset names {name}, which does not exist under "
                          f"{config.data.root}/datasets: ingest first, or name the dataset holding the images to label.")
    return dataset


# -- the fit ---------------------------------------------------------------------------------


@dataclass
class Fit:
    #: per knob: the fitted threshold, or None where no step moved it (nothing to reject by it)
    thresholds: list[float | None]


def fit_thresholds(values: list[np.ndarray], sides: list[str], kept: np.ndarray, target_recall: float) -> Fit:
    """Fit one threshold per column of ``values`` (NaN: not scored, never rejected) so that
    together they keep ``target_recall`` of the ``kept`` rows, then the best precision (see the
    module docstring for the greedy steps)."""
    kept = np.asarray(kept, dtype=bool)
    n = kept.size
    # "max" bounds are "min" bounds on the negated score; NaN never falls below a threshold
    keyed = [np.where(np.isnan(v), np.inf, v if side == "min" else -v) for v, side in zip(values, sides)]
    grids = [_grid(v) for v in keyed]
    position = [0] * len(keyed)  # index into each grid; 0: the knob is open
    alive = np.ones(n, dtype=bool)
    need = target_recall * kept.sum()
    min_slice = max(MIN_SLICE_ROWS, int(np.ceil(MIN_SLICE * n)))
    while True:
        best = None  # (share kept, -rows, knob, grid index)
        kept_alive = int((alive & kept).sum())
        precision = kept_alive / max(1, int(alive.sum()))
        for k, (v, grid) in enumerate(zip(keyed, grids)):
            live = np.sort(v[alive])
            live_kept = np.sort(v[alive & kept])
            start = position[k] + 1
            if start >= grid.size:
                continue
            rows = np.searchsorted(live, grid[start:], side="left")  # newly rejected rows
            lost = np.searchsorted(live_kept, grid[start:], side="left")  # ... of them kept
            allowed = (kept_alive - lost >= need) & (rows >= min_slice)
            if not allowed.any():
                continue
            share = np.where(allowed, lost / np.maximum(rows, 1), np.inf)
            j = int(np.lexsort((-rows, share))[0])
            candidate = (float(share[j]), -int(rows[j]), k, start + j)
            if best is None or candidate < best:
                best = candidate
        if best is None or best[0] >= precision:
            break
        _, _, k, index = best
        position[k] = index
        alive &= keyed[k] >= grids[k][index]
    thresholds = []
    for k, side in enumerate(sides):
        if position[k] == 0:
            thresholds.append(None)
        else:
            value = float(grids[k][position[k]])
            thresholds.append(value if side == "min" else -value)
    return Fit(thresholds)


def _grid(keyed: np.ndarray) -> np.ndarray:
    """Candidate thresholds: index 0 rejects nothing; then the scores' quantiles, ascending."""
    finite = keyed[np.isfinite(keyed)]
    if finite.size == 0:
        return np.array([-np.inf])
    levels = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, GRID + 1), method="lower"))
    return np.concatenate([[-np.inf], levels[1:]])


def passes(values: np.ndarray, side: str, threshold: float | None) -> np.ndarray:
    """Rows a threshold keeps (unscored rows always; an off threshold keeps all), as the
    scorers' ``reasons`` do: a min bound keeps ``value >= threshold``, a max bound ``<=``."""
    if threshold is None:
        return np.ones(values.size, dtype=bool)
    with np.errstate(invalid="ignore"):
        inside = values >= threshold if side == "min" else values <= threshold
    return inside | np.isnan(values)


# -- the command's work ----------------------------------------------------------------------


@dataclass
class KnobResult:
    knob: Knob
    #: the value written: the fitted threshold, or the configured one where the fit left it open
    value: float | None
    fitted: bool
    #: on held-out labels: this threshold alone, and the configured one alone
    recall: float
    precision: float
    configured_recall: float
    configured_precision: float
    plot: str = ""


@dataclass
class Calibration:
    labels: int
    fitted_on: int
    held_out: int
    target_recall: float
    #: all thresholds together, on held-out labels: fitted, and as configured
    recall: float
    precision: float
    configured_recall: float
    configured_precision: float
    knobs: list[KnobResult] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def overrides(self) -> dict[str, float]:
        """``filter.<section>.<key>`` -> value, for every fitted threshold."""
        return {r.knob.path: r.value for r in self.knobs if r.fitted}


def calibrate(config: RunConfig, files: list[str] | None = None, *, config_path: str | None = None,
              progress: bool = True) -> Calibration:
    """Score the labelled images, fit the thresholds, write and log the outputs."""
    settings = config.filter.calibrate
    labels = read_labels(files if files else label_files(config))
    dataset = _dataset(config)
    found = knobs(config)
    if not found:
        raise ConfigError("No scorer with a fittable threshold is on (filter.*.enabled).")
    rows = _labelled_rows(dataset, labels)
    columns = score_every_row(dataset, [s for s in build_scorers(config) if _fitted(s)], rows,
                              workers=config.filter.workers, batch_size=config.filter.batch_size, progress=progress,
                              gpus=config.filter.gpus)
    kept = np.array([labels[row["sample_id"]] for row in rows])
    values = [np.array([np.nan if v is None else float(v) for v in columns[k.column]], dtype=float) for k in found]
    held = np.array([_held_out(row["sample_id"], settings.holdout) for row in rows])
    fit_on = ~held if held.any() and (~held).any() else np.ones_like(held)
    report_on = held if held.any() and (~held).any() else np.ones_like(held)
    if kept[fit_on].sum() == 0:
        raise DataError("No labelled image was kept by people: there is nothing to reach a recall of.")
    fit = fit_thresholds([v[fit_on] for v in values], [k.side for k in found], kept[fit_on], settings.target_recall)

    results = []
    for knob, value, threshold in zip(found, values, fit.thresholds):
        written = threshold if threshold is not None else knob.configured
        mine, theirs = passes(value, knob.side, written), passes(value, knob.side, knob.configured)
        results.append(KnobResult(knob, _rounded(written), threshold is not None,
                                  *_recall_precision(mine[report_on], kept[report_on]),
                                  *_recall_precision(theirs[report_on], kept[report_on])))
    together = np.logical_and.reduce([passes(v, r.knob.side, r.value) for v, r in zip(values, results)])
    configured = np.logical_and.reduce([passes(v, k.side, k.configured) for v, k in zip(values, found)])
    calibration = Calibration(len(rows), int(fit_on.sum()), int(report_on.sum()) if held.any() else 0,
                              settings.target_recall,
                              *_recall_precision(together[report_on], kept[report_on]),
                              *_recall_precision(configured[report_on], kept[report_on]), results)
    _write_outputs(config, calibration, values, kept, report_on, config_path)
    log.info("filter calibrate: %d labels (%d fitted, %d held out); held out: recall %.3f, precision %.3f "
             "(configured thresholds: %.3f, %.3f); %s", calibration.labels, calibration.fitted_on,
             calibration.held_out, calibration.recall, calibration.precision, calibration.configured_recall,
             calibration.configured_precision, calibration.files.get("fragment"))
    return calibration


def _fitted(scorer: Scorer) -> bool:
    return not isinstance(scorer, GlobalScorer) and scorer.calibrated and bool(scorer.bounded_by)


def _labelled_rows(dataset: Dataset, labels: dict[str, bool]) -> list[dict[str, Any]]:
    manifest = dataset.read_manifest()
    manifest = manifest.filter(pc.is_in(manifest["sample_id"], value_set=pa.array(list(labels))))
    rows = manifest.to_pylist()
    missing = set(labels) - {row["sample_id"] for row in rows}
    if missing:
        raise DataError(f"{len(missing)} labelled sample ids are not in the dataset {dataset.name} "
                        f"(filter.calibrate.dataset), e.g. {min(missing)}: label images of that dataset, or "
                        "name the dataset the labelled images come from.")
    return rows


def _held_out(sample_id: str, share: float) -> bool:
    """A salted hash of the sample id, so the split never moves as labels are added."""
    digest = hashlib.sha256(f"filter-calibrate:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _recall_precision(keep: np.ndarray, kept: np.ndarray) -> tuple[float, float]:
    recall = float((keep & kept).sum() / max(1, kept.sum()))
    precision = float((keep & kept).sum() / max(1, keep.sum()))
    return recall, precision


def _rounded(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.4g}")


# -- outputs ---------------------------------------------------------------------------------


def _write_outputs(config: RunConfig, calibration: Calibration, values: list[np.ndarray], kept: np.ndarray,
                   report_on: np.ndarray, config_path: str | None) -> None:
    out = under_root(config.data.root, config.filter.calibrate.output, "filter.calibrate.output")
    for result, value in zip(calibration.knobs, values):
        path = join(out, f"{result.knob.section}.{result.knob.key}.svg")
        write_text(path, _plot(result, value[report_on], kept[report_on]))
        result.plot = path
    calibration.files["fragment"] = join(out, FRAGMENT)
    write_text(calibration.files["fragment"], fragment_text(calibration))
    if config_path is not None:
        calibration.files["config"] = join(out, MERGED)
        write_text(calibration.files["config"], merged_config(config_path, calibration))
    calibration.files["numbers"] = join(out, NUMBERS)
    write_text(calibration.files["numbers"], json.dumps(asdict(calibration), indent=1) + "\n")
    _log_to_mlflow(config, calibration, out)


def fragment_text(calibration: Calibration) -> str:
    """The fitted thresholds as a run config (YAML), each with its held-out numbers."""
    lines = [
        f"# Auto-filter thresholds fitted by `photogenic filter calibrate` from {calibration.labels} stage-1 verdicts",
        f"# ({calibration.fitted_on} fitted, {calibration.held_out} held out), target recall {calibration.target_recall}.",
        (f"# Held out, all thresholds together: recall {calibration.recall:.3f}, precision {calibration.precision:.3f}"
         f" (configured thresholds: {calibration.configured_recall:.3f}, {calibration.configured_precision:.3f})."),
        "# A run config on its own; merge it into yours (config.yaml beside it is the one calibrate was given, merged).",
        "filter:",
    ]
    by_section: dict[str, list[KnobResult]] = defaultdict(list)
    for result in calibration.knobs:
        if result.fitted:
            by_section[result.knob.section].append(result)
    for section, results in by_section.items():
        lines.append(f"  {section}:")
        for r in results:
            lines.append(f"    {r.knob.key}: {r.value!r}  # held out: recall {r.recall:.3f}, precision "
                         f"{r.precision:.3f} (configured {r.knob.configured!r}: {r.configured_recall:.3f}, "
                         f"{r.configured_precision:.3f})")
    open_knobs = [r.knob.path for r in calibration.knobs if not r.fitted]
    if open_knobs:
        lines.append(f"# left as configured (no slice of the labels called for them): {', '.join(open_knobs)}")
    return "\n".join(lines) + "\n"


def merged_config(config_path: str, calibration: Calibration) -> str:
    """The config file calibrate was given, with the fitted thresholds set in it."""
    try:
        tree = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Config file {config_path} cannot be read to merge the fitted thresholds: {exc}") from None
    for path, value in calibration.overrides().items():
        node = tree
        for part in path.split(".")[:-1]:
            node = node.setdefault(part, {})
        node[path.rsplit(".", 1)[1]] = value
    header = (f"# {config_path} with the auto-filter thresholds fitted by `photogenic filter calibrate`\n"
              f"# (held-out recall {calibration.recall:.3f}, precision {calibration.precision:.3f}; see {FRAGMENT})\n")
    return header + yaml.safe_dump(tree, sort_keys=False)


def _plot(result: KnobResult, values: np.ndarray, kept: np.ndarray) -> str:
    """A standalone SVG: held-out scores of images people kept and rejected, the thresholds."""
    finite = np.isfinite(values)
    values, kept = values[finite], kept[finite]
    markers = [Marker(f"fitted {result.value:g}", result.value)] if result.fitted and result.value is not None else []
    if result.knob.configured is not None:
        markers.append(Marker(f"configured {result.knob.configured:g}", result.knob.configured))
    points = [*values.tolist(), *(m.value for m in markers)] or [0.0, 1.0]
    low, high = min(points), max(points)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, 31)
    counts = [(KEPT, np.histogram(values[kept], bins=edges)[0]), (REJECTED_HERE, np.histogram(values[~kept], bins=edges)[0])]
    title = f"{result.knob.column} ({result.knob.side} bound {result.knob.path})"
    body = histogram_svg(edges, counts, markers, title, int(values.size))
    legend = (f'<text x="4" y="12" font-size="11">{title}: people kept (green), rejected (red); '
              f"held out n={values.size}</text>")
    # a file of its own needs the namespace the inline SVG of a page does without
    width, height = 420, 200
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif">{legend}<g transform="translate(0,20)">{body}</g></svg>\n')


def _log_to_mlflow(config: RunConfig, calibration: Calibration, folder: str) -> None:
    """Attach the outputs and the held-out numbers to the active MLflow run (a tracked pipeline
    step's), else to a new run in ``filter.calibrate.experiment``; the run id goes in
    ``calibration.files["mlflow_run"]``. Outputs on object storage are logged as numbers only."""
    settings = config.filter.calibrate
    if not settings.mlflow:
        return
    import mlflow
    from mlflow.exceptions import MlflowException

    from photogenic.evaluation.models import raise_if_store_unusable

    active = mlflow.active_run()
    if active is None:
        try:
            mlflow.set_experiment(settings.experiment)
        except MlflowException as exc:
            raise_if_store_unusable(exc)
            raise
    with (contextlib.nullcontext(active) if active is not None
          else mlflow.start_run(run_name=f"filter calibrate ({calibration.labels} labels)")) as run:
        mlflow.log_params({"labels": calibration.labels, "fitted_on": calibration.fitted_on,
                           "held_out": calibration.held_out, "target_recall": calibration.target_recall,
                           **{f"threshold.{r.knob.path}": r.value for r in calibration.knobs}})
        mlflow.log_metrics({"calibration_recall": calibration.recall, "calibration_precision": calibration.precision,
                            "calibration_configured_recall": calibration.configured_recall,
                            "calibration_configured_precision": calibration.configured_precision})
        if not is_url(folder):
            mlflow.log_artifacts(folder, artifact_path="filter_calibration")
        calibration.files["mlflow_run"] = run.info.run_id
    log.info("filter calibration logged to MLflow run %s", calibration.files["mlflow_run"])
