"""The panel's traffic with its host document, kept out of panel.py: reading the active
layer, its mask and the selection outline into the canvas; delivering a refined matte as
a new layer mask (with the checks that refuse an empty matte or a changed document), the
re-render after an edge change, and "Save matte…" for a matte the host could not take.

Functions over the :class:`~refine_matte.panel.RefinePanel` (like :mod:`refine_matte.panel_ui`):
they use its ``adapter`` (a :class:`~refine_matte.adapter.HostAdapter`), ``state``, ``canvas``,
``output`` and its status / error widgets; the panel keeps the public methods.  Qt + stdlib.
"""

from __future__ import annotations

import traceback
from typing import Any

from . import imaging
from .adapter import HostError, NoImageError
from .qt import QtWidgets
from .worker import describe_error

MASK_NAME = "Refine Matte"  # one mask of this name per layer: a new refine replaces it
#: a matte whose every pixel is at most this (of 255) is "empty": as a mask it hides the layer
EMPTY_MATTE_LEVEL = 8


def target_id(panel: Any) -> Any:
    """The host's id of the document and layer (None when unknown): a result goes back only
    where its job came from."""
    try:
        return panel.adapter.document_id() if panel.adapter is not None else None
    except Exception:  # noqa: BLE001 - an id is only a safety check
        return None


def refresh(panel: Any) -> None:
    """Reload the active layer (and its mask) from the host into the canvas."""
    if panel.adapter is None:
        panel.canvas.set_image(None)
        return
    try:
        image = panel.adapter.active_image()
    except HostError:
        panel.canvas.set_image(None)
        return
    except Exception as exc:  # noqa: BLE001 - adapter bugs are shown, not raised into the host
        traceback.print_exc()
        panel.canvas.set_image(None)
        panel.show_error(describe_error(exc))
        return
    panel.canvas.set_image(image, keep_input=True)
    try:
        mask = panel.adapter.layer_mask()
    except Exception:  # noqa: BLE001 - a missing mask only means nothing to show
        mask = None
    panel.canvas.set_alpha(mask)
    _on_host_refreshed(panel)


def _on_host_refreshed(panel: Any) -> None:
    """The host says its document or layer changed: a new document drops the last
    result's status and raw matte; the selection outline follows the host."""
    if panel.state.note_host_target(target_id(panel)):
        panel.forget_result()
        panel.reset_status()
    show_selection_outline(panel)


def show_selection_outline(panel: Any) -> None:
    """Outline the host selection on the panel's canvas (selection source only)."""
    if panel.source() != "selection" or panel.adapter is None:
        return
    try:
        panel.canvas.set_selection(panel.adapter.selection_mask())
    except Exception:  # noqa: BLE001 - no outline is better than an error here
        panel.canvas.set_selection(None)


def follow_selection(panel: Any) -> None:
    """The host's poll (the Krita docker's timer): redraw the selection outline when the
    host's selection changed since the last poll (``HostAdapter.selection_key``), so the
    panel never shows a selection the artist has replaced (Select All, a new lasso)."""
    if panel.adapter is None:
        return
    try:
        key = panel.adapter.selection_key()
    except Exception:  # noqa: BLE001 - a poll must never raise into the host
        return
    if panel.state.note_host_selection(key):
        show_selection_outline(panel)


def deliver(panel: Any, alpha: Any) -> None:
    """A refine finished: keep the raw matte, apply the edge controls, show the result and
    add it to the host as a new layer mask (unless the host changed or the matte is empty;
    then it is kept for "Save matte…"), start the cut-out, end the job."""
    outcome = "done"
    panel.state.remember_raw(alpha, panel.state.spec_image, target_id(panel))
    panel.output.sync_available()
    alpha = panel.output.edged(alpha)  # edge controls; the raw matte is kept for re-renders
    panel.state.last_alpha = alpha  # kept (and shown) even when the host cannot take it
    panel.canvas.set_alpha(alpha)
    try:
        if panel.adapter is None:
            raise NoImageError("No host document is connected to the panel.")
        if target_id(panel) != panel.state.job_target:
            raise HostError("The document or active layer changed while refining, so the "
                            "matte was not applied. Run Refine Matte again.")
        if imaging.count_above(alpha, EMPTY_MATTE_LEVEL) == 0:
            raise HostError("The refined matte is empty: as a mask it would hide the whole "
                            "layer, so no mask was added. Select (or mark as foreground) "
                            "the subject and refine again.")
        note = panel.adapter.add_layer_mask(alpha, MASK_NAME)
        warning = panel.state.job_warning
        panel.status_label.setText("Done: the matte was added as a new layer mask."
                                  + (f" {note}" if note else "")
                                  + (f"\nWarning: {warning}" if warning else ""))
        panel.maskAdded.emit(alpha)
        panel.output.start_cutout()
    except Exception as exc:  # noqa: BLE001 - a host bug must not leave the panel busy
        if not isinstance(exc, HostError):
            traceback.print_exc()
        panel.show_error(describe_error(exc) + "\nThe refined matte is kept: use "
                        "\"Save matte…\" to save it.")
        panel.save_matte_button.show()
        outcome = "failed"
    finally:
        panel._end_job(outcome)


def rerender(panel: Any) -> bool:
    """Apply changed edge controls to the last matte: no engine job, the mask is
    replaced (one undo step).  Returns False when there is nothing to re-render."""
    state = panel.state
    if state.raw_alpha is None or state.is_busy() or not panel.output.ready():
        return False
    if target_id(panel) != state.raw_target:
        panel.forget_result()
        return False
    try:
        alpha = panel.output.edged(state.raw_alpha)
        state.last_alpha = alpha
        panel.canvas.set_alpha(alpha)
        note = panel.adapter.add_layer_mask(alpha, MASK_NAME)
        panel.status_label.setText("Edges updated (no new refine)." + (f" {note}" if note else ""))
        panel.maskAdded.emit(alpha)
    except Exception as exc:  # noqa: BLE001 - shown, never raised into the host
        traceback.print_exc()
        panel.show_error(f"Could not update the mask: {exc}")
        return False
    panel.output.start_cutout()
    return True


def save_matte(panel: Any, path: str, bits: int = 16) -> None:
    """Write the last computed matte to ``path`` (PNG/TIFF, atomically)."""
    from .editor.io import save_alpha  # Qt + stdlib only
    if panel.state.last_alpha is None:
        raise ValueError("there is no computed matte to save")
    save_alpha(path, panel.state.last_alpha, bits)


def ask_save_matte(panel: Any) -> None:
    """"Save matte…": ask for a file and write the kept matte there."""
    path, _ = QtWidgets.QFileDialog.getSaveFileName(
        panel, "Save matte", "matte.png", "PNG (*.png);;TIFF (*.tif *.tiff)")
    if not path:
        return
    try:
        save_matte(panel, path)
    except (OSError, ValueError) as exc:
        panel.show_error(f"Could not save the matte: {exc}")
        panel.save_matte_button.show()
        return
    panel.status_label.setText(f"Saved the matte to {path}.")
