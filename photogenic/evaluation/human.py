"""Human pairwise ratings, as Emu ran them: export side-by-side pairs, import votes, majority.

**Export** (``export_human``) writes, under ``<evaluation>/human/``:

- ``pairs.json``: every pair (a prompt and seed drawn by both models), which model is shown on
  the left and which on the right (a seeded random draw per pair, recorded here so that votes
  can be un-randomised), and an ``export_id`` that vote files must carry;
- ``tasks.json``: Label Studio tasks (``data``: ``pair_id``, ``export_id``, ``prompt``,
  ``left_image``, ``right_image``; images inline as data URIs) and two labeling configs,
  ``visual_appeal.xml`` (the prompt hidden, as in Emu: Left / Right / Tie) and
  ``text_faithfulness.xml`` (the prompt shown: Left / Right / Both / Neither);
- ``rate_visual_appeal.html`` and ``rate_text_faithfulness.html``: self-contained pages for
  raters without a Label Studio server: click a choice per pair, then download the votes as
  JSON or CSV.

**Import** (``import_votes``) reads any mix of Label Studio JSON exports (tasks with their
``annotations``) and the pages' downloads (JSON or CSV), from several raters. One vote per
rater, pair and criterion counts (a rater's later vote replaces an earlier one). Per pair and
criterion the majority choice wins, as Emu took the majority of its raters; without a strict
majority the pair is a tie. Left/right are mapped back to the models; Tie, Both and Neither are
ties. The outcomes go through the same win-rate maths as the automated judges
(``human_win_rates``). A file that cannot be read, names a pair or choice the export does not
know, or comes from another export, is a ``DataError`` naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from photogenic.dataset.atomic import write_text
from photogenic.dataset.store import Dataset
from photogenic.errors import DataError
from photogenic.evaluation.comparisons import win_rate_table
from photogenic.evaluation.judges.registry import TEXT_FAITHFULNESS, VISUAL_APPEAL
from photogenic.evaluation.report import rerender_report
from photogenic.evaluation.results import RESULTS, read_results
from photogenic.evaluation.winrate import LOSS, TIE, WIN
from photogenic.htmlpage import image_uri
from photogenic.labelstudio import annotator, choices, element, tag, view
from photogenic.safety.parsing import UntrustedInput, csv_records, parse_json

PAIRS_FORMAT = "photogenic-human-pairs/1"
VOTES_FORMAT = "photogenic-votes/1"
HUMAN_DIR = "human"
#: the choices a rater has per criterion; the first two name the side shown
CHOICES = {VISUAL_APPEAL: ("Left", "Right", "Tie"), TEXT_FAITHFULNESS: ("Left", "Right", "Both", "Neither")}
QUESTIONS = {VISUAL_APPEAL: "Which image is more visually appealing?",
             TEXT_FAITHFULNESS: "Which image follows the prompt better?"}


@dataclass(frozen=True)
class HumanExport:
    folder: Path
    export_id: str
    pairs: int


# -- export ------------------------------------------------------------------------------------


def export_human(evaluation_folder: str, *, seed: int = 0, max_pairs: int | None = None,
                 thumb: int = 512) -> HumanExport:
    """Write pairs, Label Studio tasks and configs, and the rating pages (see the module docstring)."""
    results = read_results(evaluation_folder)
    dataset = Dataset(evaluation_folder)
    samples = dataset.read_manifest().to_pandas()
    a, b = results["model_a"], results["model_b"]
    sa = samples[samples["model"] == a].set_index(["prompt_id", "replicate"])
    sb = samples[samples["model"] == b].set_index(["prompt_id", "replicate"])
    keys = [k for k in sa.index if k in sb.index][:max_pairs]
    rng = np.random.default_rng(seed)
    pairs, images = [], {}
    for i, key in enumerate(keys):
        ra, rb = sa.loc[key], sb.loc[key]
        left, right = (ra, rb) if rng.random() < 0.5 else (rb, ra)
        pairs.append({"pair_id": f"pair-{i:05d}", "prompt_id": key[0], "replicate": int(key[1]),
                      "seed": int(ra["seed"]), "prompt": ra["prompt"], "category": ra["category"],
                      "left_model": left["model"], "right_model": right["model"],
                      "left_sample": left["sample_id"], "right_sample": right["sample_id"]})
        for row in (left, right):
            if row["sample_id"] not in images:
                images[row["sample_id"]] = _data_uri(dataset, row, thumb)
    export_id = hashlib.sha256(json.dumps([a, b, pairs], sort_keys=True).encode()).hexdigest()[:16]
    out = Path(evaluation_folder) / HUMAN_DIR
    out.mkdir(parents=True, exist_ok=True)
    write_text(str(out / "pairs.json"), json.dumps({"format": PAIRS_FORMAT, "export_id": export_id, "model_a": a,
                                                    "model_b": b, "seed": seed, "pairs": pairs}, indent=2) + "\n")
    tasks = [{"data": {"pair_id": p["pair_id"], "export_id": export_id, "prompt": p["prompt"],
                       "left_image": images[p["left_sample"]], "right_image": images[p["right_sample"]]}}
             for p in pairs]
    write_text(str(out / "tasks.json"), json.dumps(tasks) + "\n")
    for criterion in CHOICES:
        write_text(str(out / f"{criterion}.xml"), label_config(criterion))
        write_text(str(out / f"rate_{criterion}.html"), rating_page(criterion, export_id, pairs, images))
    return HumanExport(out, export_id, len(pairs))


def label_config(criterion: str) -> str:
    """The Label Studio labeling config for one criterion (the prompt shown only for faithfulness)."""
    header = [tag("Header", value="$prompt")] if criterion == TEXT_FAITHFULNESS else []
    images = element("View", [tag("Image", name="left_image", value="$left_image"),
                              tag("Image", name="right_image", value="$right_image")], style="display: flex; gap: 12px;")
    return view([tag("Header", value=QUESTIONS[criterion]), *header, *images,
                 *choices(criterion, "left_image", CHOICES[criterion], choice="single-radio")])


def _data_uri(dataset: Dataset, row: Any, side: int) -> str:
    return image_uri(Image.open(io.BytesIO(dataset.image_bytes(dict(row)))), side, fmt="PNG")


# -- the rating page ---------------------------------------------------------------------------

#: the page's vote serialisation, kept free of the DOM so that it can be run on its own
VOTES_JS = r"""
function votesJSON(meta, rater, votes) {
  var list = Object.keys(votes).sort().map(function (id) { return {pair_id: id, choice: votes[id]}; });
  return JSON.stringify({format: meta.format, export_id: meta.export_id, criterion: meta.criterion,
                         rater: rater, votes: list}, null, 1);
}
function csvField(value) {
  var text = String(value);
  return /[",\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}
function votesCSV(meta, rater, votes) {
  var lines = ["export_id,criterion,rater,pair_id,choice"];
  Object.keys(votes).sort().forEach(function (id) {
    lines.push([meta.export_id, meta.criterion, rater, id, votes[id]].map(csvField).join(","));
  });
  return lines.join("\n") + "\n";
}
if (typeof module !== "undefined") { module.exports = {votesJSON: votesJSON, votesCSV: votesCSV}; }
"""

PAGE_JS = r"""
var meta = JSON.parse(document.getElementById("meta").textContent);
var votes = {};
function choose(button) {
  var pair = button.getAttribute("data-pair");
  votes[pair] = button.getAttribute("data-choice");
  document.querySelectorAll('button[data-pair="' + pair + '"]').forEach(function (b) {
    b.classList.toggle("chosen", b === button);
  });
  document.getElementById("count").textContent = Object.keys(votes).length;
}
function download(kind) {
  var rater = document.getElementById("rater").value.trim();
  if (!rater) { alert("Please enter your name or rater id first."); return; }
  var text = kind === "json" ? votesJSON(meta, rater, votes) : votesCSV(meta, rater, votes);
  var blob = new Blob([text], {type: kind === "json" ? "application/json" : "text/csv"});
  var link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = "votes-" + meta.criterion + "-" + rater.replace(/[^A-Za-z0-9_-]/g, "_") + "." + kind;
  document.body.appendChild(link); link.click(); link.remove();
}
document.querySelectorAll("button[data-pair]").forEach(function (b) {
  b.addEventListener("click", function () { choose(b); });
});
"""

PAGE_CSS = """
body{font:15px/1.4 system-ui,sans-serif;max-width:1100px;margin:0 auto;padding:20px;background:#fafafa;color:#222}
.pair{background:#fff;border:1px solid #ddd;margin:14px 0;padding:10px}
.images{display:flex;gap:12px}.images img{width:min(45vw,480px);height:auto;image-rendering:pixelated;background:#eee}
button{font-size:15px;margin:6px 6px 0 0;padding:6px 14px;border:1px solid #888;border-radius:4px;background:#f3f3f3}
button.chosen{background:#4f9a6b;color:#fff;border-color:#2f6a48}
.bar{position:sticky;top:0;background:#fafafa;padding:8px 0;border-bottom:1px solid #ddd}
"""


def rating_page(criterion: str, export_id: str, pairs: list[dict[str, Any]], images: dict[str, str]) -> str:
    from html import escape

    meta = {"format": VOTES_FORMAT, "export_id": export_id, "criterion": criterion}
    blocks = []
    for p in pairs:
        prompt = f"<p><b>Prompt:</b> {escape(p['prompt'])}</p>" if criterion == TEXT_FAITHFULNESS else ""
        buttons = "".join(f'<button type="button" data-pair="{p["pair_id"]}" data-choice="{c}">{c}</button>'
                          for c in CHOICES[criterion])
        blocks.append(f'<div class="pair"><div class="note">{p["pair_id"]}</div>{prompt}<div class="images">'
                      f'<img alt="left" src="{images[p["left_sample"]]}"><img alt="right" '
                      f'src="{images[p["right_sample"]]}"></div>{buttons}</div>')
    return (f"<!doctype html><html><head><meta charset=utf-8><title>Rate: {criterion.replace('_', ' ')}</title>"
            f"<style>{PAGE_CSS}</style></head><body>"
            f"<h1>{QUESTIONS[criterion]}</h1><p>For each pair, pick one answer. "
            f"{'Read the prompt first.' if criterion == TEXT_FAITHFULNESS else 'Judge the pictures alone.'} "
            "When you are done (or want to stop), enter your name and download your votes; send the file back.</p>"
            f'<div class="bar">Rater: <input id="rater" placeholder="your name or id"> '
            f'<span id="count">0</span> / {len(pairs)} rated '
            '<button type="button" onclick="download(\'json\')">Download JSON</button>'
            '<button type="button" onclick="download(\'csv\')">Download CSV</button></div>'
            f"{''.join(blocks)}"
            f'<script type="application/json" id="meta">{json.dumps(meta)}</script>'
            f"<script>{VOTES_JS}{PAGE_JS}</script></body></html>")


# -- import ------------------------------------------------------------------------------------


def read_pairs(evaluation_folder: str) -> dict[str, Any]:
    path = Path(evaluation_folder) / HUMAN_DIR / "pairs.json"
    if not path.is_file():
        raise DataError(f"No human-rating export in {evaluation_folder} ({path} is missing); run "
                        "`photogenic evaluate export-human` first.")
    return json.loads(path.read_text(encoding="utf-8"))


def import_votes(evaluation_folder: str, files: list[str]) -> pd.DataFrame:
    """Every vote in ``files`` as rows (file, rater, criterion, pair_id, choice), checked against the export."""
    export = read_pairs(evaluation_folder)
    known = {p["pair_id"] for p in export["pairs"]}
    if not files:
        raise DataError("No vote files given.")
    rows: list[dict[str, str]] = []
    for file in files:
        for vote in _read_vote_file(Path(file), export["export_id"]):
            if vote["pair_id"] not in known:
                raise DataError(f"{file}: pair {vote['pair_id']!r} is not in the export {export['export_id']} "
                                f"(pairs.json in {evaluation_folder}); was the file made for another evaluation?")
            if vote["choice"] not in CHOICES[vote["criterion"]]:
                raise DataError(f"{file}: choice {vote['choice']!r} for pair {vote['pair_id']} is not one of "
                                f"{', '.join(CHOICES[vote['criterion']])} ({vote['criterion']}).")
            rows.append({"file": str(file), **vote})
    frame = pd.DataFrame(rows, columns=["file", "rater", "criterion", "pair_id", "choice"])
    # one vote per rater, pair and criterion: the last one read counts
    return frame.drop_duplicates(["rater", "criterion", "pair_id"], keep="last").reset_index(drop=True)


def _read_vote_file(path: Path, export_id: str) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"The vote file {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"The vote file {path} is not UTF-8 text; expected a Label Studio JSON export or a rating "
                        "page's download.") from None
    if path.suffix.lower() == ".csv":
        return _page_csv(path, text, export_id)
    try:
        data = parse_json(text, f"The vote file {path}")
    except UntrustedInput as exc:
        raise DataError(f"{exc}; expected a Label Studio JSON export or a rating page's download.") from None
    if isinstance(data, list):
        return _label_studio(path, data, export_id)
    if isinstance(data, dict) and data.get("format") == VOTES_FORMAT:
        return _page_json(path, data, export_id)
    raise DataError(f"The vote file {path} is neither a Label Studio JSON export (a list of tasks) nor a rating "
                    f"page's download (format {VOTES_FORMAT!r}).")


def _check_export(path: Path, found: Any, export_id: str, where: str = "") -> None:
    if found != export_id:
        raise DataError(f"{path}{where}: votes for export {found!r}, but this evaluation's export is {export_id!r}; "
                        "import votes into the evaluation they were exported from.")


def _criterion(path: Path, name: Any) -> str:
    if not isinstance(name, str) or name not in CHOICES:
        raise DataError(f"{path}: unknown criterion {name!r}; expected one of {', '.join(CHOICES)}.")
    return name


def _page_json(path: Path, data: dict[str, Any], export_id: str) -> list[dict[str, str]]:
    _check_export(path, data.get("export_id"), export_id)
    criterion = _criterion(path, data.get("criterion"))
    rater = str(data.get("rater") or "").strip()
    if not rater:
        raise DataError(f"{path}: the download has no rater name.")
    votes = data.get("votes")
    if not isinstance(votes, list):
        raise DataError(f"{path}: 'votes' must be a list of {{pair_id, choice}}.")
    out = []
    for i, vote in enumerate(votes):
        if not isinstance(vote, dict) or not {"pair_id", "choice"} <= vote.keys():
            raise DataError(f"{path}: vote {i} must have pair_id and choice, got {vote!r:.200}.")
        out.append({"rater": rater, "criterion": criterion, "pair_id": str(vote["pair_id"]),
                    "choice": str(vote["choice"])})
    return out


def _page_csv(path: Path, text: str, export_id: str) -> list[dict[str, str]]:
    header, rows = csv_records(text, f"The vote file {path}")
    need = {"export_id", "criterion", "rater", "pair_id", "choice"}
    if not need <= set(header):
        raise DataError(f"{path}: a votes CSV needs the columns {', '.join(sorted(need))} "
                        f"(found {', '.join(header) or 'none'}).")
    out = []
    for line, row in enumerate(rows, start=2):
        row = {k: v or "" for k, v in row.items() if k is not None}  # a short row's missing cells are None
        _check_export(path, row["export_id"], export_id, f" line {line}")
        if not (row["rater"] or "").strip() or not row["pair_id"]:
            raise DataError(f"{path} line {line}: rater and pair_id must not be empty.")
        out.append({"rater": row["rater"].strip(), "criterion": _criterion(path, row["criterion"]),
                    "pair_id": row["pair_id"], "choice": row["choice"]})
    return out


def _label_studio(path: Path, tasks: list[Any], export_id: str) -> list[dict[str, str]]:
    out = []
    for t, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict) or "pair_id" not in task["data"]:
            raise DataError(f"{path}: task {t} has no data.pair_id; expected Label Studio's JSON export of the tasks "
                            "this evaluation exported.")
        _check_export(path, task["data"].get("export_id"), export_id, f" task {t}")
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
            raise DataError(f"{path}: task {t} ({task['data']['pair_id']!r}): annotations must be a list of objects.")
        for annotation in annotations:
            if annotation.get("was_cancelled"):
                continue
            rater = annotator(annotation.get("completed_by"))
            if rater is None:
                raise DataError(f"{path}: task {t} ({task['data']['pair_id']!r}) has an annotation that does not say "
                                "who made it (completed_by); a vote must have a rater.")
            results = annotation.get("result") or []
            if not isinstance(results, list):
                raise DataError(f"{path}: task {t}: an annotation's result must be a list.")
            for result in results:
                if not isinstance(result, dict) or result.get("type") != "choices":
                    continue
                criterion = _criterion(path, result.get("from_name"))
                value = result.get("value")
                choices = (value.get("choices") if isinstance(value, dict) else None) or []
                if not isinstance(choices, list) or len(choices) != 1:
                    raise DataError(f"{path}: task {t} ({task['data']['pair_id']!r}) has {choices!r:.80} as choices "
                                    f"for {criterion} by {rater}; exactly one is expected.")
                out.append({"rater": rater, "criterion": criterion, "pair_id": str(task["data"]["pair_id"]),
                            "choice": str(choices[0])})
    return out


def majority_outcomes(votes: pd.DataFrame, export: dict[str, Any]) -> pd.DataFrame:
    """Per pair and criterion: the raters' majority, mapped back to models (+1: A won)."""
    pairs = {p["pair_id"]: p for p in export["pairs"]}
    a = export["model_a"]
    rows = []
    for (criterion, pair_id), group in votes.groupby(["criterion", "pair_id"], sort=True):
        counts = Counter(group["choice"]).most_common()
        top, n_top = counts[0]
        decided = len(counts) == 1 or counts[1][1] < n_top
        choice = top if decided else "no majority"
        pair = pairs[pair_id]
        if choice == "Left":
            outcome = WIN if pair["left_model"] == a else LOSS
        elif choice == "Right":
            outcome = WIN if pair["right_model"] == a else LOSS
        else:
            outcome = TIE
        rows.append({"judge": f"human_{criterion}", "criterion": criterion, "pair_id": pair_id,
                     "prompt_id": pair["prompt_id"], "category": pair["category"], "raters": len(group),
                     "majority": choice, "outcome": outcome})
    return pd.DataFrame(rows, columns=["judge", "criterion", "pair_id", "prompt_id", "category", "raters",
                                       "majority", "outcome"])


def human_win_rates(evaluation_folder: str, files: list[str], *, n_boot: int = 2000, level: float = 0.95,
                    seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Import votes and compute the win rates of model A per criterion and category."""
    export = read_pairs(evaluation_folder)
    votes = import_votes(evaluation_folder, files)
    outcomes = majority_outcomes(votes, export)
    table = win_rate_table(outcomes, n_boot=n_boot, level=level, seed=seed)
    return outcomes, table


def record_human_results(evaluation_folder: str, files: list[str], *, n_boot: int = 2000, level: float = 0.95,
                         seed: int = 0) -> dict[str, Any]:
    """``human_win_rates``, written to ``human/outcomes.csv``, into ``results.json`` (key ``human``)
    and into the report."""

    outcomes, table = human_win_rates(evaluation_folder, files, n_boot=n_boot, level=level, seed=seed)
    folder = Path(evaluation_folder)
    write_text(str(folder / HUMAN_DIR / "outcomes.csv"), outcomes.to_csv(index=False))
    results = read_results(evaluation_folder)
    raters = int(outcomes["raters"].max()) if len(outcomes) else 0
    results["human"] = {"files": [str(f) for f in files], "max_raters_per_pair": raters,
                        "win_rates": json.loads(table.to_json(orient="records"))}
    write_text(str(folder / RESULTS), json.dumps(results, indent=2) + "\n")

    rerender_report(evaluation_folder)
    return results["human"]
