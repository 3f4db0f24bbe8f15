"""Training: the loop (trainer.py) and its parts, and the recipes (recipes/)."""
