"""The Label Studio labeling configuration (XML) of each stage, built from ``labels``.

Stage 1 (generalists, recall): keep/reject and the criteria the picture does well, as
checkboxes. Stage 2 (specialists, precision): keep/reject, a 1-5 rating per criterion, Emu's
subjective questions, and a caption text area.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from photogenic.curation.labels import CRITERIA, RATING_MAX, STAGE1_CRITERIA_CONTROL, STAGES, Question, StageQuestions

IMAGE = "image"


def label_config(stage: int) -> str:
    questions = STAGES[stage]
    lines = ["<View>", f'  <Image name="{IMAGE}" value="$image" zoom="true"/>',
             '  <Text name="alt_text" value="$caption"/>']
    if stage == 1:
        lines += _choice(questions, questions.by_name("verdict"))
        lines += ['  <Header value="It does well on:"/>',
                  f'  <Choices name="{STAGE1_CRITERIA_CONTROL}" toName="{IMAGE}" choice="multiple" showInline="true">',
                  *(f"    <Choice value={quoteattr(name)} hint={quoteattr(title)}/>" for name, title in CRITERIA.items()),
                  "  </Choices>"]
    else:
        for question in questions.questions:
            if question.kind == "choice":
                lines += _choice(questions, question)
            elif question.kind == "rating":
                lines += [f"  <Header value={quoteattr(question.title)}/>",
                          f'  <Rating name="{questions.control(question)}" toName="{IMAGE}" maxRating="{RATING_MAX}" '
                          f'required="true"/>']
            elif question.kind == "text":
                lines += [f"  <Header value={quoteattr(question.title)}/>",
                          f'  <TextArea name="{questions.control(question)}" toName="{IMAGE}" rows="3" '
                          f'maxSubmissions="1" editable="true"/>']
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _choice(questions: StageQuestions, question: Question) -> list[str]:
    return [f"  <Header value={quoteattr(question.title)}/>",
            f'  <Choices name="{questions.control(question)}" toName="{IMAGE}" choice="single" '
            f'required="true" showInline="true">',
            *(f"    <Choice value={quoteattr(c)}/>" for c in question.choices),
            "  </Choices>"]
