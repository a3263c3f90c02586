"""diffmatte-editor: the standalone mask editor hosting the Refine Matte panel.

Runs in the engine venv.  The canvas sits in the centre, the panel is docked on
the right, layers on the left.  Refine jobs talk to the local engine service
(started on first use if none is running) from a worker thread.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, List, Optional

from .. import __version__, imaging
from ..canvas import MatteCanvas, Stroke
from ..panel import RefinePanel
from ..qt import QtCore, QtGui, QtWidgets, QUndoCommand, QUndoStack, qt_exec
from . import io as edio
from .adapter import EditorAdapter
from .document import Document
from .engine import ENGINE_IDLE_MINUTES, StartedEngine, engine_client_factory  # noqa: F401 (re-exported)
from .finish import LocalFinisher
from .menus import EDITOR_SHORTCUTS, build_menus, shortcuts_text  # noqa: F401 (EDITOR_SHORTCUTS: re-exported)
from .sam_setup import EditorSamSetup

Qt = QtCore.Qt
ORG, APP = "Refine Matte", "diffmatte-editor"
SETTINGS_FILE = "editor.ini"   # in the config directory (REFINE_MATTE_CONFIG_DIR overrides it)


def default_settings() -> "QtCore.QSettings":
    """The editor's settings file, ``editor.ini`` in Refine Matte's config directory."""
    from ..client import config_dir

    return QtCore.QSettings(os.path.join(config_dir(), SETTINGS_FILE), QtCore.QSettings.Format.IniFormat)


class StrokeCommand(QUndoCommand):
    """A scribble stroke already on the canvas; undo removes it, redo puts it back."""

    def __init__(self, canvas: MatteCanvas, stroke: Stroke) -> None:
        super().__init__(f"{stroke.kind} scribble")
        self.canvas, self.stroke, self._first = canvas, stroke, True

    def redo(self) -> None:
        if self._first:  # the canvas added it while the artist painted
            self._first = False
            return
        self.canvas.add_stroke(self.stroke)

    def undo(self) -> None:
        self.canvas.remove_stroke(self.stroke)


class EditorWindow(QtWidgets.QMainWindow):
    """Main window: canvas, panel dock, layers dock, menus, settings."""

    def __init__(self, *, client: Any = None,
                 client_factory: Optional[Callable[[], Any]] = None,
                 settings: Optional["QtCore.QSettings"] = None) -> None:
        super().__init__()
        self.setWindowTitle("Refine Matte editor")
        self.settings = settings if settings is not None else default_settings()
        self.undo_stack = QUndoStack(self)
        self.adapter = EditorAdapter(None, self.undo_stack, on_change=self._on_doc_changed)
        self.canvas = MatteCanvas()
        self.setCentralWidget(self.canvas)
        self.finisher = LocalFinisher()
        self.started_engine = StartedEngine(client_factory or engine_client_factory, self)
        self.panel = RefinePanel(self.adapter, client=client, client_factory=self.started_engine.make_client,
                                 canvas=self.canvas, finisher=self.finisher,
                                 sam_setup=EditorSamSetup())
        # An engine this editor started is stopped when unused for a while (and on close).
        self.started_engine.idle.timeout.connect(lambda: self.stop_started_engine("idle"))
        self.panel.jobFinished.connect(lambda _o: self.started_engine.idle.start())
        # The editor owns the whole window, so the single-key shortcuts work anywhere in it.
        self.panel.install_shortcuts(self, Qt.ShortcutContext.WindowShortcut)
        self.canvas.strokeAdded.connect(self._on_stroke)
        self.canvas.zoomChanged.connect(lambda _z: self._update_status())

        self.panel_dock = QtWidgets.QDockWidget("Refine Matte", self)
        self.panel_dock.setObjectName("RefineMatteDock")
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.panel)
        self.panel_dock.setWidget(scroll)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.panel_dock)

        self.layers_dock = QtWidgets.QDockWidget("Layers", self)
        self.layers_dock.setObjectName("LayersDock")
        self.layer_list = QtWidgets.QListWidget()
        self.layer_list.currentRowChanged.connect(self._on_layer_row)
        self.layers_dock.setWidget(self.layer_list)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.layers_dock)
        self.resizeDocks([self.layers_dock, self.panel_dock], [170, 350],
                         Qt.Orientation.Horizontal)

        self.status = QtWidgets.QLabel()
        self.statusBar().addPermanentWidget(self.status)
        self._build_menus()
        self._restore_settings()
        self._update_status()

    # ============================================================ menus
    def _build_menus(self) -> None:
        build_menus(self)

    # ========================================================= document
    @property
    def document(self) -> Optional[Document]:
        return self.adapter.document

    def open_path(self, path: str) -> Document:
        """Open ``path`` (raises ValueError with the reason if it cannot)."""
        doc = edio.load_document(path)
        self.panel.cancel()
        self.adapter.document = doc
        self.undo_stack.clear()
        self.canvas.set_image(doc.active_layer().image)
        self.canvas.set_alpha(self.adapter.layer_mask())
        self._outlined = None
        self.canvas.set_selection(None)
        self.panel.forget_result()
        self.panel.reset_status()
        self._fill_layers()
        self.setWindowTitle(f"{os.path.basename(path)} – Refine Matte editor")
        self.settings.setValue("last_dir", os.path.dirname(os.path.abspath(path)))
        self.panel.clear_error()
        self._update_status()
        return doc

    def open_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open image", str(self.settings.value("last_dir", "") or ""), edio.OPEN_FILTER)
        if path:
            self._guarded(lambda: self.open_path(path), "Cannot open file")

    def _guarded(self, fn: Callable[[], Any], title: str) -> bool:
        try:
            fn()
            return True
        except (ValueError, OSError) as exc:
            QtWidgets.QMessageBox.warning(self, title, str(exc))
            return False

    def _fill_layers(self) -> None:
        doc = self.document
        self.layer_list.blockSignals(True)
        self.layer_list.clear()
        if doc is not None:
            for layer in reversed(doc.layers):  # top layer first, like every editor
                extra = f"  [{len(layer.masks)} mask]" if layer.masks else ""
                bits = "  16-bit" if layer.bits == 16 else ""
                self.layer_list.addItem(f"{layer.name}{bits}{extra}")
            self.layer_list.setCurrentRow(len(doc.layers) - 1 - doc.active)
        self.layer_list.blockSignals(False)

    def _on_layer_row(self, row: int) -> None:
        doc = self.document
        if doc is None or row < 0:
            return
        doc.active = len(doc.layers) - 1 - row
        self.panel.forget_result()
        self.panel.reset_status()
        self.panel.refresh()
        self._update_status()

    def _on_doc_changed(self) -> None:
        self.canvas.set_alpha(self.adapter.layer_mask())
        self._fill_layers()

    def _on_stroke(self, stroke: Stroke) -> None:
        self.undo_stack.push(StrokeCommand(self.canvas, stroke))

    def _update_status(self) -> None:
        doc = self.document
        if doc is None:
            self.status.setText("No image")
            return
        layer = doc.active_layer()
        sel = "  selection" if doc.selection is not None else ""
        if doc.selection is not getattr(self, "_outlined", None):  # traced once per selection
            self._outlined = doc.selection
            self.canvas.set_selection(doc.selection)
        self.status.setText(f"{doc.width}×{doc.height}  {layer.bits}-bit  "
                            f"zoom {self.canvas.zoom() * 100:.0f}%{sel}")

    # ======================================================== selection
    def load_selection(self, path: str) -> None:
        doc = self._need_doc()
        reader = QtGui.QImageReader(path)
        img = reader.read()
        if img.isNull():
            raise ValueError(f"cannot read {path}: {reader.errorString()}")
        if img.size() != doc.size:
            raise ValueError(f"the selection image is {img.width()}×{img.height()} but the "
                             f"document is {doc.width}×{doc.height}")
        doc.selection = imaging.to_grey8(img)
        self._update_status()

    def load_selection_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Load selection", str(self.settings.value("last_dir", "") or ""),
            "Images (*.png *.jpg *.jpeg *.tif *.tiff)")
        if path:
            self._guarded(lambda: self.load_selection(path), "Cannot load selection")

    def selection_from_transparency(self) -> None:
        doc = self.document
        if doc is None:
            return
        a8 = doc.active_layer().image.convertToFormat(QtGui.QImage.Format.Format_Alpha8)
        grey = QtGui.QImage(imaging.image_bytes(a8), a8.width(), a8.height(),
                            a8.bytesPerLine(), QtGui.QImage.Format.Format_Grayscale8).copy()
        doc.selection = grey
        self._update_status()

    def selection_from_mask(self) -> None:
        doc = self.document
        mask = self.adapter.layer_mask() if doc is not None else None
        if doc is not None and mask is not None:
            doc.selection = imaging.to_grey8(mask)
            self._update_status()

    def clear_selection(self) -> None:
        if self.document is not None:
            self.document.selection = None
            self._update_status()

    def _need_doc(self) -> Document:
        if self.document is None:
            raise ValueError("open an image first")
        return self.document

    # ============================================================= save
    def _need_alpha(self) -> "QtGui.QImage":
        alpha = self.adapter.layer_mask() if self.document is not None else None
        if alpha is None:
            raise ValueError("no matte yet: run Refine Matte first")
        return alpha

    def save_alpha(self, path: str, bits: int = 16) -> None:
        edio.save_alpha(path, self._need_alpha(), bits=bits)

    def cutout_arrays(self):
        """(alpha, RGBA array, params) of the active layer's cut-out, through diffmatte.finish.cutout.

        The matte the engine returned plus the edge controls when the layer still shows
        that result; otherwise the layer's current mask as it is.
        """
        layer = self._need_doc().active_layer()
        mask = self._need_alpha()
        params = self.panel.output_params()
        panel = self.panel
        if panel.raw_alpha is not None and panel.last_alpha is not None and mask == panel.last_alpha:
            raw, edges = panel.raw_alpha, params["edges"]
        else:
            raw, edges = mask, {}
            params["edges"] = {}
        params["premultiplied"] = self.premultiplied_action.isChecked()
        alpha, rgba = self.finisher.finish_arrays(layer.image, raw, edges, params["decontaminate"],
                                                  premultiplied=params["premultiplied"])
        return alpha, rgba, params

    def save_cutout(self, path: str) -> None:
        """The RGBA cut-out, exactly as ``diffmatte refine --rgba`` writes it (16-bit for a
        16-bit layer, colours decontaminated, ICC profile and parameters in the file)."""
        from diffmatte.io.cutout_files import write_cutout

        _, rgba, params = self.cutout_arrays()
        icc = bytes(self._need_doc().active_layer().image.colorSpace().iccProfile()) or None
        write_cutout(path, rgba, icc, params)

    def save_layered(self, path: str) -> None:
        edio.save_layered(path, self._need_doc())

    def _save_dialog(self, kind: str) -> None:
        doc = self.document
        base = os.path.splitext(os.path.basename(doc.path or "untitled"))[0] if doc else "untitled"
        folder = str(self.settings.value("last_save_dir", "") or
                     self.settings.value("last_dir", "") or "")
        choices = {
            "alpha": ("Save alpha", f"{base}_alpha.png", "PNG 16-bit (*.png);;TIFF 16-bit (*.tif *.tiff)",
                      self.save_alpha),
            "cutout": ("Save cut-out", f"{base}_cutout.png", "PNG (*.png);;TIFF (*.tif *.tiff)",
                       self.save_cutout),
            "layered": ("Save with layer mask", f"{base}_masked.ora",
                        "OpenRaster (*.ora);;Photoshop (*.psd);;Layered TIFF (*.tif *.tiff)",
                        self.save_layered),
        }
        title, name, filt, fn = choices[kind]
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, title, os.path.join(folder, name), filt)
        if path and self._guarded(lambda: fn(path), title):
            self.settings.setValue("last_save_dir", os.path.dirname(os.path.abspath(path)))
            self.confirm_saved(kind, path)

    def confirm_saved(self, kind: str, path: str) -> None:
        """Say where a save went: in the panel's status line and the status bar."""
        what = {"alpha": "the alpha matte", "cutout": "the cut-out",
                "layered": "the image with its layer mask"}.get(kind, kind)
        text = f"Saved {what} to {path}"
        self.panel.status_label.setText(text + ".")
        self.statusBar().showMessage(text, 15000)

    # ============================================================= help
    def shortcuts_text(self) -> str:
        return shortcuts_text()

    def show_shortcuts(self) -> None:
        box = QtWidgets.QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(self.shortcuts_text())
        box.show()

    def show_about(self) -> None:
        QtWidgets.QMessageBox.about(self, "About", f"Refine Matte editor {__version__}\n"
                                    "Diffusion-based matting (DiffMatte) on a local engine.")

    # ========================================================= settings
    def _restore_settings(self) -> None:
        geo = self.settings.value("geometry", None)
        if isinstance(geo, (QtCore.QByteArray, bytes)):
            self.restoreGeometry(geo)
        else:
            self.resize(1200, 800)
        state = self.settings.value("window_state", None)
        if isinstance(state, (QtCore.QByteArray, bytes)):
            self.restoreState(state)
        self.panel.restore_settings(self.settings)
        self.premultiplied_action.setChecked(str(self.settings.value("premultiplied", "false")).lower()
                                             in ("true", "1"))

    def save_settings(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.panel.save_settings(self.settings)
        self.settings.setValue("premultiplied", self.premultiplied_action.isChecked())
        self.settings.sync()

    def stop_started_engine(self, reason: str) -> bool:
        """Stop the engine service this editor started (never one it merely found or was
        given), unless it is busy; say so in the status bar and on stderr.  Returns True if
        stopped."""
        msg = self.started_engine.stop(reason, self.panel.state.client, busy=self.panel.job is not None)
        if msg is None:
            return False
        self.panel.state.drop_client()
        self.statusBar().showMessage(msg, 15000)
        sys.stderr.write(msg + "\n")
        return True

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.save_settings()
        if self.panel.job is not None:
            self.panel.cancel()
            self.panel.job.wait(5.0)
        self.stop_started_engine("closed")
        super().closeEvent(event)


def main(argv: Optional[List[str]] = None) -> int:
    """Console entry point: ``diffmatte-editor [IMAGE]``."""
    parser = argparse.ArgumentParser(prog="diffmatte-editor",
                                     description="Refine Matte standalone mask editor")
    parser.add_argument("image", nargs="?", help="image to open (PNG, JPEG, TIFF, ORA, PSD)")
    parser.add_argument("--weights", help="checkpoint for the engine service, if the editor "
                        "has to start one (default: the service's default model)")
    parser.add_argument("--device", help="device for a service the editor starts (auto, cpu, cuda)")
    parser.add_argument("--version", action="version", version=__version__)
    args = parser.parse_args(argv)
    serve_args: List[str] = []
    if args.weights:
        serve_args += ["--weights", os.path.abspath(args.weights)]
    if args.device:
        serve_args += ["--device", args.device]
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    win = EditorWindow(client_factory=lambda: engine_client_factory(serve_args))
    win.show()
    if args.image:
        win._guarded(lambda: win.open_path(args.image), "Cannot open file")
    return qt_exec(app)


if __name__ == "__main__":
    sys.exit(main())
