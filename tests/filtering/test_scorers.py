"""The model-backed and pool-wide scorers of the auto-filter: OCR text area, NSFW, CLIP score
and aesthetic head (on a tiny random CLIP), concept balancing, top-k, and every scorer on
degenerate real inputs."""

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from photogenic.config import (
    AestheticFilterConfig,
    ClipFilterConfig,
    ConceptFilterConfig,
    DedupFilterConfig,
    NsfwFilterConfig,
    OcrFilterConfig,
    TechnicalFilterConfig,
    TopKConfig,
)
from photogenic.errors import ConfigError
from photogenic.filtering.registry import build_scorers, scorers_off
from photogenic.filtering.scorers.clip import AestheticScorer, ClipScoreScorer
from photogenic.filtering.scorers.concept import ConceptBalanceScorer, concept_cap
from photogenic.filtering.scorers.dedup import DuplicateScorer
from photogenic.filtering.scorers.nsfw import NsfwScorer
from photogenic.filtering.scorers.ocr import TextAreaScorer
from photogenic.filtering.scorers.technical import TechnicalScorer
from photogenic.filtering.scorers.topk import TopKScorer
from photogenic.samplepool.defects import font
from tests.conftest import config_for
from tests.support.laion_head import aesthetic_mlp


def scene(h=240, w=320, seed=0) -> np.ndarray:
    """A smooth two-tone picture with a soft disc: no text anywhere."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    image = np.stack([80 + 100 * y / h, 120 + 60 * x / w, np.full((h, w), 160.0)], axis=-1)
    disc = (x - w * 0.6) ** 2 + (y - h * 0.45) ** 2 < (min(h, w) * 0.2) ** 2
    image[disc] = rng.integers(150, 230, 3)
    return image.astype(np.uint8)


def with_text(image: np.ndarray, text="SALE 50% OFF TODAY", size=36) -> np.ndarray:
    picture = Image.fromarray(image)
    ImageDraw.Draw(picture).text((picture.width / 2, picture.height * 0.8), text, font=font(size),
                                 fill=(255, 255, 255), anchor="mm", stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(picture)


# -- OCR ----------------------------------------------------------------------------------------


def test_text_area_scorer_rejects_text_and_keeps_a_clean_picture():
    scorer = TextAreaScorer(OcrFilterConfig())
    clean, banner = scene(), with_text(scene())
    columns = scorer.score([{}, {}], [clean, banner])
    area = columns["score_ocr_text_area"]
    assert area[0] <= 0.015 < area[1] < 0.5 and columns["score_ocr_lines"][1] >= 1
    reasons = scorer.reasons(columns)
    assert reasons[0] is None and reasons[1].startswith("text covers") and "filter.ocr.max_text_area" in reasons[1]


def test_text_area_scorer_is_picklable_without_its_model():
    import pickle

    scorer = TextAreaScorer(OcrFilterConfig())
    scorer.score([{}], [scene()])
    assert scorer._detector is not None and pickle.loads(pickle.dumps(scorer))._detector is None


# -- NSFW ---------------------------------------------------------------------------------------


class FakeDetections:
    """nudenet's detect() contract, with chosen detections: the model itself cannot be shown
    offensive content in a test, so the threshold logic is tested on injected output."""

    def __init__(self, per_image):
        self.per_image = list(per_image)

    def detect(self, image):
        assert image.ndim == 3 and image.shape[2] == 3
        return self.per_image.pop(0)


def test_nsfw_threshold_logic_rejects_offensive_classes_only():
    detections = [
        [{"class": "FACE_FEMALE", "score": 0.95, "box": [0, 0, 5, 5]}],  # not offensive
        [{"class": "FEMALE_BREAST_EXPOSED", "score": 0.81, "box": [0, 0, 5, 5]},
         {"class": "BUTTOCKS_EXPOSED", "score": 0.4, "box": [0, 0, 5, 5]}],
        [{"class": "MALE_GENITALIA_EXPOSED", "score": 0.3, "box": [0, 0, 5, 5]}],  # below the threshold
        [],
    ]
    scorer = NsfwScorer(NsfwFilterConfig(max_score=0.5), detector=FakeDetections(detections))
    columns = scorer.score([{}] * 4, [scene()] * 4)
    assert columns["score_nsfw"] == pytest.approx([0.0, 0.81, 0.3, 0.0])
    assert columns["score_nsfw_class"] == [None, "FEMALE_BREAST_EXPOSED", "MALE_GENITALIA_EXPOSED", None]
    reasons = scorer.reasons(columns)
    assert reasons[0] is None and reasons[2] is None and reasons[3] is None
    assert "FEMALE_BREAST_EXPOSED detected at 0.81 > filter.nsfw.max_score=0.5" in reasons[1]


def test_nsfw_detector_runs_on_real_pictures():
    scorer = NsfwScorer(NsfwFilterConfig())
    columns = scorer.score([{}] * 2, [scene(), with_text(scene(seed=2))])
    assert all(0.0 <= s <= 1.0 for s in columns["score_nsfw"])
    assert scorer.reasons(columns) == [None, None]  # a landscape with a disc is not offensive


# -- degenerate inputs --------------------------------------------------------------------------


def _rgba_to_rgb(size):
    rgba = np.zeros((*size, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, np.linspace(0, 255, size[1], dtype=np.uint8)
    return np.asarray(Image.fromarray(rgba, "RGBA").convert("RGB"))


BAD_INPUTS = {
    "grey": np.full((200, 300, 3), 128, np.uint8),
    "one_pixel": np.full((1, 1, 3), 77, np.uint8),
    "all_black": np.zeros((150, 150, 3), np.uint8),
    "all_white": np.full((150, 150, 3), 255, np.uint8),
    "wide_sliver": scene(2, 1200),
    "tall_sliver": scene(1500, 3),
    "alpha": _rgba_to_rgb((120, 160)),  # what ingest's decode makes of an image with alpha
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_no_scorer_crashes_on_degenerate_images(name, tiny_clip):
    image = BAD_INPUTS[name]
    row = {"sample_id": name, "caption": "a grey picture", "width": image.shape[1], "height": image.shape[0]}
    scorers = [TechnicalScorer(TechnicalFilterConfig()), TextAreaScorer(OcrFilterConfig()),
               NsfwScorer(NsfwFilterConfig()), DuplicateScorer(DedupFilterConfig()),
               ClipScoreScorer(ClipFilterConfig(model=tiny_clip), tiny_clip),
               ConceptBalanceScorer(ConceptFilterConfig(concepts=["food", "car"]), tiny_clip)]
    for scorer in scorers:
        columns = scorer.score([row], [image])
        assert all(len(values) == 1 for values in columns.values()), scorer.name
        assert len(scorer.reasons(columns)) == 1, scorer.name
        numbers = [v[0] for v in columns.values() if isinstance(v[0], float)]
        assert all(np.isfinite(numbers)), scorer.name


# -- CLIP and aesthetic, on a tiny random CLIP --------------------------------------------------


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    """A CLIP with random weights, saved with a real (tiny) BPE tokenizer and image processor,
    as a hub checkpoint folder would hold them."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder = tmp_path_factory.mktemp("tiny-clip")
    chars = list("abcdefghijklmnopqrstuvwxyz")
    vocab = {t: i for i, t in enumerate(["<|startoftext|>", "<|endoftext|>", *chars, *[c + "</w>" for c in chars]])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "max_position_embeddings": 32, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 1},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                 crop_size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    processor.save_pretrained(folder)
    return str(folder)


