"""DiffMatte network modules (encoders, diffusion decoder, input encoding)."""
from .config import ModelConfig
from .model import Conditioning, DiffMatteModel, build_model, padded_size, trimap_onehot

__all__ = ["ModelConfig", "Conditioning", "DiffMatteModel", "build_model", "padded_size", "trimap_onehot"]
