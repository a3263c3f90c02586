"""RefinePanel: the dockable "Refine Matte" widget shared by every host.

It reads pixels through a :class:`~refine_matte.adapter.HostAdapter`, builds a
trimap (SAM prompts, host selection / layer mask with a band, or scribbles),
runs the engine through an injected client on a worker thread, previews the
x0 estimate per step, and hands the final alpha back to the host as a new
layer mask.  Only Qt + stdlib are used so it runs inside a host's Python.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, List, Optional, Tuple

from . import imaging
from .adapter import HostAdapter, HostError, NoImageError
from .canvas import MatteCanvas
from .engine_api import EngineApi
from .finishing import Finisher
from .hint import HintLabel
from .panel_output import OutputMixin, SamSetup
from .panel_progress import JobProgress
from .panel_spec import build_spec
from .panel_state import (BAND_RANGE, EDGE_IDS, EDGES, SAMPLES_RANGE, SOURCE_IDS, SOURCES, STEPS_RANGE,
                          PanelState, as_int, band_text)
from .qt import QShortcut, QtCore, QtGui, QtWidgets, Signal
from .worker import JobSpec, RefineJob, describe_error

Qt = QtCore.Qt

LIVE_BAND_DELAY_MS = 250  # strokes in quick succession give one preview
MASK_NAME = "Refine Matte"  # one mask of this name per layer: a new refine replaces it


def _default_client_factory() -> Any:
    """Find the running engine service, or start one from the recorded engine environment.

    Without a known engine interpreter (``REFINE_MATTE_PYTHON`` or the ``engine.json``
    that ``installer/krita.py`` writes) it only connects: a host's embedded Python
    cannot run the engine itself.
    """
    from .client import EngineClient, engine_python  # stdlib-only; lazy so tests can inject
    python = engine_python()
    if python:
        return EngineClient.ensure_running(python=python)
    return EngineClient.discover()


def shortcut_help() -> List[Tuple[str, str]]:
    """(keys, action) rows for the help dialog, in display order."""
    rows = [(" / ".join(keys), f"View: {label}") for _, label, keys in imaging.VIEW_MODES]
    rows += [
        ("F", "Foreground scribble brush"),
        ("B", "Background scribble brush"),
        ("U", "Unknown scribble brush"),
        ("E", "Scribble eraser"),
        ("P", "SAM prompts: click = fg point, right/Alt/Shift-click = bg point, drag = box"),
        ("H / Space+drag / middle-drag", "Pan"),
        ("Drag the divider", "Move the before/after split (split view)"),
        ("Mouse wheel", "Zoom at cursor"),
        ("[ / ]", "Smaller / larger brush"),
        ("Ctrl+Return / R", "Refine Matte"),
        ("Esc", "Cancel a running refine"),
        ("Backspace", "Clear scribbles and SAM prompts"),
        ("X", "Show / hide scribbles and SAM prompts"),
    ]
    return rows


class RefinePanel(QtWidgets.QWidget, OutputMixin):
    """The Refine Matte dock contents: the widgets that render a :class:`PanelState`
    (``self.state``) and forward the artist's actions to it.

    ``client`` (an object with EngineClient's methods) or ``client_factory`` (a
    callable returning one, called on the worker thread) may be injected; by
    default the panel discovers a running service.  ``canvas`` lets a host show
    the canvas elsewhere (the standalone editor puts it in the centre); without
    one the panel embeds its own.
    """

    MASK_NAME = MASK_NAME
    jobStarted = Signal()
    jobFinished = Signal(str)       # "done" | "cancelled" | "failed"
    maskAdded = Signal(object)      # the alpha QImage handed to the host
    errorShown = Signal(str)
    warningShown = Signal(str)   # advice from the engine about the trimap

    def __init__(self, adapter: Optional[HostAdapter] = None, *, client: Optional[EngineApi] = None,
                 client_factory: Optional[Callable[[], EngineApi]] = None,
                 canvas: Optional[MatteCanvas] = None,
                 finisher: Optional[Finisher] = None, sam_setup: Optional[SamSetup] = None,
                 parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("RefineMattePanel")
        self.adapter = adapter
        self.state = PanelState(client=client, client_factory=client_factory or _default_client_factory,
                                parent=self)
        self._shortcuts: List[Any] = []
        self._own_canvas = canvas is None
        self.canvas = canvas or MatteCanvas(self)
        self._init_output(finisher, sam_setup)
        self._build_ui()
        if adapter is not None:  # the host's own word for its selection (Krita: "Selection")
            self.source_combo.setItemText(self.source_combo.findData("selection"),
                                          getattr(adapter, "selection_name", "Host selection"))
        self._connect()
        self._connect_output()
        self.install_shortcuts(self)
        # Out of the box: scribbles need no download (SAM offers its own when picked).
        self.set_source("scribbles")
        self._render_source()

    # ====================================================== the state's views
    @property
    def job(self) -> Optional[RefineJob]:
        """The running job (None when idle)."""
        return self.state.job

    @property
    def last_alpha(self) -> Optional["QtGui.QImage"]:
        """The last matte the engine returned (kept when the host could not take it)."""
        return self.state.last_alpha

    @property
    def raw_alpha(self) -> Any:
        """The engine's own matte of the last refine (before the edge controls)."""
        return self.state.raw_alpha

    @property
    def raw_image(self) -> Any:
        return self.state.raw_image

    @property
    def prior_only(self) -> Optional[bool]:
        """The engine's matte is its prior; None until an engine said."""
        return self.state.prior_only

    # ================================================================= UI
    def _build_ui(self) -> None:
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        if self._own_canvas:
            lay.addWidget(self.canvas, 1)

        self._build_messages()
        lay.addWidget(self._build_source_box())
        lay.addLayout(self._build_options())
        lay.addWidget(self._build_output_box())
        self._build_run_controls(lay)
        self.job_progress = JobProgress(self.progress, self.status_label, self.canvas, self.state)
        if not self._own_canvas:
            lay.addStretch(1)
        self._sync_view_buttons(self.canvas.view_mode())
        self._sync_tool_buttons(self.canvas.tool())

    def _build_messages(self) -> None:
        """The error line and the "Save matte" button (laid out by _build_run_controls)."""
        self.error_label = QtWidgets.QLabel()
        self.error_label.setObjectName("errorLabel")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(
            "QLabel#errorLabel { background: #5a1d1d; color: #ffd7d7; border: 1px solid #b33;"
            " border-radius: 3px; padding: 4px; }")
        self.error_label.hide()
        self.save_matte_button = QtWidgets.QPushButton("Save matte…")
        self.save_matte_button.setToolTip("Save the refined matte as a 16-bit PNG or TIFF")
        self.save_matte_button.hide()  # shown when a computed matte could not be applied
        # (both are laid out below the progress bar: showing them never moves the controls)

    def _build_source_box(self) -> "QtWidgets.QGroupBox":
        """The "Trimap source" group: source, edge, hint, tools, brush, band, extras."""
        src_box = QtWidgets.QGroupBox("Trimap source")
        form = QtWidgets.QFormLayout(src_box)
        self.source_combo = QtWidgets.QComboBox()
        for sid, label in SOURCES:
            self.source_combo.addItem(label, sid)
        form.addRow(self.source_combo)
        self.edge_combo = QtWidgets.QComboBox()
        for eid, label in EDGES:
            self.edge_combo.addItem(label, eid)
        self.edge_combo.setToolTip("Rough: the selection is drawn around the subject (lasso, rectangle); "
                                   "the subject's edge, hair and holes are found inside it.\n"
                                   "Exact: the outline already follows the subject (a mask you refined).")
        form.addRow("Edge", self.edge_combo)

        self.hint_label = HintLabel()  # legible on dark themes (palette roles, no fixed grey)
        form.addRow(self.hint_label)

        self._build_tool_rows(form)
        self._build_brush_and_band(form)
        self._build_source_extras(form)
        return src_box

    def _build_tool_rows(self, form: "QtWidgets.QFormLayout") -> None:
        """The painting / SAM tool buttons, then Clear and Show."""
        tools = QtWidgets.QHBoxLayout()
        self.tool_buttons = {}
        # Explicit groups: auto-exclusive buttons that are reparented by layouts
        # later do not reliably see each other as siblings.
        self._tool_group = QtWidgets.QButtonGroup(self)
        for tool, text, key in (("fg", "Fg", "F"), ("bg", "Bg", "B"),
                                ("unknown", "Unknown", "U"), ("erase", "Erase", "E"),
                                ("sam", "SAM", "P")):
            btn = QtWidgets.QToolButton()
            btn.setText(text)
            btn.setCheckable(True)
            btn.setToolTip(f"{text} tool ({key})")
            self._tool_group.addButton(btn)
            btn.clicked.connect(lambda _=False, t=tool: self.canvas.set_tool(t))
            tools.addWidget(btn)
            self.tool_buttons[tool] = btn
        self.show_input_check = QtWidgets.QCheckBox("Show")
        self.show_input_check.setChecked(True)
        self.show_input_check.setToolTip("Show scribbles and SAM prompts on the canvas (X)")
        self.clear_button = QtWidgets.QToolButton()
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Clear scribbles and SAM prompts (Backspace)")
        tools.addStretch(1)
        form.addRow(tools)
        input_row = QtWidgets.QHBoxLayout()
        input_row.addWidget(self.clear_button)
        input_row.addWidget(self.show_input_check)
        input_row.addStretch(1)
        form.addRow(input_row)

    def _build_brush_and_band(self, form: "QtWidgets.QFormLayout") -> None:
        self.brush_spin = QtWidgets.QSpinBox()
        self.brush_spin.setRange(1, 500)
        self.brush_spin.setSuffix(" px")
        self.brush_spin.setValue(self.canvas.brush_size())
        self.brush_spin.setToolTip("Brush diameter ([ and ])")
        form.addRow("Brush", self.brush_spin)

        band_row = QtWidgets.QHBoxLayout()
        self.band_slider = QtWidgets.QSlider(Qt.Orientation.Horizontal)
        self.band_slider.setRange(*BAND_RANGE)
        self.band_slider.setValue(self.state.band())
        self.band_slider.setToolTip("Radius of the unknown band on each side of the mask edge (the band is "
                                    "twice as wide, and widens further on hair); 0 = automatic. "
                                    "Preview band shows the band the engine gets.")
        self.band_label = QtWidgets.QLabel()
        self.band_label.setMinimumWidth(44)
        band_row.addWidget(self.band_slider, 1)
        band_row.addWidget(self.band_label)
        form.addRow("Band", band_row)

    def _build_options(self) -> "QtWidgets.QFormLayout":
        """Diffusion steps, samples and the view-mode buttons."""
        opt = QtWidgets.QFormLayout()
        self.steps_spin = QtWidgets.QSpinBox()
        self.steps_spin.setRange(*STEPS_RANGE)
        self.steps_spin.setValue(self.state.steps())
        self.steps_spin.setToolTip("Diffusion (DDIM) steps: more is slower and can be cleaner")
        opt.addRow("Diffusion steps", self.steps_spin)
        self.samples_spin = QtWidgets.QSpinBox()
        self.samples_spin.setRange(*SAMPLES_RANGE)
        self.samples_spin.setValue(self.state.samples())
        self.samples_spin.setToolTip("Average this many diffusion runs: slower, but the matte depends "
                                     "less on chance (3 lowers the error by about 7 %)")
        opt.addRow("Samples", self.samples_spin)
        self._options_form = opt

        views = QtWidgets.QHBoxLayout()
        views.setSpacing(2)
        self.view_buttons = {}
        self._view_group = QtWidgets.QButtonGroup(self)
        for mode, label, keys in imaging.VIEW_MODES:
            btn = QtWidgets.QToolButton()
            btn.setText(keys[0])
            btn.setCheckable(True)
            btn.setToolTip(f"{label} ({' or '.join(keys)})")
            self._view_group.addButton(btn)
            btn.clicked.connect(lambda _=False, m=mode: self.canvas.set_view_mode(m))
            views.addWidget(btn)
            self.view_buttons[mode] = btn
        views.addStretch(1)
        opt.addRow("View", views)
        self.view_label = QtWidgets.QLabel()
        self.view_label.setWordWrap(True)  # "Alpha: no matte yet, showing the photo"
        opt.addRow("", self.view_label)
        return opt

    def _build_run_controls(self, lay: "QtWidgets.QVBoxLayout") -> None:
        """Refine / Cancel, the progress bar and status, then the error line and Save matte."""
        self.refine_button = QtWidgets.QPushButton("Refine Matte")
        self.refine_button.setObjectName("refineButton")
        self.refine_button.setToolTip("Compute the trimap and refine the matte (Ctrl+Return)")
        self.refine_button.setMinimumHeight(32)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running refine (Esc)")
        self.cancel_button.setEnabled(False)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.refine_button, 1)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)

        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")  # "step %v / %m" while a job runs
        self.status_label = QtWidgets.QLabel("Ready.")
        self.status_label.setWordWrap(True)
        lay.addWidget(self.progress)
        lay.addWidget(self.status_label)
        lay.addWidget(self.error_label)
        lay.addWidget(self.save_matte_button)

    def _connect(self) -> None:
        # the artist's actions go to the state; the state's changes are rendered
        self.source_combo.currentIndexChanged.connect(
            lambda i: self.state.set_source(SOURCE_IDS[max(i, 0)]))
        self.edge_combo.currentIndexChanged.connect(lambda i: self.state.set_edge(EDGE_IDS[max(i, 0)]))
        self.steps_spin.valueChanged.connect(self.state.set_steps)
        self.samples_spin.valueChanged.connect(self.state.set_samples)
        self.band_slider.valueChanged.connect(self.state.set_band)
        self.state.sourceChanged.connect(self._render_source)
        self.state.edgeChanged.connect(self._render_edge)
        self.state.stepsChanged.connect(self.steps_spin.setValue)
        self.state.samplesChanged.connect(self.samples_spin.setValue)
        self.state.bandChanged.connect(self.band_slider.setValue)
        self.canvas.strokeAdded.connect(self._on_stroke_for_band)
        self.clear_button.clicked.connect(self.canvas.clear_input)
        self.show_input_check.toggled.connect(self.canvas.set_input_visible)
        self.brush_spin.valueChanged.connect(self.canvas.set_brush_size)
        self.canvas.brushSizeChanged.connect(self.brush_spin.setValue)
        self.canvas.viewModeChanged.connect(self._sync_view_buttons)
        self.canvas.viewShownChanged.connect(lambda _t: self._sync_view_buttons(self.canvas.view_mode()))
        self.canvas.toolChanged.connect(self._sync_tool_buttons)
        self.state.bandChanged.connect(self._sync_band_label)
        self.refine_button.clicked.connect(self.refine)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_matte_button.clicked.connect(self._ask_save_matte)
        self._sync_band_label(self.state.band())

    def install_shortcuts(self, scope: QtWidgets.QWidget,
                          context: Any = Qt.ShortcutContext.WidgetWithChildrenShortcut) -> None:
        """(Re)create the panel's single-key shortcuts, active within ``scope``.

        A plugin keeps them on the panel so the host's own keys are not stolen;
        the standalone editor moves them to its main window.
        """
        for sc in self._shortcuts:
            sc.setEnabled(False)
            sc.setParent(None)
            sc.deleteLater()
        self._shortcuts = []

        def bind(key: str, fn: Callable[[], Any]) -> None:
            sc = QShortcut(QtGui.QKeySequence(key), scope)
            sc.setContext(context)
            sc.activated.connect(fn)
            self._shortcuts.append(sc)

        for mode, _, keys in imaging.VIEW_MODES:
            for key in keys:
                bind(key, lambda m=mode: self.canvas.set_view_mode(m))
        bind("F", lambda: self.set_tool("fg"))
        bind("B", lambda: self.set_tool("bg"))
        bind("U", lambda: self.set_tool("unknown"))
        bind("E", lambda: self.set_tool("erase"))
        bind("P", lambda: self.set_tool("sam"))
        bind("H", lambda: self.canvas.set_tool("pan"))
        bind("[", lambda: self.canvas.grow_brush(1 / 1.2))
        bind("]", lambda: self.canvas.grow_brush(1.2))
        bind("Ctrl+Return", self.refine)
        bind("Ctrl+Enter", self.refine)
        bind("R", self.refine)
        bind("Esc", self.cancel)
        bind("Backspace", self.canvas.clear_input)
        bind("X", lambda: self.show_input_check.toggle())

    # ========================================================= state sync
    def _sync_view_buttons(self, mode: str) -> None:
        btn = self.view_buttons.get(mode)
        if btn is not None:
            btn.setChecked(True)
        label = self.canvas.view_label()  # says when the photo stands in for a missing matte
        self.view_label.setText(label)
        self.canvas.hud_text = label

    def _sync_tool_buttons(self, tool: str) -> None:
        btn = self.tool_buttons.get(tool)
        if btn is not None:
            btn.setChecked(True)

    def _sync_band_label(self, value: int) -> None:
        self.band_label.setText(band_text(value))

    def source(self) -> str:
        return self.state.source()

    def set_source(self, source: str) -> None:
        self.state.set_source(source)

    def set_tool(self, tool: str) -> None:
        """Pick a canvas tool; P (SAM prompts) also picks the SAM source.  The brushes
        keep the source: over a selection, mask or SAM they are the refine brush."""
        self.canvas.set_tool(tool)
        if tool == "sam" and self.source() != "sam":
            self.set_source("sam")

    def edge(self) -> str:
        """How the selection or mask is read: "rough", "exact" or "auto"."""
        return self.state.edge()

    def set_edge(self, edge: str) -> None:
        self.state.set_edge(edge)

    def _render_edge(self, edge: str) -> None:
        self.edge_combo.blockSignals(True)
        self.edge_combo.setCurrentIndex(EDGE_IDS.index(edge))
        self.edge_combo.blockSignals(False)

    def _render_source(self, *_: Any) -> None:
        """Show the state's source: its combo entry, edge mode, hint, tools and extras."""
        src = self.source()
        self.source_combo.blockSignals(True)
        self.source_combo.setCurrentIndex(SOURCE_IDS.index(src))
        self.source_combo.blockSignals(False)
        self._render_edge(self.state.edge())
        self.edge_combo.setEnabled(self.state.has_edge_choice())
        self.hint_label.setText(self.state.hint())
        scribbling = src == "scribbles"
        self.tool_buttons["sam"].setEnabled(src == "sam")
        if src == "sam" and self.canvas.tool() != "sam":
            self.canvas.set_tool("sam")
        elif scribbling and self.canvas.tool() not in ("fg", "bg", "unknown", "erase"):
            self.canvas.set_tool("fg")
        self.preview_band_button.setEnabled(src in ("selection", "mask", "sam", "scribbles"))
        self.state.live_band = False  # a new source starts without the live preview
        self._sync_sam_setup()
        self.show_selection_outline()

    # ============================================================ errors
    def show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()
        first = (message.strip().splitlines() or [""])[0]
        self.status_label.setText("Error: " + (first if len(first) <= 140 else first[:139] + "…"))
        self.errorShown.emit(message)

    def clear_error(self) -> None:
        self.error_label.clear()
        self.error_label.hide()
        self.save_matte_button.hide()

    def save_matte(self, path: str, bits: int = 16) -> None:
        """Write the last computed matte to ``path`` (PNG/TIFF, atomically)."""
        from .editor.io import save_alpha  # Qt + stdlib only
        if self.state.last_alpha is None:
            raise ValueError("there is no computed matte to save")
        save_alpha(path, self.state.last_alpha, bits)

    def _ask_save_matte(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Save matte", "matte.png", "PNG (*.png);;TIFF (*.tif *.tiff)")
        if not path:
            return
        try:
            self.save_matte(path)
        except (OSError, ValueError) as exc:
            self.show_error(f"Could not save the matte: {exc}")
            self.save_matte_button.show()
            return
        self.status_label.setText(f"Saved the matte to {path}.")

    def error_text(self) -> str:
        return self.error_label.text() if self.error_label.isVisibleTo(self) else ""

    # ============================================================ host I/O
    def refresh(self) -> None:
        """Reload the active layer (and its mask) from the host into the canvas."""
        if self.adapter is None:
            self.canvas.set_image(None)
            return
        try:
            image = self.adapter.active_image()
        except HostError:
            self.canvas.set_image(None)
            return
        except Exception as exc:  # noqa: BLE001 - adapter bugs are shown, not raised into the host
            traceback.print_exc()
            self.canvas.set_image(None)
            self.show_error(describe_error(exc))
            return
        self.canvas.set_image(image, keep_input=True)
        try:
            mask = self.adapter.layer_mask()
        except Exception:  # noqa: BLE001 - a missing mask only means nothing to show
            mask = None
        self.canvas.set_alpha(mask)
        self._on_host_refreshed()

    def _build_spec(self) -> JobSpec:
        return build_spec(self.adapter, self.canvas, self.state, self.output_controls.seed())

    # ============================================================== jobs
    def is_busy(self) -> bool:
        return self.state.is_busy()

    def refine(self) -> bool:
        """Start a refine; returns False (with the reason shown) if it could not start."""
        if self.state.is_busy():
            return False
        self.clear_error()
        try:
            spec = self._build_spec()
        except Exception as exc:  # noqa: BLE001 - shown in the panel, never as a traceback
            self.show_error(self._describe(exc))
            return False
        # The live preview stays on: the next stroke shows the band again, so the trimap is
        # visible while painting between refines too (paint, band, refine, matte, paint...).
        self.state.band_pending = False
        return self._start_job(spec)

    @staticmethod
    def _describe(exc: BaseException) -> str:
        if not isinstance(exc, (HostError, ValueError)):
            traceback.print_exc()
        return describe_error(exc)

    def _start_job(self, spec: JobSpec, preview: bool = False) -> bool:
        """Run ``spec`` on a worker; ``preview`` jobs only compute the trimap (band preview)."""
        job = RefineJob(spec, self.state.get_client)
        sig = job.signals
        sig.stage.connect(self.status_label.setText)
        sig.trimapReady.connect(self.canvas.set_trimap)
        sig.progress.connect(self.job_progress.step)
        sig.work.connect(self.job_progress.work)
        sig.engineInfo.connect(self.set_engine_info)
        sig.refineStarted.connect(self.job_progress.refine_started)
        sig.warning.connect(self._on_warning)
        sig.finished.connect(self._on_preview_done if preview else self._on_finished)
        sig.failed.connect(self._on_failed)
        sig.cancelled.connect(self._on_cancelled)
        self.state.begin_job(job, spec, self._target_id())
        self.job_progress.reset(spec, preview)
        self._set_busy(True)
        self.jobStarted.emit()
        job.start()
        return True

    def set_engine_info(self, info: Any) -> None:
        """What the engine said about itself (its ``info()``): a prior-only model hides the
        controls that change nothing for it (Diffusion steps, Samples, Variation) and its
        progress reads "Solving the matte… 42 %"."""
        if not self.state.set_engine_info(info):
            return
        shown = not self.state.prior_only
        for field in (self.steps_spin, self.samples_spin):
            field.setVisible(shown)
            label = self._options_form.labelForField(field)
            if label is not None:
                label.setVisible(shown)
        self.output_controls.show_variation(shown)
        self.job_progress.engine_known()

    def cancel(self) -> None:
        """Ask the running job to stop at the next step boundary."""
        if self.job is not None:
            self.job.cancel()
            self.status_label.setText("Cancelling…")
            self.cancel_button.setEnabled(False)

    def _set_busy(self, busy: bool) -> None:
        self.refine_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.source_combo.setEnabled(not busy)
        self.steps_spin.setEnabled(not busy)
        self.samples_spin.setEnabled(not busy)

    def _end_job(self, outcome: str) -> None:
        self.state.end_job()
        self.canvas.set_progress_text("")
        self._set_busy(False)
        self.jobFinished.emit(outcome)
        if outcome == "done" and self.state.band_pending:
            self._schedule_band_preview()

    # --------------------------------------------------------- live band preview
    def _on_stroke_for_band(self, *_: Any) -> None:
        """While the band preview is shown, every stroke recomputes it (the trimap is
        visible before the refine, and follows the painting)."""
        if self.state.live_band:
            self._schedule_band_preview()

    def _schedule_band_preview(self) -> None:
        self.state.band_pending = True
        if self.job is None:
            QtCore.QTimer.singleShot(LIVE_BAND_DELAY_MS, self._run_pending_band_preview)

    def _run_pending_band_preview(self) -> None:
        if not self.state.band_pending or self.job is not None:
            return
        self.state.band_pending = False
        if self.source() == "scribbles" and not (self.canvas.has_scribbles("fg") and
                                                 self.canvas.has_scribbles("bg")):
            return  # the preview needs both kinds of stroke; wait for the next one
        self.preview_band()

    def _target_id(self) -> Any:
        try:
            return self.adapter.document_id() if self.adapter is not None else None
        except Exception:  # noqa: BLE001 - an id is only a safety check
            return None

    def _on_finished(self, alpha: Any) -> None:
        outcome = "done"
        self._remember_raw(alpha, self.state.spec_image)
        alpha = self.edged_alpha(alpha)  # edge controls; the raw matte is kept for re-renders
        self.state.last_alpha = alpha  # kept (and shown) even when the host cannot take it
        self.canvas.set_alpha(alpha)
        try:
            if self.adapter is None:
                raise NoImageError("No host document is connected to the panel.")
            if self._target_id() != self.state.job_target:
                raise HostError("The document or active layer changed while refining, so the "
                                "matte was not applied. Run Refine Matte again.")
            if imaging.count_above(alpha, EMPTY_MATTE_LEVEL) == 0:
                raise HostError("The refined matte is empty: as a mask it would hide the whole "
                                "layer, so no mask was added. Select (or mark as foreground) "
                                "the subject and refine again.")
            note = self.adapter.add_layer_mask(alpha, MASK_NAME)
            warning = self.state.job_warning
            self.status_label.setText("Done: the matte was added as a new layer mask."
                                      + (f" {note}" if note else "")
                                      + (f"\nWarning: {warning}" if warning else ""))
            self.maskAdded.emit(alpha)
            self._start_cutout()
        except Exception as exc:  # noqa: BLE001 - a host bug must not leave the panel busy
            if not isinstance(exc, HostError):
                traceback.print_exc()
            self.show_error(describe_error(exc) + "\nThe refined matte is kept: use "
                            "\"Save matte…\" to save it.")
            self.save_matte_button.show()
            outcome = "failed"
        finally:
            self._end_job(outcome)

    def _on_warning(self, message: str) -> None:
        """Advice from the engine about the input or the trimap; kept with the result (both
        when the trimap step and the refine each give one), never an error."""
        old = self.state.job_warning
        self.state.job_warning = f"{old}\n{message}" if old and message not in old else message
        self.warningShown.emit(message)

    def _on_failed(self, message: str) -> None:
        self.job_progress.stopped()
        self.show_error(message)
        self._end_job("failed")

    def _on_cancelled(self) -> None:
        self.job_progress.stopped()
        self.status_label.setText("Cancelled.")
        self._end_job("cancelled")

    # =========================================================== settings
    def save_settings(self, settings: "QtCore.QSettings") -> None:
        """Remember the artist's choices (under the 'panel' group)."""
        settings.beginGroup("panel")
        self.state.save_settings(settings)
        settings.setValue("brush", self.canvas.brush_size())
        settings.setValue("view", self.canvas.view_mode())
        self._save_output_settings(settings)
        settings.endGroup()

    def restore_settings(self, settings: "QtCore.QSettings") -> None:
        """Apply values written by save_settings; bad or missing values are ignored."""
        settings.beginGroup("panel")
        try:
            self.state.restore_edges_and_source(settings)
            self._render_source()
            self.state.restore_numbers(settings)
            brush = as_int(settings.value("brush", None))
            if brush is not None:
                self.canvas.set_brush_size(brush)
            view = settings.value("view", None)
            if view in [m for m, _, _ in imaging.VIEW_MODES]:
                self.canvas.set_view_mode(view)
            self._restore_output_settings(settings)
        finally:
            settings.endGroup()


#: a matte whose every pixel is at most this (of 255) is "empty": as a mask it hides the layer
EMPTY_MATTE_LEVEL = 8
