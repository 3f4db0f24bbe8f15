"""What each curation stage asks, and how each answer is named and typed.

One table drives the Label Studio labeling config, the CSV columns, the parsers and the
agreement statistics, so the four cannot drift apart. Every question is a ``Question``: its
``name`` is the CSV column and, prefixed with the stage (``s1_``/``s2_``), the Label Studio
control's ``name`` (``from_name`` in an export), which is also how a file's stage is recognised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KEEP = "keep"
REJECT = "reject"
VERDICTS = (KEEP, REJECT)
YES = "yes"
NO = "no"

#: the photographic criteria of Emu's specialists (and the generalists' checkboxes)
CRITERIA = {
    "composition": "Composition",
    "lighting": "Lighting",
    "colour_contrast": "Colour and contrast",
    "subject_background": "Subject and background",
}
#: Emu's subjective questions, asked of the specialists
SUBJECTIVE = {
    "tells_story": "Does it tell a story?",
    "could_improve_a_lot": "Could it be improved a lot?",
    "best_of_subject": "Is it one of the best photos of this subject you have seen?",
}
RATING_MAX = 5


@dataclass(frozen=True)
class Question:
    name: str
    #: choice: one of ``choices``; checkbox: one box of a multi-choice group (checked or not);
    #: rating: an integer 1..RATING_MAX; text: free text
    kind: Literal["choice", "checkbox", "rating", "text"]
    title: str
    choices: tuple[str, ...] = ()
    #: whether a submission must answer it (an unchecked box is an answer: "no")
    required: bool = True
    #: whether inter-annotator agreement is computed for it
    agreement: bool = True


@dataclass(frozen=True)
class StageQuestions:
    stage: int
    questions: tuple[Question, ...]

    @property
    def prefix(self) -> str:
        return f"s{self.stage}_"

    def control(self, question: Question) -> str:
        """The Label Studio control name (an export's ``from_name``)."""
        return f"{self.prefix}{question.name}"

    def by_name(self, name: str) -> Question:
        return next(q for q in self.questions if q.name == name)

    @property
    def rated(self) -> list[Question]:
        return [q for q in self.questions if q.agreement]


#: the checkbox group of stage 1 is one Label Studio control whose choices are the criteria
STAGE1_CRITERIA_CONTROL = "s1_criteria"

STAGE1 = StageQuestions(1, (
    Question("verdict", "choice", "Keep for the specialists?", VERDICTS),
    *(Question(name, "checkbox", title) for name, title in CRITERIA.items()),
))
STAGE2 = StageQuestions(2, (
    Question("verdict", "choice", "Is it photogenic enough to train on?", VERDICTS),
    *(Question(name, "rating", title) for name, title in CRITERIA.items()),
    *(Question(name, "choice", title, (YES, NO)) for name, title in SUBJECTIVE.items()),
    Question("caption", "text", "Describe the picture in one or two sentences", required=False, agreement=False),
))
STAGES = {1: STAGE1, 2: STAGE2}

#: CSV columns every row has before the answers
CSV_KEYS = ("sample_id", "stage", "annotator", "submitted_at")


def csv_columns(stage: int) -> list[str]:
    return [*CSV_KEYS, *(q.name for q in STAGES[stage].questions)]


def stage_of_control(from_name: str) -> int | None:
    """The stage a Label Studio control name belongs to (``s2_lighting`` -> 2)."""
    for number, questions in STAGES.items():
        if from_name.startswith(questions.prefix):
            return number
    return None
