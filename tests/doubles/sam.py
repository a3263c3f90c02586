"""A tiny random-weight Segment Anything model (``tiny_sam``): ``trimap.SamPrompter`` takes it in
place of a checkpoint and runs it in a fraction of a second. Needs segment-anything and torch."""
from __future__ import annotations

from typing import Any, List


def tiny_sam() -> Any:
    """A seeded SAM with a one-block, 16-wide image encoder (the same weights on every call)."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(0)
    d = 32
    return Sam(
        image_encoder=ImageEncoderViT(img_size=1024, patch_size=16, embed_dim=16, depth=1, num_heads=1,
                                      out_chans=d, window_size=8),
        prompt_encoder=PromptEncoder(embed_dim=d, image_embedding_size=(64, 64), input_image_size=(1024, 1024),
                                     mask_in_chans=4),
        mask_decoder=MaskDecoder(transformer_dim=d, iou_head_hidden_dim=16,
                                 transformer=TwoWayTransformer(depth=1, embedding_dim=d, mlp_dim=64, num_heads=2)),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


def no_installed_sam(monkeypatch: Any, folder: Any) -> None:
    """No SAM installed for one test (an empty config folder ``folder``, no checkpoint variable,
    nothing cached): a rectangle then goes to the colour models, whatever this machine has."""
    from trimap import selection

    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", str(folder))
    monkeypatch.delenv("REFINE_MATTE_SAM_CHECKPOINT", raising=False)
    monkeypatch.setattr(selection, "_INSTALLED", {})


def install_tiny_sam(monkeypatch: Any) -> List[Any]:
    """Make ``tiny_sam`` this process's installed SAM (``trimap.selection.installed_prompter``,
    which ``diffmatte refine --mask`` and batch ask) for one test; returns the list of the box
    prompts it then gets."""
    import trimap
    from trimap import selection

    prompter = trimap.SamPrompter(tiny_sam())
    boxes: List[Any] = []
    real = prompter.trimap
    prompter.trimap = lambda image, box=None, **kw: boxes.append(box) or real(image, box=box, **kw)
    monkeypatch.setattr(selection, "installed_prompter", lambda device="auto": prompter)
    return boxes
