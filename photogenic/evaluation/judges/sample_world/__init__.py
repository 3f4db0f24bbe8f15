"""Judges that know the sample world, the embedded default's synthetic pool: they read a
sample-world prompt's named colour, placement, background and subject kind, and measure them in
pixels or with a checker trained on the world's own ground truth. On a free-text prompt they
abstain (NaN)."""
