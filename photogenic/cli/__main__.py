"""``python -m photogenic.cli``: what torchrun and accelerate launch (they start a module)."""

from photogenic.cli.app import main

main()
