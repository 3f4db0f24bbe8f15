"""Packaging the training set: aspect-ratio buckets (``buckets``), the validation split
(``split``), the per-image resize and crop (``images``) and the dataset card (``card``)."""
