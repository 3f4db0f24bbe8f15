"""Training recipes: one readable module each (pretrain, quality_tune)."""
