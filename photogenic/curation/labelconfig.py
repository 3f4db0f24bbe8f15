"""The Label Studio labeling configuration (XML) of each stage, built from ``labels``.

Stage 1 (generalists, recall): keep/reject and the criteria the picture does well, as
checkboxes. Stage 2 (specialists, precision): keep/reject, a 1-5 rating per criterion, Emu's
subjective questions, and a caption text area.
"""

from __future__ import annotations

from photogenic.curation.labels import CRITERIA, RATING_MAX, STAGE1_CRITERIA_CONTROL, STAGES, Question, StageQuestions
from photogenic.labelstudio import choices, tag, view

IMAGE = "image"


def label_config(stage: int) -> str:
    questions = STAGES[stage]
    lines = [tag("Image", name=IMAGE, value="$image", zoom=True), tag("Text", name="alt_text", value="$caption")]
    if stage == 1:
        lines += _choice(questions, questions.by_name("verdict"))
        lines += [tag("Header", value="It does well on:"),
                  *choices(STAGE1_CRITERIA_CONTROL, IMAGE, list(CRITERIA), choice="multiple", required=False,
                           hints=CRITERIA)]
    else:
        for question in questions.questions:
            if question.kind == "choice":
                lines += _choice(questions, question)
            elif question.kind == "rating":
                lines += [tag("Header", value=question.title),
                          tag("Rating", name=questions.control(question), to_name=IMAGE, max_rating=RATING_MAX,
                              required=True)]
            elif question.kind == "text":
                lines += [tag("Header", value=question.title),
                          tag("TextArea", name=questions.control(question), to_name=IMAGE, rows=3,
                              max_submissions=1, editable=True)]
    return view(lines)


def _choice(questions: StageQuestions, question: Question) -> list[str]:
    return [tag("Header", value=question.title), *choices(questions.control(question), IMAGE, question.choices)]
