"""Automated judges: one score per image, higher is better; pairs are compared on it.

A judge has a ``name``, the ``criterion`` it stands in for (``visual_appeal`` or
``text_faithfulness``, Emu's two questions), a ``tie_margin`` (score differences within it are
ties: no judge should call a winner on noise) and ``score(images, prompts)`` returning one float
per image, NaN where it abstains (the scene checker on a free-text prompt). Judges are built by
name from the config (``evaluate.judges``) through the registry (``registry.py``). A new judge
is one module in this folder (or below it) that calls ``register_judge``: the registry imports
every module here the first time judges are built.

Built in:

=================  =================  ======================================================
name               criterion          what it measures
=================  =================  ======================================================
technical_quality  visual_appeal      the auto-filter's weight-free technical quality
                                      (``photogenic.imaging.quality``: sharpness, noise,
                                      exposure, contrast, colourfulness, composition)
aesthetic          visual_appeal      a LAION-style aesthetic head on CLIP image embeddings
                                      (needs ``clip_model`` and ``aesthetic_head``)
scene_attributes   text_faithfulness  colour, placement and background named by a
                                      sample-world prompt, measured in pixels
                                      (``sample_world/scene_check.py``)
subject_kind       text_faithfulness  the probability that the subject is the kind a
                                      sample-world prompt names, from a small classifier
                                      trained on a pool of the sample world
                                      (``sample_world/kind_check.py``)
clip_score         text_faithfulness  100 · cos(CLIP image, CLIP text), floored at 0
                                      (needs ``clip_model``)
rater_panel        visual_appeal      five simulated raters trained on the sample world's
                                      ground truth, caption hidden; each votes, the pair
                                      goes by the majority (``sample_world/rater_panel.py``)
text_match         text_faithfulness  the scene and kind checkers combined, each attribute
                                      saturating once shown; pairs are A, B, both or
                                      neither (``sample_world/text_match.py``)
=================  =================  ======================================================

A judge that is a panel of raters also has ``score_members(images, prompts)`` (images ×
members): each member then votes on a pair by itself and the majority decides
(``comparisons.panel_outcomes``). A judge with ``faithful_at`` (the score at which a picture
shows everything its prompt names) has its ties reported as both and neither. A judge with a ``card`` (what it was trained
on and how well it agrees with the truth) has it copied into every evaluation's results.
"""
