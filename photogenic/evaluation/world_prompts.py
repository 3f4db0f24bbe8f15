"""The embedded default's prompts: scenes of the sample world that the training captions never say.

The models of the embedded default learn from captions of the synthetic pool
(``photogenic.samplepool``), which describe each scene in one template ("a photo of a red
vintage car in the centre of the frame on a sandy beach by the sea in bright daylight"). The
evaluation prompts use the same vocabulary and template, so a model trained on the pool can
follow them, but are held out from it:

1. scenes are drawn from their own random stream (``HELD_OUT_STREAM``, unrelated to the pool's
   scene stream) and only *composed* ones are kept: vivid colour, a background that suits the
   subject, good light, a good placement, which is what a photogenic model should draw;
2. any prompt whose text equals the scene caption of a sample of the training pool (rebuilt
   from the pool's ``n`` and ``seed`` alone, no pixels rendered) is dropped, so no prompt is a
   training caption word for word;
3. duplicates are dropped, and the set is balanced over subject kinds (round-robin), with the
   subject's concept (portrait, food, animal, ...) as the prompt's category.

``data/prompts/sample_world.tsv`` is this set for the default pool (n=4000, seed=0), written by
``photogenic evaluate prompts``; regenerate it when the pool changes.
"""

from __future__ import annotations

from collections import defaultdict

from photogenic.evaluation.prompts import Prompt
from photogenic.samplepool.captions import scene_caption
from photogenic.samplepool.rng import stream
from photogenic.samplepool.sample import PoolContext, scene_of
from photogenic.samplepool.spec import SamplePoolSpec
from photogenic.samplepool.world import KINDS, sample_scene

#: the purpose number of the held-out stream; the pool's own streams use 0-5
HELD_OUT_STREAM = 101
#: the held-out stream's seed for choosing things (judges' thresholds, the quality-tuning recipe);
#: the evaluation's prompts are its seed 0
TUNING_PROMPT_SEED = 1


def training_captions(pool_n: int, pool_seed: int, spec: SamplePoolSpec | None = None) -> set[str]:
    """Every scene caption of the pool with this size and seed (cheap: scenes only, no pixels)."""
    ctx = PoolContext.create(pool_n, pool_seed, shard_size=max(1, pool_n), spec=spec or SamplePoolSpec())
    return {scene_caption(scene_of(ctx, i)) for i in range(pool_n)}


def sample_world_prompts(n: int, *, seed: int = 0, pool_n: int = 4000, pool_seed: int = 0,
                         max_draws: int = 200_000) -> list[Prompt]:
    """``n`` held-out prompts of composed sample-world scenes, balanced over subject kinds."""
    excluded = training_captions(pool_n, pool_seed)
    by_kind: dict[str, list[Prompt]] = defaultdict(list)
    seen: set[str] = set()
    rng = stream(HELD_OUT_STREAM, seed)
    per_kind = -(-n // len(KINDS))
    for _ in range(max_draws):
        scene = sample_scene(rng, image_defects=(), composed_share=1.0)
        text = scene_caption(scene)
        if text in excluded or text in seen or len(by_kind[scene.kind]) >= per_kind:
            continue
        seen.add(text)
        by_kind[scene.kind].append(Prompt(
            prompt_id=f"sw-{len(seen):04d}", prompt=text, category=scene.concept,
            kind=scene.kind, colour=scene.colour, placement=scene.placement, background=scene.background,
        ))
        if sum(len(v) for v in by_kind.values()) >= per_kind * len(KINDS):
            break
    # round-robin over kinds so that any prefix of the file is balanced too
    ordered = [p for group in zip(*(by_kind[k] for k in KINDS)) for p in group]
    return ordered[:n]


def tuning_prompts(n: int, evaluation: set[str], *, pool_n: int = 4000, pool_seed: int = 0) -> list[Prompt]:
    """``n`` held-out prompts to choose settings on: the stream drawn with ``TUNING_PROMPT_SEED``,
    without any prompt text of ``evaluation`` (the two seeds' draws may meet by chance)."""
    drawn = sample_world_prompts(n + len(evaluation), seed=TUNING_PROMPT_SEED, pool_n=pool_n, pool_seed=pool_seed)
    return [p for p in drawn if p.prompt not in evaluation][:n]
