"""The Refine Matte scenario, run inside a real Krita GUI by tests/hosts/krita.sh.

Opens the photo, makes a rough selection, presses Refine Matte in the docker
against a real engine service, and checks what Krita's document holds afterwards.
Every check is appended to ``$RM_OUT/results.json`` as soon as it is known; the
masks of refines 1 and 2 are saved there as ``mask-1.png`` / ``mask-2.png`` (8-bit
grey, as Krita holds them), for the host script to score against the ground truth.

Environment: RM_PHOTO, RM_ROUGH (grey PNG, the rough selection), RM_OUT,
RM_STEPS (diffusion steps), RM_RESTART: ``auto`` (shut the engine down; the
docker must start a new one), ``external`` (ask tests/hosts/krita.sh to restart it
on a new port) or ``none``.

With ``RM_PHASE=import`` (tests/hosts/krita.sh --zip, the first of two Krita starts) it
does what a user does instead: *Tools > Scripts > Import Python Plugin from File...*
(Krita's own ``plugin_importer_file`` action), picks ``RM_ZIP`` in the file dialog,
answers *Yes* to "Enable plugins now? (Requires restart)", checks what the importer
wrote and quits Krita normally, so that Krita itself saves the setting in kritarc; the
checks go to ``$RM_OUT/results-import.json``, the dialogs' screenshots to
``import-*.png``. The host script then starts Krita again for the refine.
"""
import json
import os
import sys
import time
import traceback

from . import pngread

OUT = os.environ.get("RM_OUT", "/tmp/rm-host-out")
PHASE = os.environ.get("RM_PHASE", "refine")  # "import": Krita's importer on RM_ZIP, then quit
RESULTS_NAME = "results-import.json" if PHASE == "import" else "results.json"
RESULTS = {"checks": [], "ok": False, "done": False}
RECORD = {}
MASK = "transparencymask"


def _qt():
    name = "PyQt6" if "PyQt6.QtCore" in sys.modules else "PyQt5"
    if name == "PyQt5":
        try:
            import PyQt5.QtCore  # noqa: F401
        except ImportError:
            name = "PyQt6"
    mods = __import__(name, fromlist=["QtCore", "QtGui", "QtWidgets"])
    return name, mods.QtCore, mods.QtGui, mods.QtWidgets


PYQT, QtCore, QtGui, QtWidgets = _qt()


def scenario_requested(env=None):
    """Whether tests/hosts/krita.sh started this Krita (it sets RM_PHOTO and RM_OUT)."""
    env = os.environ if env is None else env
    return bool(env.get("RM_PHOTO")) and bool(env.get("RM_OUT"))


def log(*parts):
    # Krita 5.1's Python writes stdout as ASCII: the docker's status texts ("Computing
    # trimap…") would raise UnicodeEncodeError there.
    line = " ".join(str(p) for p in ("[rm-host]",) + parts)
    print(line.encode("ascii", "backslashreplace").decode("ascii"), flush=True)


