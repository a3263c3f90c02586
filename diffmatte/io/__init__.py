"""Files in and out: images and trimaps (``images``), cut-out files (``cutout_files``),
atomic writes (``fsutil``) and layered documents (``layered``: PSD, OpenRaster, TIFF)."""