def test_clip_score_is_a_cosine_and_thresholds_reject(tiny_clip):
    scorer = ClipScoreScorer(ClipFilterConfig(model=tiny_clip, min_score=-1.0), tiny_clip)
    rows = [{"caption": "a cat"}, {"caption": ""}, {"caption": "a red car on a beach"}]
    columns = scorer.score(rows, [scene(), scene(seed=1), scene(seed=2)])
    scores = columns["score_clip"]
    assert scores[1] is None and all(-1.0 <= s <= 1.0 for s in (scores[0], scores[2]))
    assert scorer.reasons(columns) == [None, None, None]
    strict = ClipScoreScorer(ClipFilterConfig(model=tiny_clip, min_score=1.01), tiny_clip)
    reasons = strict.reasons(columns)
    assert reasons[1] is None and "filter.clip.min_score=1.01" in reasons[0]


def test_aesthetic_head_predicts_from_clip_embeddings(tiny_clip, tmp_path):
    torch.manual_seed(1)
    head_path = tmp_path / "head.pth"
    torch.save(aesthetic_mlp(16).state_dict(), head_path)
    scorer = AestheticScorer(AestheticFilterConfig(head=str(head_path), min_score=100.0), tiny_clip,
                             str(head_path), cost_ms=1.0)
    columns = scorer.score([{}, {}], [scene(), scene(seed=3)])
    assert len(columns["score_aesthetic"]) == 2 and columns["score_aesthetic"][0] != columns["score_aesthetic"][1]
    assert all("filter.aesthetic.min_score=100.0" in r for r in scorer.reasons(columns))


def test_configured_clip_and_head_are_built_and_off_without_them(tiny_clip, tmp_path):
    torch.save(aesthetic_mlp(16).state_dict(), tmp_path / "head.pth")
    config = config_for(tmp_path, f"filter.clip.model={tiny_clip}", f"filter.aesthetic.head={tmp_path / 'head.pth'}")
    names = [s.name for s in build_scorers(config)]
    assert names.index("ocr") < names.index("clip") < names.index("aesthetic") < names.index("dedup")
    assert not [d for d in scorers_off(config) if d["name"] in ("clip", "aesthetic")]
    default = {d["name"]: d["why"] for d in scorers_off(config_for(tmp_path))}
    assert "filter.clip.model" in default["clip"] and "filter.aesthetic.head" in default["aesthetic"]


