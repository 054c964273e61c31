"""Models: config, safetensors reader, loading, components, the transformer."""

from .config import SUPPORTED, ModelConfig
from .transformer import ModelOutput, TransformerModel

__all__ = ["SUPPORTED", "ModelConfig", "ModelOutput", "TransformerModel"]
