"""Checkpoint loading/validation/conversion, the official weights registry and downloads."""
from .checkpoint import (convert_to_safetensors, detect_config, load_model, read_checkpoint, save_safetensors,
                         validate_state_dict)

__all__ = ["convert_to_safetensors", "detect_config", "load_model", "read_checkpoint", "save_safetensors",
           "validate_state_dict"]
