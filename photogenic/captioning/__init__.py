"""Captioning models for the caption stage (see ``model``)."""
