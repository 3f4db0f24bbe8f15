"""Upsampling images below the training resolution: a classical resampler (Lanczos with a mild
unsharp mask, the default that needs no weights) and diffusers upscalers for real checkpoints.

``plan`` decides which rows grow and by how much, ``lanczos`` and ``diffusion`` make the pixels,
``columns`` names what the upsample stage adds to the manifest.
"""