def save_results():
    tmp = os.path.join(OUT, RESULTS_NAME + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(RESULTS, fh, indent=1)
    os.replace(tmp, os.path.join(OUT, RESULTS_NAME))


def check(name, ok, detail=""):
    RESULTS["checks"].append({"name": name, "ok": bool(ok), "detail": str(detail)})
    log("CHECK", "PASS" if ok else "FAIL", name, detail)
    save_results()
    return bool(ok)


def wait_until(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        QtCore.QCoreApplication.processEvents()
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())


def uid(node):
    return node.uniqueId().toString()


def masks(layer):
    return [c for c in layer.childNodes() if c.type() == MASK]


class Recorder:
    """Wraps the panel's engine client and keeps the alpha PNG the engine returned."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def refine(self, *args, **kwargs):
        png = self.inner.refine(*args, **kwargs)
        RECORD["alpha"] = bytes(png)
        return png


def press_refine(panel, source, timeout=600.0):
    """Click Refine Matte with ``source``; return (outcome, seconds, panel error)."""
    outcome = []
    panel.jobFinished.connect(outcome.append)
    RECORD.pop("alpha", None)
    panel.set_source(source)
    t0 = time.monotonic()
    panel.refine_button.click()
    wait_until(lambda: outcome or not panel.is_busy(), timeout)
    wait_until(lambda: outcome, 5)
    panel.jobFinished.disconnect(outcome.append)
    return (outcome[0] if outcome else "not started"), time.monotonic() - t0, panel.error_text()


def engine_alpha8():
    w, h, depth, values = pngread.read_grey(RECORD["alpha"])
    return w, h, pngread.to_8bit(depth, values)


def check_refined(tag, doc, layer, layer_px, outcome, secs, error):
    """The checks after a successful refine: one mask equal to the engine's alpha."""
    w, h = doc.width(), doc.height()
    check(tag + ": refine finished", outcome == "done", "%s in %.1f s %s" % (outcome, secs, error))
    ours = [m for m in masks(layer) if m.name() == "Refine Matte"]
    others = [m.name() for m in masks(layer) if m.name() != "Refine Matte" and m.visible()]
    check(tag + ": exactly one Refine Matte mask, no other visible mask",
          len(ours) == 1 and not others, "ours=%d other visible=%s" % (len(ours), others))
    if ours and "alpha" in RECORD:
        aw, ah, expect = engine_alpha8()
        got = bytes(ours[0].pixelData(0, 0, w, h))
        diff = [abs(a - b) for a, b in zip(got, expect)] if len(got) == len(expect) else [256]
        check(tag + ": mask pixels == engine alpha", (aw, ah) == (w, h) and got == expect,
              "%dx%d px, max |diff| %d, %d px differ, mean alpha %.1f"
              % (aw, ah, max(diff), sum(1 for d in diff if d), sum(expect) / max(len(expect), 1)))
    check(tag + ": layer pixels unchanged", bytes(layer.pixelData(0, 0, w, h)) == layer_px)
    return ours[0] if ours else None


def save_mask(px, w, h, name):
    """Save a mask's 8-bit pixels (as Krita holds them) as a grey PNG in RM_OUT."""
    if len(px) != w * h:
        log("NOTE", name, "not saved: %d bytes for %dx%d px" % (len(px), w, h))
        return False
    img = QtGui.QImage(px, w, h, w, QtGui.QImage.Format.Format_Grayscale8)
    return img.copy().save(os.path.join(OUT, name))


def select_box(doc, layer, x, y, w, h):
    """The photo's layer active and a w x h rectangle at (x, y) selected, as the Rectangular
    Selection tool (or Select All, for the whole canvas) leaves it."""
    from krita import Selection  # noqa: E402 (only inside Krita)
    doc.setActiveNode(layer)
    wait_until(lambda: doc.activeNode() is not None and uid(doc.activeNode()) == uid(layer), 10)
    sel = Selection()
    sel.select(x, y, w, h, 255)
    doc.setSelection(sel)
    doc.waitForDone()


def hide_side_dockers(krita):
    """Room for the Layers and Refine Matte dockers in the screenshots."""
    for d in krita.dockers():
        if d.objectName() in ("ColorSelectorNg", "PresetDocker", "sharedtooldocker"):
            d.hide()


def trigger(krita, name, doc, pred):
    krita.action(name).trigger()
    doc.waitForDone()
    return wait_until(pred, 15)


def run():
    from krita import Krita, Selection  # noqa: E402 (only inside Krita)
    k = Krita.instance()
    os.makedirs(OUT, exist_ok=True)
    RESULTS.update(krita=k.version(), qt=QtCore.QT_VERSION_STR, pyqt=PYQT,
                   python=sys.version.split()[0])
    log("Krita", k.version(), "Qt", QtCore.QT_VERSION_STR, PYQT, "Python", sys.version.split()[0])
    win = k.activeWindow()
    win.qwindow().resize(1400, 960)
    doc = k.activeDocument()
    if doc is not None and os.path.basename(doc.fileName()) == os.path.basename(os.environ["RM_PHOTO"]):
        # Opened on Krita's command line (tests/hosts/krita.sh does so for Krita 5.2.9,
        # which has no active node after openDocument + addView from a script).
        RESULTS["opened"] = "command line"
    else:
        doc = k.openDocument(os.environ["RM_PHOTO"])
        if not check("photo opened", doc is not None, os.environ["RM_PHOTO"]):
            return
        win.addView(doc)
        k.setActiveDocument(doc)
        RESULTS["opened"] = "openDocument + addView"
    wait_until(lambda: k.activeDocument() is not None, 10)
    layer = [n for n in doc.topLevelNodes() if n.type() == "paintlayer"][0]
    doc.setActiveNode(layer)
    active = wait_until(lambda: doc.activeNode() is not None and uid(doc.activeNode()) == uid(layer), 10)
    check("photo opened, its layer active", active,
          "%s; active node %s" % (RESULTS["opened"], doc.activeNode().name() if doc.activeNode() else None))
    w, h = doc.width(), doc.height()
    layer_px = bytes(layer.pixelData(0, 0, w, h))
    rough = QtGui.QImage(os.environ["RM_ROUGH"]).convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    rows = b"".join(bytes(rough.constScanLine(y).asstring(w)) for y in range(h))

    def select_rough():
        sel = Selection()
        sel.setPixelData(QtCore.QByteArray(rows), 0, 0, w, h)
        doc.setSelection(sel)
        doc.waitForDone()

    select_rough()

    docker = [d for d in k.dockers() if d.objectName() == "refine_matte_docker"]
    if not check("Refine Matte docker registered", docker, [d.objectName() for d in k.dockers()][:40]):
        return
    docker = docker[0]
    docker.show()
    docker.raise_()
    panel = docker.panel
    if os.environ.get("RM_INSTALL") == "zip":
        # Installed from the release zip by Krita's importer: no engine.json. The docker's
        # first run must find the engine (5.1: ~/refine-matte/.venv; chroots: the running one).
        from refine_matte import client as rm_client
        bar = docker.engine_bar
        wait_until(lambda: not bar.isVisible(), 30)
        recorded = rm_client.engine_python()
        check("first run: the docker found the engine by itself (no terminal step)",
              not bar.isVisible(), "recorded %s; status %r" % (recorded, panel.status_label.text()))
    RESULTS["route"] = ("createTransparencyMask" if hasattr(doc, "createTransparencyMask")
                        else "add_new_transparency_mask action")
    factory = panel.state.client_factory  # wrap it: the real discovery/auto-start still runs
    panel.state.client_factory = lambda: Recorder(factory())
    panel.steps_spin.setValue(int(os.environ.get("RM_STEPS", "3")))
    panel.band_slider.setValue(0)
    panel.refresh()

    # 1. rough selection -> Refine Matte -> a mask equal to the engine's alpha
    outcome, secs, error = press_refine(panel, "selection")
    first = check_refined("refine 1 (selection)", doc, layer, layer_px, outcome, secs, error)
    first_px = bytes(first.pixelData(0, 0, w, h)) if first else b""
    save_mask(first_px, w, h, "mask-1.png")  # tests/hosts/krita.sh scores it against the truth
    hide_side_dockers(k)
    wait_until(lambda: False, 2.0)
    shot = os.path.join(OUT, "screenshot-rough.png")  # the Selection source, Edge rough
    check("screenshot after refine 1 saved", win.qwindow().grab().save(shot), shot)
    after = doc.selection()  # 5.1's route borrows the selection; it must be put back
    check("the artist's selection is unchanged after the refine",
          after is not None and bytes(after.pixelData(0, 0, w, h)) == rows)
    # 2. one edit_undo removes the mask (and leaves the layer alone); redo brings it back
    check("one edit_undo removes the mask",
          trigger(k, "edit_undo", doc, lambda: not masks(layer)),
          [m.name() for m in masks(layer)])
    check("layer pixels unchanged after undo", bytes(layer.pixelData(0, 0, w, h)) == layer_px)
    check("edit_redo restores it", trigger(k, "edit_redo", doc, lambda: len(masks(layer)) == 1),
          [m.name() for m in masks(layer)])
    # 3. second refine on the same layer with the mask active, from that mask
    redone = masks(layer)
    tag2 = "refine 2 (active layer's mask, mask active)"
    if redone:
        doc.setActiveNode(redone[0])
        if wait_until(lambda: doc.activeNode() is not None and uid(doc.activeNode()) == uid(redone[0]), 10):
            check("mask is the active node before refine 2", True, doc.activeNode().name())
        else:
            # Krita 5.2.9 ignores setActiveNode(mask) from a script: refine 2 then runs with
            # the layer active, from its topmost visible mask (ours). Noted, not a check.
            RESULTS.setdefault("notes", []).append(
                "setActiveNode(mask) was ignored by this Krita (active: %s); refine 2 used the "
                "layer's topmost visible mask" % (doc.activeNode().name() if doc.activeNode() else None))
            log("NOTE", RESULTS["notes"][-1])
            tag2 = "refine 2 (active layer's mask, layer active)"
    outcome, secs, error = press_refine(panel, "mask")
    second = check_refined(tag2, doc, layer, layer_px, outcome, secs, error)
    if second:
        save_mask(bytes(second.pixelData(0, 0, w, h)), w, h, "mask-2.png")
    check("status names the replaced mask", "Replaced the earlier" in panel.status_label.text(),
          panel.status_label.text())
    hide_side_dockers(k)
    wait_until(lambda: False, 2.0)
    shot = os.path.join(OUT, "screenshot.png")
    check("screenshot saved", win.qwindow().grab().save(shot), shot)
    # Replacing is two undo steps: the new mask goes, then the earlier one comes back.
    check("undo 1 after refine 2 removes the new mask",
          trigger(k, "edit_undo", doc, lambda: not masks(layer)), [m.name() for m in masks(layer)])
    back = lambda: len(masks(layer)) == 1 and bytes(masks(layer)[0].pixelData(0, 0, w, h)) == first_px
    check("undo 2 brings back the refine-1 mask", trigger(k, "edit_undo", doc, back))
    trigger(k, "edit_redo", doc, lambda: not masks(layer))
    trigger(k, "edit_redo", doc, lambda: len(masks(layer)) == 1)

    # 4. the engine restarts: the docker must find (or start) it again
    mode = os.environ.get("RM_RESTART", "none")
    if mode != "none":
        old = panel.state.client
        if mode == "auto":
            old.shutdown()
            gone = wait_until(lambda: not old.alive(timeout=1.0), 60)
            check("engine shut down (the docker must start a new one)", gone)
        else:
            open(os.path.join(OUT, "restart-engine"), "w").close()
            flag = os.path.join(OUT, "engine-restarted")
            check("engine restarted by the host script", wait_until(lambda: os.path.exists(flag), 240))
        doc.setActiveNode(layer)
        wait_until(lambda: doc.activeNode() is not None and uid(doc.activeNode()) == uid(layer), 10)
        select_rough()  # Krita 5.1's redo of "add mask" above consumed the selection again
        outcome, secs, error = press_refine(panel, "selection")
        check_refined("refine 3 after the engine restarted (%s)" % mode, doc, layer, layer_px,
                      outcome, secs, error)
        new = panel.state.client
        check("docker reconnected to the new engine",
              new is not old and (new.port != old.port or new.token != old.token),
              "port %s -> %s" % (old.port, new.port))
    # 5. Select All around a subject that fills the frame, Edge rough: nothing outside to
    # learn the background from, so the engine starts from the photo's focus (trimap/focus.py);
    # tests/hosts/krita.sh scores mask-all.png against the truth
    select_box(doc, layer, 0, 0, w, h)

    def outline_is_canvas():
        path = panel.canvas.selection_path()
        r = path.boundingRect() if path is not None else None
        return r is not None and r.x() < 1 and r.y() < 1 and abs(r.width() - w) < 2 and abs(r.height() - h) < 2
    check("the docker's outline follows Select All by itself (its poll of the selection's bounds)",
          wait_until(outline_is_canvas, 5), str(panel.canvas.selection_path().boundingRect()
                                                if panel.canvas.selection_path() is not None else None))
    outcome, secs, error = press_refine(panel, "selection")
    whole = check_refined("refine 4 (Select All)", doc, layer, layer_px, outcome, secs, error)
    save_mask(bytes(whole.pixelData(0, 0, w, h)) if whole else b"", w, h, "mask-all.png")
    check("the Select All refine warns that the selection leaves too little background",
          "too little" in panel.status_label.text() + " " + panel.error_text(),
          panel.status_label.text())
    hide_side_dockers(k)
    wait_until(lambda: False, 2.0)
    shot = os.path.join(OUT, "screenshot-select-all.png")
    check("screenshot after the Select All refine saved", win.qwindow().grab().save(shot), shot)
    from . import rect_step
    rect_step.refine_box(k, win, doc, layer, layer_px, panel, w, h)
    # 6. a 6000 x 4000 photo: the progress bar moves from the click on; then Cancel
    # (RM_BIG_PROGRESS=1, as CI sets it: a minute more per host)
    if os.environ.get("RM_BIG_PROGRESS") == "1":
        from . import big_progress
        big_progress.run_step(k, win, panel)
    if mode == "auto" and panel.state.client is not None:
        panel.state.client.shutdown()  # the engine the docker started
    RESULTS["ok"] = all(c["ok"] for c in RESULTS["checks"])


# ------------------------------------------------------------------ RM_PHASE=import
class DialogAnswerer:
    """Answers the modal dialogs of Krita's importer the way a user would.

    A QTimer, so it runs inside the dialogs' own event loops while ``action.trigger()``
    blocks. A dialog is answered once it has been shown for a second (so the screen
    grab shows it drawn): the file dialog gets ``RM_ZIP``, "Activate Plugins?" a *Yes*;
    any other message box (an overwrite question, an import error) is recorded and
    closed with its default button."""

    def __init__(self, zip_path):
        self.zip = zip_path
        self.seen = []  # [kind, title, text] of each dialog answered
        self.shots = []
        self._first = {}
        self.timer = QtCore.QTimer()
        self.timer.setInterval(250)
        self.timer.timeout.connect(self.poll)

    def _shot(self, name):
        """The whole (Xvfb) screen: the dialog over Krita's window, as a user sees it."""
        path = os.path.join(OUT, name)
        screen = QtGui.QGuiApplication.primaryScreen()
        if screen is not None and screen.grabWindow(0).save(path):
            self.shots.append(path)

    @staticmethod
    def _later(fn):
        """Answer from the event loop, not from this slot: a dialog the answer opens (an error
        box) runs its own loop, and Qt does not fire this timer again while its slot runs."""
        QtCore.QTimer.singleShot(0, fn)

    def poll(self):
        for w in QtWidgets.QApplication.topLevelWidgets():
            if not w.isVisible() or not isinstance(w, (QtWidgets.QFileDialog, QtWidgets.QMessageBox)):
                continue
            key = (type(w).__name__, w.windowTitle())
            first = self._first.setdefault(key, time.monotonic())
            if time.monotonic() - first < 1.0:
                continue
            self._first.pop(key)
            if isinstance(w, QtWidgets.QFileDialog):
                # As a user types it: the zip's full path in "File name", then Open.
                edit = w.findChild(QtWidgets.QLineEdit, "fileNameEdit") or w.findChild(QtWidgets.QLineEdit)
                if edit is not None:
                    edit.setText(self.zip)
                else:
                    w.selectFile(self.zip)
                QtCore.QCoreApplication.processEvents()
                self._shot("import-1-file-dialog.png")
                self.seen.append(["file dialog", w.windowTitle(), self.zip])
                log("file dialog %r: %s, Open" % (w.windowTitle(), self.zip))
                buttons = w.findChild(QtWidgets.QDialogButtonBox, "buttonBox")
                ok = buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Open) if buttons else None
                self._later(ok.click if ok is not None and ok.isEnabled() else w.accept)
            else:
                text = w.text()
                yes = w.button(QtWidgets.QMessageBox.StandardButton.Yes)
                if "Enable plugins now" in text and yes is not None:
                    self._shot("import-2-enable.png")
                    self.seen.append(["enable question", w.windowTitle(), text])
                    log("message box %r: Yes" % w.windowTitle())
                    self._later(yes.click)
                else:
                    self._shot("import-unexpected-%d.png" % len(self.seen))
                    self.seen.append(["unexpected", w.windowTitle(), text])
                    log("unexpected message box %r: %s" % (w.windowTitle(), text))
                    button = w.defaultButton() or (w.buttons() or [None])[0]
                    self._later(button.click if button is not None else w.reject)
            return


