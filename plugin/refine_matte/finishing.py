"""Output controls of the panel: edge controls, colour decontamination, variation.

The controls change the delivered matte and cut-out *after* the engine ran: the
panel keeps the engine's raw matte and asks a :class:`Finisher` for the edged
matte (fast, synchronous) and the decontaminated cut-out colours (slower, on a
thread).  The standalone editor's finisher runs ``diffmatte.finish.cutout`` in-process
(the same function as ``diffmatte refine --rgba``); a host without numpy uses
:class:`ServiceFinisher`, which asks the engine service to run it.  Qt + stdlib only.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Optional, Protocol

from . import imaging
from .qt import QtCore, QtGui, QtWidgets, Signal

# (key, label, low, high, step, suffix, tooltip); ranges match diffmatte.finish.edges.LIMITS.
EDGE_CONTROLS = (
    ("smooth", "Smooth", 0.0, 20.0, 1.0, " px", "Round off jagged, stair-stepped contours"),
    ("feather", "Feather", 0.0, 50.0, 0.5, " px", "Soften the edge (Gaussian radius)"),
    ("contrast", "Contrast", 0.0, 100.0, 5.0, " %", "Harden soft transitions (100 % = hard edge)"),
    ("shift", "Shift edge", -50.0, 50.0, 0.5, " px", "Move the edge outward (+) or inward (-)"),
)
DEFAULT_DECONTAMINATE = 100  # percent: cut-outs lose the old background's colour by default


class Finisher(Protocol):
    """What the panel needs to turn a raw matte into the delivered result."""

    def edges(self, alpha: "QtGui.QImage", edges: Dict[str, float]) -> "QtGui.QImage":
        """The matte after the edge controls (grey, same size); fast enough for a slider."""

    def cutout(self, image: "QtGui.QImage", raw_alpha: "QtGui.QImage", edges: Dict[str, float],
               amount: float) -> "QtGui.QImage":
        """Straight RGBA cut-out under the edged matte, colours decontaminated by ``amount``."""


class ServiceFinisher:
    """Finisher over the engine service's ``/v1/cutout`` (a host without numpy, e.g. Krita).

    The same ``diffmatte.finish.cutout.finish`` runs, in the service's process.
    """

    def __init__(self, get_client: Callable[[], Any]) -> None:
        self._get_client = get_client

    def available(self) -> bool:
        """Only once a client exists and knows the endpoint (never starts a service here)."""
        client = self._get_client()
        return client is not None and callable(getattr(client, "cutout", None))

    def edges(self, alpha: "QtGui.QImage", edges: Dict[str, float]) -> "QtGui.QImage":
        png = self._get_client().cutout(imaging.qimage_to_png(alpha), edges=edges, output="alpha")
        return imaging.png_to_qimage(png)

    def cutout(self, image: "QtGui.QImage", raw_alpha: "QtGui.QImage", edges: Dict[str, float],
               amount: float) -> "QtGui.QImage":
        png = self._get_client().cutout(imaging.qimage_to_png(raw_alpha),
                                        imaging.qimage_to_png(imaging.rgb_for_engine(image)),
                                        edges=edges, decontaminate=amount)
        return imaging.png_to_qimage(png)


class FinishControls(QtWidgets.QGroupBox):
    """Edge controls, "Decontaminate colours" with an amount, and the variation (seed)."""

    changed = Signal()          # edges or decontamination changed
    VARIATION_TIP = ("Which random draw the diffusion starts from. The same image, trimap and "
                     "variation always give the same matte (0 = what `diffmatte refine` gives "
                     "by default); try another number for a different result. The bundled "
                     "default model's matte is its deterministic prior, the same for every "
                     "variation; models with a learned correction vary.")

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__("Output (no new refine needed)", parent)
        form = QtWidgets.QFormLayout(self)
        grid = QtWidgets.QGridLayout()  # two controls a row keeps the docker short
        grid.setContentsMargins(0, 0, 0, 0)
        self.spins: Dict[str, Any] = {}
        for i, (key, label, lo, hi, step, suffix, tip) in enumerate(EDGE_CONTROLS):
            spin = QtWidgets.QDoubleSpinBox()
            spin.setRange(lo, hi)
            spin.setSingleStep(step)
            spin.setDecimals(1)
            spin.setSuffix(suffix)
            spin.setToolTip(tip)
            spin.setKeyboardTracking(False)  # typing "12" is one change, not two
            spin.valueChanged.connect(lambda _v: self.changed.emit())
            text = QtWidgets.QLabel(label)
            text.setToolTip(tip)
            grid.addWidget(text, i // 2, (i % 2) * 2)
            grid.addWidget(spin, i // 2, (i % 2) * 2 + 1)
            self.spins[key] = spin
        form.addRow(grid)
        row = QtWidgets.QHBoxLayout()
        self.decontaminate_check = QtWidgets.QCheckBox("Decontaminate colours")
        self.decontaminate_check.setChecked(True)
        self.decontaminate_check.setToolTip("Replace the old background's colour in hair and glass "
                                            "with the estimated foreground colour")
        self.amount_spin = QtWidgets.QSpinBox()
        self.amount_spin.setRange(0, 100)
        self.amount_spin.setSuffix(" %")
        self.amount_spin.setValue(DEFAULT_DECONTAMINATE)
        self.amount_spin.setToolTip("Decontamination amount")
        self.amount_spin.setKeyboardTracking(False)
        row.addWidget(self.decontaminate_check)
        row.addWidget(self.amount_spin)
        form.addRow(row)
        self.decontaminate_check.toggled.connect(self.amount_spin.setEnabled)
        self.decontaminate_check.toggled.connect(lambda _c: self.changed.emit())
        self.amount_spin.valueChanged.connect(lambda _v: self.changed.emit())
        self.reset_button = QtWidgets.QToolButton()
        self.reset_button.setText("Reset edges")
        self.reset_button.clicked.connect(self.reset_edges)
        self.variation_spin = QtWidgets.QSpinBox()
        self.variation_spin.setRange(0, 2**31 - 1)
        self.variation_spin.setValue(0)
        self.variation_spin.setToolTip(self.VARIATION_TIP)
        vrow = QtWidgets.QHBoxLayout()
        vrow.addWidget(self.variation_spin, 1)
        vrow.addWidget(self.reset_button)
        form.addRow("Variation", vrow)
        self._variation_label = form.labelForField(vrow)

    def show_variation(self, shown: bool) -> None:
        """Show or hide the variation (seed): hidden for a model whose matte does not depend
        on it (a prior-only model); "Reset edges" beside it stays."""
        self.variation_spin.setVisible(shown)
        if self._variation_label is not None:
            self._variation_label.setVisible(shown)

    def edges(self) -> Dict[str, float]:
        return {k: float(s.value()) for k, s in self.spins.items()}

    def amount(self) -> float:
        """Decontamination amount in [0, 1] (0 when switched off)."""
        return self.amount_spin.value() / 100.0 if self.decontaminate_check.isChecked() else 0.0

    def seed(self) -> int:
        return int(self.variation_spin.value())

    def params(self) -> Dict[str, Any]:
        """The result parameters (saved with results and settings)."""
        return {"edges": self.edges(), "decontaminate": self.amount(), "seed": self.seed()}

    def reset_edges(self) -> None:
        for spin in self.spins.values():
            spin.blockSignals(True)
            spin.setValue(0.0)
            spin.blockSignals(False)
        self.changed.emit()

    def set_edges(self, edges: Dict[str, float]) -> None:
        for key, value in edges.items():
            if key in self.spins:
                self.spins[key].setValue(float(value))

    def set_available(self, available: bool, why: str = "") -> None:
        """Without a finisher (a host without the engine's Python) the controls are off."""
        widgets = list(self.spins.values()) + [self.decontaminate_check, self.amount_spin, self.reset_button]
        if not hasattr(self, "_tips"):
            self._tips = {id(w): w.toolTip() for w in widgets}
        for w in widgets:
            w.setEnabled(available and (w is not self.amount_spin or self.decontaminate_check.isChecked()))
            w.setToolTip(self._tips[id(w)] if available else why)

    def save_settings(self, settings: "QtCore.QSettings") -> None:
        for key, spin in self.spins.items():
            settings.setValue(f"edge_{key}", spin.value())
        settings.setValue("decontaminate", self.decontaminate_check.isChecked())
        settings.setValue("decontaminate_amount", self.amount_spin.value())
        settings.setValue("variation", self.variation_spin.value())

    def restore_settings(self, settings: "QtCore.QSettings") -> None:
        for key, spin in self.spins.items():
            val = _as_float(settings.value(f"edge_{key}", None))
            if val is not None:
                spin.setValue(val)
        flag = settings.value("decontaminate", None)
        if flag is not None:
            self.decontaminate_check.setChecked(str(flag).lower() in ("true", "1"))
        for key, spin in (("decontaminate_amount", self.amount_spin), ("variation", self.variation_spin)):
            val = _as_float(settings.value(key, None))
            if val is not None:
                spin.setValue(int(val))


class _CutoutSignals(QtCore.QObject):
    done = Signal(int, object)    # token, QImage cut-out
    failed = Signal(int, str)


class CutoutJob:
    """Computes the decontaminated cut-out on a thread; ``token`` drops stale results."""

    def __init__(self, finisher: Finisher, token: int, image: "QtGui.QImage", raw: "QtGui.QImage",
                 edges: Dict[str, float], amount: float) -> None:
        self.signals = _CutoutSignals()
        self._args = (finisher, token, image, raw, edges, amount)
        self._thread = threading.Thread(target=self._run, name="refine-matte-cutout", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout: Optional[float] = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        finisher, token, image, raw, edges, amount = self._args
        try:
            self.signals.done.emit(token, finisher.cutout(image, raw, edges, amount))
        except Exception as exc:  # noqa: BLE001 - shown in the panel's status, never raised
            self.signals.failed.emit(token, f"{type(exc).__name__}: {exc}")


def _as_float(value: Any) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


__all__ = ["EDGE_CONTROLS", "Finisher", "ServiceFinisher", "FinishControls", "CutoutJob"]
