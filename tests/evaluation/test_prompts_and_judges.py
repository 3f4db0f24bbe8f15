"""Prompt sets (the sample world's held-out prompts, user files) and the automated judges."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photogenic.errors import ConfigError, DataError
from photogenic.evaluation.judges.registry import build_judges
from photogenic.evaluation.judges.sample_world.scene_check import attribute_terms, scene_attribute_score
from photogenic.evaluation.prompts import Prompt, load_prompts, write_prompts
from photogenic.evaluation.world_prompts import sample_world_prompts, training_captions, tuning_prompts
from photogenic.samplepool.captions import scene_caption
from photogenic.samplepool.render import render_scene
from photogenic.samplepool.world import Scene

REPO = Path(__file__).resolve().parents[2]


def test_world_prompts_are_held_out_balanced_and_named():
    prompts = sample_world_prompts(36, pool_n=600, pool_seed=0)
    assert len(prompts) == 36 and len({p.prompt for p in prompts}) == 36
    assert not {p.prompt for p in prompts} & training_captions(600, 0)
    assert set(Counter(p.kind for p in prompts).values()) == {4}  # 9 kinds, 4 each
    for p in prompts:
        assert p.colour and p.placement and p.background and p.category
        assert p.colour in p.prompt


def test_committed_prompt_set_is_held_out_from_the_default_pool():
    prompts = load_prompts(str(REPO / "data" / "prompts" / "sample_world.tsv"))
    assert len(prompts) >= 100
    assert not {p.prompt for p in prompts} & training_captions(4000, 0)
    assert all(p.attributes.keys() == {"kind", "colour", "placement", "background"} for p in prompts)


def test_tuning_prompts_share_no_prompt_with_the_evaluation():
    evaluation = sample_world_prompts(36, pool_n=600, pool_seed=0)
    texts = {p.prompt for p in evaluation}
    # a tuning set's own draws (seed 1) may meet the evaluation's by chance: plant one to see it go
    planted = sample_world_prompts(1, seed=1, pool_n=600, pool_seed=0)[0].prompt
    tuning = tuning_prompts(36, texts | {planted}, pool_n=600, pool_seed=0)
    assert len(tuning) == 36 and len({p.prompt for p in tuning}) == 36
    assert not {p.prompt for p in tuning} & (texts | {planted})
    assert not {p.prompt for p in tuning} & training_captions(600, 0)
    assert tuning == tuning_prompts(36, texts | {planted}, pool_n=600, pool_seed=0)


def test_user_prompt_files(tmp_path):
    (tmp_path / "p.txt").write_text("# my prompts\na red cat\n\n  a blue car  \n")
    assert [p.prompt for p in load_prompts(str(tmp_path / "p.txt"))] == ["a red cat", "a blue car"]
    # PartiPrompts' layout: Prompt, Category, Challenge, Note
    (tmp_path / "parti.tsv").write_text("Prompt\tCategory\tChallenge\tNote\nbond\tAbstract\tBasic\t\n"
                                        "a cat\tAnimals\tBasic\tx\n")
    parti = load_prompts(str(tmp_path / "parti.tsv"))
    assert [(p.prompt, p.category) for p in parti] == [("bond", "Abstract"), ("a cat", "Animals")]
    (tmp_path / "p.csv").write_text('id,prompt\nx1,"a cat, sitting"\n')
    assert load_prompts(str(tmp_path / "p.csv"))[0] == Prompt("x1", "a cat, sitting")
    written = [Prompt("a", "t1", "food", colour="red"), Prompt("b", "t2")]
    write_prompts(str(tmp_path / "round.tsv"), written)
    assert load_prompts(str(tmp_path / "round.tsv")) == written


@pytest.mark.parametrize("name,content,message", [
    ("none.txt", None, "does not exist"),
    ("empty.txt", "# only a comment\n\n", "holds no prompts"),
    ("nocol.csv", "text,category\na,b\n", "needs a 'Prompt' column"),
    ("blank.tsv", "Prompt\tCategory\n\tAnimals\n", "line 2 has an empty prompt"),
    ("dup.txt", "a cat\na cat\n", "must be unique"),
    ("p.json", "[]", "suffix"),
    ("bad.txt", b"\xff\xfe\x00a", "not UTF-8"),
])
def test_bad_prompt_files_are_clear_errors(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=message):
        load_prompts(str(tmp_path / name))


def _render(kind="car", colour="red", placement="thirds_left", background="beach", seed=0):
    scene = Scene(kind, colour, background, "daylight", placement, None, 240, 180, ())
    prompt = Prompt("x", scene_caption(scene), kind=kind, colour=colour, placement=placement, background=background)
    return render_scene(scene, np.random.default_rng(seed)).image, prompt


def test_scene_checker_prefers_the_scene_the_prompt_names():
    image, prompt = _render()
    right = scene_attribute_score(image, prompt)
    for wrong in (_render(colour="blue")[0], _render(placement="thirds_right")[0], _render(background="night_city")[0]):
        assert scene_attribute_score(wrong, prompt) < right - 0.1
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert scene_attribute_score(noise, prompt) < 0.2 < right
    terms = attribute_terms(image, prompt)
    assert terms["placement"] > 0.8 and terms["colour"] > 0.3 and terms["background"] > 0.5
    # a free-text prompt names no attribute: the checker abstains
    assert np.isnan(scene_attribute_score(image, Prompt("y", "a painting of love")))


def test_built_in_judges_and_clear_errors(tmp_path):
    from photogenic.config import load_config

    settings = load_config(None).evaluate.judges
    technical, scene = build_judges(settings)
    sharp, prompt = _render()
    blurred = sharp.resize((30, 22)).resize(sharp.size)
    assert technical.score([sharp], [prompt])[0] > technical.score([blurred], [prompt])[0]
    assert scene.criterion == "text_faithfulness"
    with pytest.raises(ConfigError, match="evaluate.judges.clip_model"):
        build_judges(settings.model_copy(update={"text_faithfulness": ["clip_score"]}))
    with pytest.raises(ConfigError, match="Unknown judge 'nope'"):
        build_judges(settings.model_copy(update={"visual_appeal": ["nope"]}))
    with pytest.raises(ConfigError, match="move it to evaluate.judges.visual_appeal"):
        build_judges(settings.model_copy(update={"text_faithfulness": ["technical_quality"]}))


def test_clip_judges_with_a_tiny_random_clip(tmp_path):
    from safetensors.numpy import save_file

    from photogenic.config import load_config
    from tests.support.tiny_models import tiny_clip

    clip = tiny_clip(tmp_path / "clip")
    rng = np.random.default_rng(0)
    head = {"layers.0.weight": rng.normal(size=(8, 16)).astype(np.float32), "layers.0.bias": np.zeros(8, np.float32),
            "layers.1.weight": rng.normal(size=(1, 8)).astype(np.float32), "layers.1.bias": np.ones(1, np.float32)}
    save_file(head, str(tmp_path / "head.safetensors"))
    settings = load_config(None, [f"evaluate.judges.clip_model={clip}",
                                  f"evaluate.judges.aesthetic_head={tmp_path / 'head.safetensors'}",
                                  "evaluate.judges.visual_appeal=[aesthetic]",
                                  "evaluate.judges.text_faithfulness=[clip_score]",
                                  "evaluate.judges.device=cpu"]).evaluate.judges
    aesthetic, clip_score = build_judges(settings)
    images = [_render(seed=s)[0] for s in range(2)] + [_render(colour="blue")[0]]
    prompts = [_render()[1]] * 3
    scores = clip_score.score(images, prompts)
    assert len(scores) == 3 and all(0.0 <= s <= 100.0 for s in scores)
    # the score is the cosine of the model's own embeddings, recomputed here
    backbone = clip_score.clip
    cos = (backbone.image_embeddings(images[:1]) * backbone.text_embeddings([prompts[0].prompt])).sum().item()
    assert scores[0] == pytest.approx(100 * max(cos, 0.0), abs=1e-4)
    appeal = aesthetic.score(images, prompts)
    emb = backbone.image_embeddings(images)
    expected = (emb @ head["layers.0.weight"].T) @ head["layers.1.weight"].T + 1.0
    assert np.allclose(appeal, expected[:, 0], atol=1e-4)
    save_file({"weight": np.zeros((1, 12), np.float32)}, str(tmp_path / "wrong.safetensors"))
    # a head for another CLIP is refused when the judges are built, before any image is sampled
    with pytest.raises(ConfigError, match=r"evaluate\.judges\.aesthetic_head.*takes 12-d CLIP embeddings.*16-d"):
        build_judges(settings.model_copy(update={"aesthetic_head": str(tmp_path / "wrong.safetensors"),
                                                 "text_faithfulness": []}))


def test_subject_kind_checker_learns_the_world_s_kinds_and_scores_the_named_one():
    """Seeded training that fits its pool far above chance (1/9); a score is the probability of
    the kind the prompt names, NaN for a prompt that names none."""
    import torch

    from photogenic.config import load_config
    from photogenic.evaluation.judges.sample_world import kind_check

    names = kind_check.kinds()
    with torch.no_grad():  # as when the first score trains the default checker
        first = kind_check.train_classifier(n=60, epochs=1, seed=5)
    again = kind_check.train_classifier(n=60, epochs=1, seed=5)
    assert torch.equal(first[0].weight, again[0].weight)
    net = kind_check.train_classifier(n=300, epochs=30, seed=5)
    images, labels = kind_check.training_images(300, seed=5)
    assert images.shape[1:] == (3, kind_check.WORK, kind_check.WORK) and set(labels) == set(range(len(names)))
    with torch.no_grad():
        fitted = (net(torch.from_numpy(images)).argmax(1).numpy() == labels).mean()
    assert fitted > 0.3  # chance is 0.11

    class Says(torch.nn.Module):  # a checker that sees a car in everything, 70% sure
        def forward(self, x):
            logits = torch.zeros(len(x), len(names))
            logits[:, names.index("car")] = float(np.log(0.7 / 0.3 * (len(names) - 1)))
            return logits

    image = Image.new("RGB", (40, 30), "red")
    car, cat, free = Prompt("a", "a red car", kind="car"), Prompt("b", "a red cat", kind="cat"), Prompt("c", "love")
    scores = kind_check.subject_kind_scores([image, image, image], [car, cat, free], net=Says())
    assert scores[0] == pytest.approx(0.7) and scores[1] == pytest.approx(0.3 / 8) and np.isnan(scores[2])
    assert kind_check.kind_probabilities([], net=Says()).shape == (0, len(names))

    settings = load_config(None, ["evaluate.judges.text_faithfulness=[scene_attributes, subject_kind]"]).evaluate.judges
    _, _, judge = build_judges(settings)
    assert (judge.name, judge.criterion) == ("subject_kind", "text_faithfulness")


@pytest.mark.slow
def test_default_subject_kind_checker_names_most_kinds_of_a_pool_it_never_saw():
    import torch

    from photogenic.evaluation.judges.sample_world import kind_check

    images, labels = kind_check.training_images(300, seed=kind_check.HELD_OUT_SEED)
    with torch.no_grad():
        named = kind_check.classifier()(torch.from_numpy(images)).argmax(1).numpy()
    assert (named == labels).mean() > 0.8