def run_import():
    """Tools > Scripts > Import Python Plugin from File... on RM_ZIP, as a user does it."""
    from krita import Krita  # noqa: E402 (only inside Krita)
    k = Krita.instance()
    os.makedirs(OUT, exist_ok=True)
    RESULTS.update(krita=k.version(), qt=QtCore.QT_VERSION_STR, pyqt=PYQT,
                   python=sys.version.split()[0], phase="import")
    log("import phase: Krita", k.version(), "Qt", QtCore.QT_VERSION_STR, PYQT)
    k.activeWindow().qwindow().resize(1400, 960)
    zip_path = os.environ["RM_ZIP"]
    action = k.action("plugin_importer_file")
    if not check("Krita's importer action exists (plugin_importer_file)", action is not None,
                 action.text() if action is not None else "enable_plugin_importer missing?"):
        return
    answerer = DialogAnswerer(zip_path)
    answerer.timer.start()
    t0 = time.monotonic()
    action.trigger()  # blocks in the file dialog and the question box; the timer answers them
    wait_until(lambda: False, 1.0)
    answerer.timer.stop()
    RESULTS["dialogs"] = answerer.seen
    RESULTS["screenshots"] = answerer.shots
    kinds = [d[0] for d in answerer.seen]
    check("the importer's file dialog was answered with the release zip", "file dialog" in kinds,
          "%.1f s; dialogs: %s" % (time.monotonic() - t0, answerer.seen))
    asked = [d for d in answerer.seen if d[0] == "enable question"]
    check("Krita asked to enable the imported plugin, naming Refine Matte",
          asked and "Refine Matte" in asked[0][2], asked)
    check("no other dialog (overwrite question, import error)", "unexpected" not in kinds,
          [d for d in answerer.seen if d[0] == "unexpected"])
    pykrita = os.path.join(k.getAppDataLocation(), "pykrita")
    check("the importer put refine_matte/ and refine_matte.desktop into Krita's pykrita folder",
          os.path.isfile(os.path.join(pykrita, "refine_matte", "__init__.py"))
          and os.path.isfile(os.path.join(pykrita, "refine_matte.desktop")), pykrita)
    check("no engine.json came with the zip",
          not os.path.exists(os.path.join(pykrita, "refine_matte", "engine.json")))
    setting = k.readSetting("python", "enable_refine_matte", "")
    check("Yes enabled it (python/enable_refine_matte=true, Krita's own setting)", setting == "true",
          repr(setting))
    if any(d.objectName() == "refine_matte_docker" for d in k.dockers()):
        RESULTS.setdefault("notes", []).append("the docker was loaded before a restart")
    RESULTS["ok"] = all(c["ok"] for c in RESULTS["checks"])


