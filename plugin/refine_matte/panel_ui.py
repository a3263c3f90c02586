"""The RefinePanel's widgets, their wiring and its keys, kept out of panel.py.

``build_ui(panel)`` creates the dock's widgets as attributes of the panel (the names the
tests and hosts use: ``source_combo``, ``refine_button``, ...) in layout order (the order
in which they join the panel is its default tab order); ``connect(panel)`` wires them to the panel's
:class:`~refine_matte.panel_state.PanelState` and canvas; ``install_shortcuts`` binds the
single-key shortcuts that ``shortcut_help`` lists.  The functions take the panel and only
set or call its attributes, so :mod:`refine_matte.panel` keeps the behaviour.  Qt + stdlib.
"""

from __future__ import annotations

from typing import Any, Callable, List, Tuple

from . import imaging, panel_host
from .hint import HintLabel
from .panel_progress import JobProgress
from .panel_state import (BAND_RANGE, EDGE_IDS, EDGES, SAMPLES_RANGE, SOURCE_IDS, SOURCES, STEPS_RANGE,
                          band_text)
from .qt import QShortcut, QtCore, QtGui, QtWidgets

Qt = QtCore.Qt


def build_ui(panel: Any) -> None:
    """Create the panel's widgets in layout order: canvas, source box, options, output box,
    run controls."""
    lay = QtWidgets.QVBoxLayout(panel)
    lay.setContentsMargins(6, 6, 6, 6)
    if panel._own_canvas:
        lay.addWidget(panel.canvas, 1)

    _messages(panel)
    lay.addWidget(_source_box(panel))
    lay.addLayout(_options(panel))
    lay.addWidget(panel.output.build_box())
    _run_controls(panel, lay)
    panel.job_progress = JobProgress(panel.progress, panel.status_label, panel.canvas, panel.state)
    if not panel._own_canvas:
        lay.addStretch(1)
    sync_view_buttons(panel, panel.canvas.view_mode())
    sync_tool_buttons(panel, panel.canvas.tool())


def _messages(panel: Any) -> None:
    """The error line and the "Save matte" button (laid out by _run_controls)."""
    panel.error_label = QtWidgets.QLabel()
    panel.error_label.setObjectName("errorLabel")
    panel.error_label.setWordWrap(True)
    panel.error_label.setStyleSheet(
        "QLabel#errorLabel { background: #5a1d1d; color: #ffd7d7; border: 1px solid #b33;"
        " border-radius: 3px; padding: 4px; }")
    panel.error_label.hide()
    panel.save_matte_button = QtWidgets.QPushButton("Save matte…")
    panel.save_matte_button.setToolTip("Save the refined matte as a 16-bit PNG or TIFF")
    panel.save_matte_button.hide()  # shown when a computed matte could not be applied
    # (both are laid out below the progress bar: showing them never moves the controls)


def _source_box(panel: Any) -> "QtWidgets.QGroupBox":
    """The "Trimap source" group: source, edge, hint, tools, brush, band, extras."""
    src_box = QtWidgets.QGroupBox("Trimap source")
    form = QtWidgets.QFormLayout(src_box)
    panel.source_combo = QtWidgets.QComboBox()
    for sid, label in SOURCES:
        panel.source_combo.addItem(label, sid)
    form.addRow(panel.source_combo)
    panel.edge_combo = QtWidgets.QComboBox()
    for eid, label in EDGES:
        panel.edge_combo.addItem(label, eid)
    panel.edge_combo.setToolTip("Rough: the selection is drawn around the subject (lasso, rectangle); "
                                "the subject's edge, hair and holes are found inside it.\n"
                                "Exact: the outline already follows the subject (a mask you refined).")
    form.addRow("Edge", panel.edge_combo)

    panel.hint_label = HintLabel()  # legible on dark themes (palette roles, no fixed grey)
    form.addRow(panel.hint_label)

    _tool_rows(panel, form)
    _brush_and_band(panel, form)
    panel.preview_band_button = QtWidgets.QPushButton("Preview band")
    panel.preview_band_button.setToolTip("Compute the trimap the engine would get (the unknown band "
                                         "after automatic widening) and show it, without refining")
    form.addRow(panel.preview_band_button)
    panel.sam_row = panel.sam.build_row()  # shown while SAM's checkpoint is missing
    panel.sam_download_button = panel.sam.button
    form.addRow(panel.sam_row)
    return src_box


