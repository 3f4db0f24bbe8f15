"""A transformers image-to-text captioner (BLIP, GIT, a VisionEncoderDecoder, ...), loaded from
``caption.model.checkpoint``: its image processor, tokenizer and ``AutoModelForImageTextToText``
model, generating unconditionally from the pixels."""

from __future__ import annotations

import logging

from PIL import Image

from photogenic.config import CaptionModelConfig
from photogenic.errors import ConfigError

log = logging.getLogger(__name__)


class ImageCaptioner:
    def __init__(self, settings: CaptionModelConfig):
        if not settings.checkpoint:
            raise ConfigError("caption.model.checkpoint is not set; set it to a transformers image-to-text "
                              "checkpoint (a local folder or hub id), or leave it null to use the alt-text.")
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        self.settings = settings
        try:
            self.image_processor = AutoImageProcessor.from_pretrained(settings.checkpoint)
            self.tokenizer = AutoTokenizer.from_pretrained(settings.checkpoint)
            self.model = AutoModelForImageTextToText.from_pretrained(settings.checkpoint)
        except (OSError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"caption.model.checkpoint is {settings.checkpoint!r}, which cannot be loaded as an image-to-text "
                f"model ({first}). Set caption.model.checkpoint to a local folder saved with save_pretrained (or a "
                "hub id already in the local cache: there is no download here), or to null to caption with the "
                "alt-text.") from None
        self.device = torch.device(settings.device)
        self.model.to(self.device).eval()
        log.info("captioning model %s (%s) on %s", settings.checkpoint, type(self.model).__name__, self.device)

    def caption(self, images: list[Image.Image]) -> list[str]:
        import torch

        pixels = self.image_processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        with torch.inference_mode():
            tokens = self.model.generate(pixel_values=pixels, max_new_tokens=self.settings.max_new_tokens)
        return [text.strip() for text in self.tokenizer.batch_decode(tokens, skip_special_tokens=True)]
