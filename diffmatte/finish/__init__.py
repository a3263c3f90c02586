"""From the engine's matte to the delivered result: edge controls (``edges``) and
foreground colour estimation / decontamination into an RGBA cut-out (``cutout``)."""