def _tool_rows(panel: Any, form: "QtWidgets.QFormLayout") -> None:
    """The painting / SAM tool buttons, then Clear and Show."""
    tools = QtWidgets.QHBoxLayout()
    panel.tool_buttons = {}
    # Explicit groups: auto-exclusive buttons that are reparented by layouts
    # later do not reliably see each other as siblings.
    panel._tool_group = QtWidgets.QButtonGroup(panel)
    for tool, text, key in (("fg", "Fg", "F"), ("bg", "Bg", "B"),
                            ("unknown", "Unknown", "U"), ("erase", "Erase", "E"),
                            ("sam", "SAM", "P")):
        btn = QtWidgets.QToolButton()
        btn.setText(text)
        btn.setCheckable(True)
        btn.setToolTip(f"{text} tool ({key})")
        panel._tool_group.addButton(btn)
        btn.clicked.connect(lambda _=False, t=tool: panel.canvas.set_tool(t))
        tools.addWidget(btn)
        panel.tool_buttons[tool] = btn
    panel.show_input_check = QtWidgets.QCheckBox("Show")
    panel.show_input_check.setChecked(True)
    panel.show_input_check.setToolTip("Show scribbles and SAM prompts on the canvas (X)")
    panel.clear_button = QtWidgets.QToolButton()
    panel.clear_button.setText("Clear")
    panel.clear_button.setToolTip("Clear scribbles and SAM prompts (Backspace)")
    tools.addStretch(1)
    form.addRow(tools)
    input_row = QtWidgets.QHBoxLayout()
    input_row.addWidget(panel.clear_button)
    input_row.addWidget(panel.show_input_check)
    input_row.addStretch(1)
    form.addRow(input_row)


def _brush_and_band(panel: Any, form: "QtWidgets.QFormLayout") -> None:
    panel.brush_spin = QtWidgets.QSpinBox()
    panel.brush_spin.setRange(1, 500)
    panel.brush_spin.setSuffix(" px")
    panel.brush_spin.setValue(panel.canvas.brush_size())
    panel.brush_spin.setToolTip("Brush diameter ([ and ])")
    form.addRow("Brush", panel.brush_spin)

    band_row = QtWidgets.QHBoxLayout()
    panel.band_slider = QtWidgets.QSlider(Qt.Orientation.Horizontal)
    panel.band_slider.setRange(*BAND_RANGE)
    panel.band_slider.setValue(panel.state.band())
    panel.band_slider.setToolTip("Radius of the unknown band on each side of the mask edge (the band is "
                                 "twice as wide, and widens further on hair); 0 = automatic. "
                                 "Preview band shows the band the engine gets.")
    panel.band_label = QtWidgets.QLabel()
    panel.band_label.setMinimumWidth(44)
    band_row.addWidget(panel.band_slider, 1)
    band_row.addWidget(panel.band_label)
    form.addRow("Band", band_row)


