"""Step 5b of the Krita host scenario: a rectangle drawn around the subject, refined with
the docker's defaults (Selection source, Edge rough); the number check is
tests/hosts/rough_photo.py's (``mask-rect.png`` against the truth and the box's own SAD)."""
import json
import os

from .scenario import OUT, check, check_refined, hide_side_dockers, log, press_refine, save_mask, select_box, wait_until


def refine_box(k, win, doc, layer, layer_px, panel, w, h):
    """5b. A rectangle drawn around the subject (box.json beside RM_ROUGH: the rectangle
    bench's box, tests/hosts/rough_photo.py), Selection source: the colour path inside a
    box (no SAM in the chroots); tests/hosts/krita.sh scores mask-rect.png against the truth."""
    path = os.path.join(os.path.dirname(os.environ["RM_ROUGH"]), "box.json")
    if not os.path.isfile(path):
        log("NOTE no box.json: the rectangle refine is skipped (no dev photos)")
        return
    with open(path) as f:
        x, y, bw, bh = json.load(f)["box"]
    select_box(doc, layer, x, y, bw, bh)
    outcome, secs, error = press_refine(panel, "selection")
    boxed = check_refined("refine 5 (rectangle)", doc, layer, layer_px, outcome, secs, error)
    save_mask(bytes(boxed.pixelData(0, 0, w, h)) if boxed else b"", w, h, "mask-rect.png")
    hide_side_dockers(k)
    wait_until(lambda: False, 2.0)
    shot = os.path.join(OUT, "screenshot-rect.png")
    check("screenshot after the rectangle refine saved", win.qwindow().grab().save(shot), shot)
