"""Lineage: from a model version back to every dataset version, source and annotation export it
was made from, and from a sample forward to every dataset and model version it went into."""