def _options(panel: Any) -> "QtWidgets.QFormLayout":
    """Diffusion steps, samples and the view-mode buttons."""
    opt = QtWidgets.QFormLayout()
    panel.steps_spin = QtWidgets.QSpinBox()
    panel.steps_spin.setRange(*STEPS_RANGE)
    panel.steps_spin.setValue(panel.state.steps())
    panel.steps_spin.setToolTip("Diffusion (DDIM) steps: more is slower and can be cleaner")
    opt.addRow("Diffusion steps", panel.steps_spin)
    panel.samples_spin = QtWidgets.QSpinBox()
    panel.samples_spin.setRange(*SAMPLES_RANGE)
    panel.samples_spin.setValue(panel.state.samples())
    panel.samples_spin.setToolTip("Average this many diffusion runs: slower, but the matte depends "
                                  "less on chance (3 lowers the error by about 7 %)")
    opt.addRow("Samples", panel.samples_spin)
    panel._options_form = opt

    views = QtWidgets.QHBoxLayout()
    views.setSpacing(2)
    panel.view_buttons = {}
    panel._view_group = QtWidgets.QButtonGroup(panel)
    for mode, label, keys in imaging.VIEW_MODES:
        btn = QtWidgets.QToolButton()
        btn.setText(keys[0])
        btn.setCheckable(True)
        btn.setToolTip(f"{label} ({' or '.join(keys)})")
        panel._view_group.addButton(btn)
        btn.clicked.connect(lambda _=False, m=mode: panel.canvas.set_view_mode(m))
        views.addWidget(btn)
        panel.view_buttons[mode] = btn
    views.addStretch(1)
    opt.addRow("View", views)
    panel.view_label = QtWidgets.QLabel()
    panel.view_label.setWordWrap(True)  # "Alpha: no matte yet, showing the photo"
    opt.addRow("", panel.view_label)
    return opt


def _run_controls(panel: Any, lay: "QtWidgets.QVBoxLayout") -> None:
    """Refine / Cancel, the progress bar and status, then the error line and Save matte."""
    panel.refine_button = QtWidgets.QPushButton("Refine Matte")
    panel.refine_button.setObjectName("refineButton")
    panel.refine_button.setToolTip("Compute the trimap and refine the matte (Ctrl+Return)")
    panel.refine_button.setMinimumHeight(32)
    panel.cancel_button = QtWidgets.QPushButton("Cancel")
    panel.cancel_button.setToolTip("Stop the running refine (Esc)")
    panel.cancel_button.setEnabled(False)
    row = QtWidgets.QHBoxLayout()
    row.addWidget(panel.refine_button, 1)
    row.addWidget(panel.cancel_button)
    lay.addLayout(row)

    panel.progress = QtWidgets.QProgressBar()
    panel.progress.setRange(0, 1)
    panel.progress.setValue(0)
    panel.progress.setFormat("")  # the numbers are in the status line (panel_progress)
    panel.status_label = QtWidgets.QLabel("Ready.")
    panel.status_label.setWordWrap(True)
    lay.addWidget(panel.progress)
    lay.addWidget(panel.status_label)
    lay.addWidget(panel.error_label)
    lay.addWidget(panel.save_matte_button)


def connect(panel: Any) -> None:
    """Wire the widgets to the panel's state and canvas, both ways."""
    # the artist's actions go to the state; the state's changes are rendered
    panel.source_combo.currentIndexChanged.connect(
        lambda i: panel.state.set_source(SOURCE_IDS[max(i, 0)]))
    panel.edge_combo.currentIndexChanged.connect(lambda i: panel.state.set_edge(EDGE_IDS[max(i, 0)]))
    panel.steps_spin.valueChanged.connect(panel.state.set_steps)
    panel.samples_spin.valueChanged.connect(panel.state.set_samples)
    panel.band_slider.valueChanged.connect(panel.state.set_band)
    panel.state.sourceChanged.connect(panel._render_source)
    panel.state.edgeChanged.connect(lambda e: render_edge(panel, e))
    panel.state.stepsChanged.connect(panel.steps_spin.setValue)
    panel.state.samplesChanged.connect(panel.samples_spin.setValue)
    panel.state.bandChanged.connect(panel.band_slider.setValue)
    panel.canvas.strokeAdded.connect(panel._on_stroke_for_band)
    panel.clear_button.clicked.connect(panel.canvas.clear_input)
    panel.show_input_check.toggled.connect(panel.canvas.set_input_visible)
    panel.brush_spin.valueChanged.connect(panel.canvas.set_brush_size)
    panel.canvas.brushSizeChanged.connect(panel.brush_spin.setValue)
    panel.canvas.viewModeChanged.connect(lambda m: sync_view_buttons(panel, m))
    panel.canvas.viewShownChanged.connect(lambda _t: sync_view_buttons(panel, panel.canvas.view_mode()))
    panel.canvas.toolChanged.connect(lambda t: sync_tool_buttons(panel, t))
    panel.state.bandChanged.connect(lambda v: sync_band_label(panel, v))
    panel.refine_button.clicked.connect(panel.refine)
    panel.cancel_button.clicked.connect(panel.cancel)
    panel.save_matte_button.clicked.connect(lambda: panel_host.ask_save_matte(panel))
    panel.preview_band_button.clicked.connect(panel.preview_band)
    sync_band_label(panel, panel.state.band())


