"""The concrete scorers of the auto-filter cascade."""