@pytest.mark.parametrize("value", ["/no/such/clip-folder", "models/missing-clip", "nobody/no-such-clip"])
def test_missing_clip_checkpoint_is_a_config_error_naming_the_key(tmp_path, value):
    with pytest.raises(ConfigError, match=r"filter\.clip\.model") as error:
        build_scorers(config_for(tmp_path, f"filter.clip.model={value}"))
    assert "Traceback" not in str(error.value) and value in str(error.value)


def test_missing_or_mismatched_aesthetic_head_is_a_config_error(tiny_clip, tmp_path):
    with pytest.raises(ConfigError, match=r"/no/head.pth.*filter\.aesthetic\.head.*is not a file"):
        build_scorers(config_for(tmp_path, f"filter.clip.model={tiny_clip}", "filter.aesthetic.head=/no/head.pth"))
    torch.save(aesthetic_mlp(768).state_dict(), tmp_path / "l14.pth")
    with pytest.raises(ConfigError, match=r"filter\.aesthetic\.head.*takes 768-d CLIP embeddings.*gives 16-d"):
        build_scorers(config_for(tmp_path, f"filter.clip.model={tiny_clip}",
                                 f"filter.aesthetic.head={tmp_path / 'l14.pth'}"))


# -- concept balancing and top-k ----------------------------------------------------------------


def test_concept_cap_reaches_a_fixed_point():
    from collections import Counter

    counts = Counter({"food": 60, "animal": 30, "car": 10})
    cap = concept_cap(counts, 0.4)
    total = sum(min(c, cap) for c in counts.values())
    assert cap <= 0.4 * total and cap == 20  # 40, 32, 28, ... until 20 + 20 + 10 = 50, 0.4 * 50 = 20
    assert concept_cap(Counter({"a": 5}), 0.3) == 5  # one concept alone: nothing to balance
    assert concept_cap(Counter({"a": 10, "b": 2}), 0.3) == 2  # two: at best an equal split
    # three concepts: at least 1/3 each; 10 rows without a concept count in the pool: 7 <= 21 / 3
    assert concept_cap(Counter({"a": 30, "b": 2, "c": 2}), 0.3, unbalanced=10) == 7


def test_concept_cap_is_respected_and_the_best_are_kept():
    scorer = ConceptBalanceScorer(ConceptFilterConfig(max_share=0.5, keep_best_by="score_q"))
    rows = [{"source_meta": json.dumps({"category": c}), "score_q": q}
            for c, q in [("Food", 0.9), ("food", 0.1), ("food", 0.5), ("food", 0.7), ("car", 0.3), ("car", 0.2)]]
    rows.append({"source_meta": None, "score_q": 0.0})
    columns = scorer.score(rows, None)
    assert columns["score_concept"] == ["food"] * 4 + ["car"] * 2 + ["unknown"]
    survivors = [{**r, "score_concept": c} for r, c in zip(rows, columns["score_concept"])]
    _, reasons = scorer.decide(survivors)
    kept = [i for i, r in enumerate(reasons) if r is None]
    # two concepts: at best an equal split, 0.5; food is capped at 3 (0.5 * (3 + 2 + 1 unknown)): its best stay
    assert kept == [0, 2, 3, 4, 5, 6]
    assert "concept 'food' over its quota" in reasons[1] and "filter.concept.max_share=0.5" in reasons[1]


def test_concept_zero_shot_with_clip(tiny_clip):
    scorer = ConceptBalanceScorer(ConceptFilterConfig(concepts=["food", "car", "animal"]), tiny_clip, 10.0)
    assert scorer.needs_pixels and scorer.cost_ms > 10.0
    columns = scorer.score([{}, {}], [scene(), scene(seed=5)])
    assert set(columns["score_concept"]) <= {"food", "car", "animal"}


def test_top_k_keeps_exactly_k_best():
    scorer = TopKScorer(TopKConfig(k=2, by="score_q"))
    _, reasons = scorer.decide([{"score_q": v} for v in (0.2, None, 0.9, 0.5)])
    assert [r is None for r in reasons] == [False, False, True, True]
    assert "not among the best 2 by score_q" in reasons[0]


def test_top_k_by_an_unknown_score_is_a_config_error():
    with pytest.raises(ConfigError, match=r"filter\.top_k\.by='score_nope'.*score_q"):
        TopKScorer(TopKConfig(k=1, by="score_nope")).decide([{"score_q": 0.1}, {"score_q": 0.2}])