# ----------------------------------------------------------- the state, shown
def sync_view_buttons(panel: Any, mode: str) -> None:
    """The view mode's button, and the label saying what the canvas shows."""
    btn = panel.view_buttons.get(mode)
    if btn is not None:
        btn.setChecked(True)
    label = panel.canvas.view_label()  # says when the photo stands in for a missing matte
    panel.view_label.setText(label)
    panel.canvas.hud_text = label


def sync_tool_buttons(panel: Any, tool: str) -> None:
    btn = panel.tool_buttons.get(tool)
    if btn is not None:
        btn.setChecked(True)


def sync_band_label(panel: Any, value: int) -> None:
    panel.band_label.setText(band_text(value))


def render_edge(panel: Any, edge: str) -> None:
    panel.edge_combo.blockSignals(True)
    panel.edge_combo.setCurrentIndex(EDGE_IDS.index(edge))
    panel.edge_combo.blockSignals(False)


def show_diffusion_controls(panel: Any, shown: bool) -> None:
    """Diffusion steps, Samples and Variation: hidden for a prior-only engine."""
    for field in (panel.steps_spin, panel.samples_spin):
        field.setVisible(shown)
        label = panel._options_form.labelForField(field)
        if label is not None:
            label.setVisible(shown)
    panel.output.controls.show_variation(shown)


def set_busy(panel: Any, busy: bool) -> None:
    """While a job runs: Cancel on; Refine, the source and the diffusion numbers off."""
    panel.refine_button.setEnabled(not busy)
    panel.cancel_button.setEnabled(busy)
    panel.source_combo.setEnabled(not busy)
    panel.steps_spin.setEnabled(not busy)
    panel.samples_spin.setEnabled(not busy)


def install_shortcuts(panel: Any, scope: "QtWidgets.QWidget",
                      context: Any = Qt.ShortcutContext.WidgetWithChildrenShortcut) -> None:
    """(Re)create the panel's single-key shortcuts, active within ``scope``.

    A plugin keeps them on the panel so the host's own keys are not stolen;
    the standalone editor moves them to its main window.
    """
    for sc in panel._shortcuts:
        sc.setEnabled(False)
        sc.setParent(None)
        sc.deleteLater()
    panel._shortcuts = []

    def bind(key: str, fn: Callable[[], Any]) -> None:
        sc = QShortcut(QtGui.QKeySequence(key), scope)
        sc.setContext(context)
        sc.activated.connect(fn)
        panel._shortcuts.append(sc)

    for mode, _, keys in imaging.VIEW_MODES:
        for key in keys:
            bind(key, lambda m=mode: panel.canvas.set_view_mode(m))
    bind("F", lambda: panel.set_tool("fg"))
    bind("B", lambda: panel.set_tool("bg"))
    bind("U", lambda: panel.set_tool("unknown"))
    bind("E", lambda: panel.set_tool("erase"))
    bind("P", lambda: panel.set_tool("sam"))
    bind("H", lambda: panel.canvas.set_tool("pan"))
    bind("[", lambda: panel.canvas.grow_brush(1 / 1.2))
    bind("]", lambda: panel.canvas.grow_brush(1.2))
    bind("Ctrl+Return", panel.refine)
    bind("Ctrl+Enter", panel.refine)
    bind("R", panel.refine)
    bind("Esc", panel.cancel)
    bind("Backspace", panel.canvas.clear_input)
    bind("X", lambda: panel.show_input_check.toggle())


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
