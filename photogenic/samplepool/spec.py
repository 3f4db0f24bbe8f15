"""What the synthetic pool is made of: the defect vocabulary and the share of each defect.

Every defect is allocated to an exact number of samples (``round(share * n)``), so a pool's
make-up is known in advance and a benchmark can tell a filter's recall per defect without
sampling noise. Defects within one group exclude each other (an image is not both under- and
overexposed); defects of different groups may stack on one sample.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from photogenic.errors import PhotogenicError


class SamplePoolError(PhotogenicError, ValueError):
    """Bad pool parameters or an output folder that holds something else. A ValueError for
    library callers, and a PhotogenicError so that the CLI reports it as one clear paragraph."""


#: Defects that decide whether the file holds a usable image at all.
FILE_DEFECTS = ("corrupt", "truncated")
#: Groups of mutually exclusive visual defects, in the order they are allocated.
VISUAL_GROUPS = (
    ("too_small", "extreme_aspect"),
    ("off_centre", "cut_off"),
    ("underexposed", "overexposed", "washed_out"),
    ("blur",),
    ("noise",),
    ("text_overlay",),
    ("watermark",),
)
#: A slightly altered copy of another clean sample of the pool.
DUPLICATE_DEFECT = "near_duplicate"
#: The very same bytes as another clean sample, re-uploaded under another key, URL and caption,
#: as web pools are full of; ingest collapses these into one row.
EXACT_DUPLICATE_DEFECT = "exact_duplicate"
DUPLICATE_DEFECTS = (DUPLICATE_DEFECT, EXACT_DUPLICATE_DEFECT)
#: Caption defects: they break the text, not the image, so they leave photogenic-ness alone.
CAPTION_DEFECTS = ("empty_caption", "non_utf8_caption")

VISUAL_DEFECTS = tuple(d for group in VISUAL_GROUPS for d in group)
#: Defects that make an image non-photogenic.
IMAGE_DEFECTS = (*FILE_DEFECTS, *VISUAL_DEFECTS, *DUPLICATE_DEFECTS)
#: Every defect, in the canonical order used for ground-truth lists and reports.
DEFECTS = (*IMAGE_DEFECTS, *CAPTION_DEFECTS)


@dataclass(frozen=True)
class SamplePoolSpec:
    """Shares of the pool per defect, and how often a scene is composed with care.

    The defaults give about 60% of samples with at least one defect and about 25% photogenic
    samples (composed, and free of image defects), close to a web pool after the cheap filters.
    """

    corrupt: float = 0.0075
    truncated: float = 0.0075
    too_small: float = 0.05
    extreme_aspect: float = 0.03
    off_centre: float = 0.06
    cut_off: float = 0.05
    underexposed: float = 0.06
    overexposed: float = 0.05
    washed_out: float = 0.07
    blur: float = 0.10
    noise: float = 0.07
    text_overlay: float = 0.07
    watermark: float = 0.08
    near_duplicate: float = 0.04
    exact_duplicate: float = 0.015
    empty_caption: float = 0.04
    non_utf8_caption: float = 0.02
    #: share of scenes composed with care (good light, placement, colour, background)
    composed: float = 0.6

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise SamplePoolError(f"SamplePoolSpec.{f.name} must be a share between 0 and 1, got {value!r}.")
        for group in (FILE_DEFECTS, *VISUAL_GROUPS, CAPTION_DEFECTS):
            total = sum(getattr(self, d) for d in group)
            if total > 1.0:
                raise SamplePoolError(
                    f"The shares of the mutually exclusive defects {', '.join(group)} add up to "
                    f"{total:g}; they must add up to at most 1."
                )

    def share(self, defect: str) -> float:
        return getattr(self, defect)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)
