"""Text faithfulness as Emu asked it: which picture follows the prompt, A, B, both, or neither?

Emu's raters answered, for each pair, which picture follows the prompt: A, B, both, or neither.
This judge answers the same question with the sample world's two checkers combined: the scene
checker (``scene_check``: the colour, placement and background the prompt names, each a term in
[0, 1]) and the kind checker (``kind_check``: the probability of the subject kind it names).

- each term counts as *shown* at ``TERM_MIN[name]`` (``KIND_MIN`` for the kind); the picture's
  score is the mean over the named attributes of ``min(term / threshold, 1)``, so 1 means it
  shows everything the prompt names. Saturating at the threshold is what keeps the judge blind to
  appeal: a sharper, better-lit rendering of a scene already shown earns nothing more, while a
  missing or wrong attribute costs its whole share;
- a pair: the picture with the higher score follows the prompt better (A or B); equal scores
  are a tie: *both* when both show everything, *neither* when both fall short alike (the same
  attribute missing). Ties count half in the win rate; the both and neither shares are
  reported beside it (``evaluate.headline``).

The thresholds were chosen on renders of a tuning prompt set (the held-out stream drawn with
seed ``world_prompts.TUNING_PROMPT_SEED``), never on the evaluation's prompts: the named scene composed with
care against the same scene with one attribute changed (agreement 0.861 there) and against the
same scene flat and defective (win rate 0.5 + 0.164: the appeal it still sees, mostly through
faded or noisy colour). ``benchmarks/judge_validity.py`` measures the result on the evaluation's
own prompts. A prompt that names nothing the checkers know is not judged (NaN).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from photogenic.evaluation.judges.registry import TEXT_FAITHFULNESS, register_judge
from photogenic.evaluation.judges.sample_world.kind_check import KindChecker, subject_kind_scores
from photogenic.evaluation.judges.sample_world.scene_check import attribute_terms
from photogenic.evaluation.prompts import Prompt

#: the least each scene term must reach for the attribute to count as shown
TERM_MIN = {"colour": 0.6, "placement": 0.5, "background": 0.2}
#: the least probability of the named kind (chance is 1/9)
KIND_MIN = 0.3
#: a score at or above this shows everything the prompt names
FAITHFUL = 1.0


def text_match_scores(images: list[Image.Image], prompts: list[Prompt],
                      checker: torch.nn.Module | None = None) -> list[float]:
    """Per picture, the mean over the attributes its prompt names of ``min(term / threshold, 1)``;
    NaN where the prompt names nothing the checkers know. ``checker``: the kind checker (default:
    the one fitted in this process)."""
    kind = subject_kind_scores(images, prompts, checker)
    out = []
    for image, prompt, kind_probability in zip(images, prompts, kind):
        shares = [min(value / TERM_MIN[name], 1.0) for name, value in attribute_terms(image, prompt).items()]
        if not math.isnan(kind_probability):
            shares.append(min(kind_probability / KIND_MIN, 1.0))
        out.append(float(np.mean(shares)) if shares else math.nan)
    return out


class TextMatchJudge:
    name = "text_match"
    criterion = TEXT_FAITHFULNESS
    #: a tie is "both" where both scores reach this, else "neither"
    faithful_at = FAITHFUL
    #: equal scores only: saturated terms make "shows everything" an exact 1
    tie_margin = 1e-9

    def __init__(self, cache: str | None = None, workers: int = 0):
        self.checker = KindChecker(cache, workers)
        self.learns = (self.checker,)

    def score(self, images: list[Image.Image], prompts: list[Prompt]) -> list[float]:
        return text_match_scores(images, prompts, self.checker.nets[0])


register_judge("text_match", lambda s: TextMatchJudge(s.cache, s.workers))