def quit_krita():
    """End Krita the way a user does (File > Quit), so Krita writes kritarc itself; a watchdog
    ends it after 120 s if the quit hangs (tests/hosts/krita.sh then finds no setting)."""
    QtCore.QTimer.singleShot(120000, lambda: (log("quit did not finish in 120 s"), os._exit(3)))
    from krita import Krita  # noqa: E402 (only inside Krita)
    action = Krita.instance().action("file_quit")
    log("quitting Krita (file_quit)")
    if action is not None:
        action.trigger()
    else:
        Krita.instance().activeWindow().qwindow().close()


def main():
    """Run the scenario, write results.json and end Krita with the outcome."""
    if not scenario_requested():  # never end a Krita that the host script did not start
        log("RM_PHOTO / RM_OUT not set: not running the scenario")
        return
    code = 1
    try:
        run_import() if PHASE == "import" else run()
        code = 0 if RESULTS["ok"] else 1
    except BaseException:
        RESULTS["error"] = traceback.format_exc()
        log("EXCEPTION", RESULTS["error"])
    RESULTS["done"] = True
    try:
        save_results()
    except OSError:
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    if PHASE == "import":
        quit_krita()  # a normal quit: Krita saves the importer's setting in kritarc
        return
    os._exit(code)  # Krita's own shutdown is slow and not what is tested
