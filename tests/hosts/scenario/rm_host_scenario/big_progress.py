"""The 24 MP step of the host scenario (issue #23): a 6000 x 4000 photo, a rough selection,
Refine Matte pressed in the docker, its progress bar sampled every 0.2 s.

Checked with numbers: the bar first rises within ``FIRST_RISE_S`` of the click and then at
least every ``MAX_GAP_S`` (never backwards) for ``SAMPLE_S`` seconds, and on until the
engine's solve has filled the bar for ``SOLVE_S`` (the preparation, encoding the layer and
the trimap, takes 20-40 s at 24 MP; at most ``MAX_SAMPLE_S`` in all); then Cancel is pressed
(a whole 24 MP refine takes many minutes on a 2-core CI machine): the job must end as
cancelled within ``CANCEL_S``, leave the layer and its masks as they were, and leave the
engine idle. The sampled series goes to results.json (``progress_24mp``).

The gaps and the cancel are measured twice: in wall seconds, and in CPU seconds of the work
(Krita's process and the engine's, from /proc). The wall-clock checks count; but a shared
machine whose load is above ``BUSY_LOAD`` x its CPUs at the click (others' jobs: load 9-11 on
2 cores here) stretches single scipy calls of the trimap 3-8x, and there the CPU-time checks
count instead. The figure not counted is recorded as a note where it is over the limit.
"""
import hashlib
import os
import time

from .scenario import QtCore, QtGui, RESULTS, check, log, masks, uid, wait_until

W, H = 6000, 4000
SAMPLE_EVERY_S = 0.2
SAMPLE_S = 35.0       # sampling before Cancel is pressed, at least
SOLVE_S = 10.0        # and of the engine's solve, once it has begun
MAX_SAMPLE_S = 120.0  # at most
FIRST_RISE_S = 2.0    # the bar moves this soon after the click
MAX_GAP_S = 2.0       # and at least this often afterwards
CANCEL_S = 5.0        # a pressed Cancel ends the job this soon
BUSY_LOAD = 2.0       # 1-min load per CPU above which wall-clock times say more about others' jobs


def photo_24mp():
    """The scenario's photo scaled to 6000 x 4000 (ARGB32, Krita's BGRA byte order) and its
    rough selection scaled alike (8-bit grey rows)."""
    photo = QtGui.QImage(os.environ["RM_PHOTO"]).scaled(
        W, H, QtCore.Qt.AspectRatioMode.IgnoreAspectRatio, QtCore.Qt.TransformationMode.SmoothTransformation)
    photo = photo.convertToFormat(QtGui.QImage.Format.Format_ARGB32)
    rough = QtGui.QImage(os.environ["RM_ROUGH"]).scaled(W, H).convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    pixels = b"".join(bytes(photo.constScanLine(y).asstring(4 * W)) for y in range(H))
    rows = b"".join(bytes(rough.constScanLine(y).asstring(W)) for y in range(H))
    return pixels, rows


def open_document(k, win):
    """A new 6000 x 4000 document holding the photo, its paint layer active; (doc, layer) or
    None when this Krita does not make the layer active (noted, the step is skipped)."""
    from krita import Selection  # noqa: E402 (only inside Krita)
    pixels, rows = photo_24mp()
    doc = k.createDocument(W, H, "rm-24mp", "RGBA", "U8", "", 300.0)
    win.addView(doc)
    k.setActiveDocument(doc)
    layers = [n for n in doc.topLevelNodes() if n.type() == "paintlayer"]
    if layers:
        layer = layers[0]
    else:
        layer = doc.createNode("photo", "paintlayer")
        doc.rootNode().addChildNode(layer, None)
    layer.setPixelData(QtCore.QByteArray(pixels), 0, 0, W, H)
    sel = Selection()
    sel.setPixelData(QtCore.QByteArray(rows), 0, 0, W, H)
    doc.setSelection(sel)
    doc.refreshProjection()
    doc.waitForDone()
    doc.setActiveNode(layer)
    if not wait_until(lambda: doc.activeNode() is not None and uid(doc.activeNode()) == uid(layer), 10):
        RESULTS.setdefault("notes", []).append("24 MP step skipped: this Krita did not make the new "
                                               "document's layer active from a script")
        return doc, None
    return doc, layer


def _cpu_seconds(path):
    """utime + stime of a /proc/.../stat file, in seconds (0 when it cannot be read)."""
    try:
        with open(path) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, IndexError, ValueError):
        return 0.0


class WorkClock:
    """CPU seconds used so far by Krita's process and the engine's (its pid from /v1/info; a
    chroot shares the host's /proc): more than the refine's work (Krita's threads also render
    the 24 MP document), so a strict measure. A per-thread clock of the docker's job would be
    closer, but this machine's sandboxed kernel reads other threads' clocks as 0."""

    def __init__(self, panel):
        try:
            self.pid = int(panel.state.client.info().get("pid"))
        except Exception:  # noqa: BLE001 - no engine pid: Krita's side only
            self.pid = None
        self.last = (0.0, 0.0)  # (Krita, engine) at the last reading

    def __call__(self):
        times = os.times()
        engine = _cpu_seconds("/proc/%d/stat" % self.pid) if self.pid else 0.0
        self.last = (round(times.user + times.system, 2), round(engine, 2))
        return sum(self.last)


def sample_until(panel, outcome, t0, shoot, clock):
    """Sample the bar every SAMPLE_EVERY_S until the job ends, or SAMPLE_S after ``t0`` once
    the engine's solve has run for SOLVE_S (the bar past the preparation's share), or at
    MAX_SAMPLE_S: [(t, value, minimum, maximum, status text, CPU seconds of the work)];
    ``shoot()`` once the solve runs, else at the end (a screenshot of the running refine)."""
    from refine_matte.panel_progress import PREP_SHARE
    bar, series, solving = panel.progress, [], None
    while not outcome:
        t = time.monotonic() - t0
        series.append((round(t, 2), bar.value(), bar.minimum(), bar.maximum(), panel.status_label.text(),
                       round(clock(), 2), clock.last))
        if solving is None and bar.maximum() > 0 and bar.value() > PREP_SHARE * bar.maximum():
            solving = t
            shoot()
        if t >= MAX_SAMPLE_S or t >= SAMPLE_S and solving is not None and t - solving >= SOLVE_S:
            break
        wait_until(lambda: bool(outcome), SAMPLE_EVERY_S)
    if solving is None and not outcome:
        shoot()  # the solve never began: the preparation as it stood
    return series


def rises(series):
    """(the rises: (t, fraction, status text, CPU s) where the bar's fraction rose above
    every earlier one; the times it went backwards)."""
    best, up, down = 0.0, [], []
    for t, value, lo, hi, text, cpu, _ in series:
        if hi <= lo:
            continue  # a busy bar (no range): no fraction to read
        f = (value - lo) / float(hi - lo)
        if f > best + 1e-9:
            best = f
            up.append((t, round(f, 4), text, cpu))
        elif f < best - 1e-9:
            down.append((t, round(f, 4)))
    return up, down


def longest_gap(up, end, column=0):
    """(seconds, where) of the longest wait for a rise, the wait from the last rise to
    ``end`` (a sample) included, in wall seconds (``column`` 0) or CPU seconds (3); ``where``
    names the status texts around it."""
    up = [(r[column], r[2]) for r in up]
    end = (end[0] if column == 0 else end[5], "(sampling ended)")
    waits = [(b[0] - a[0], "%s -> %s" % (a[1], b[1])) for a, b in zip(up, up[1:] + [end])]
    return max(waits) if waits else (-1.0, "no rise")


def timed_check(name, wall, cpu, limit, busy, detail):
    """Check the ``wall`` seconds against ``limit``, or on a ``busy`` machine the ``cpu``
    seconds of Krita + engine (what the work itself took there); the other figure becomes a
    note. On an idle machine the wall clock is what the artist sees, and the CPU seconds of
    work that runs on both cores can be twice the wall time (a 1.2 s gap held 2.1 CPU s)."""
    if busy:
        check(name + " (CPU seconds of Krita + engine, busy machine)", cpu <= limit, "%.2f CPU s; %s" % (cpu, detail))
        measured, unit = wall, "s (wall, not counted on a busy machine)"
    else:
        check(name, wall <= limit, "%.2f s; %s" % (wall, detail))
        measured, unit = cpu, "CPU s of Krita + engine (not counted on an idle machine)"
    if measured > limit:
        RESULTS.setdefault("notes", []).append("%s: %.2f %s; %s" % (name, measured, unit, detail))


def engine_idle(panel):
    """Whether the engine runs and queues no job (its /v1/info)."""
    try:
        queue = panel.state.client.info().get("queue", {})
    except Exception:  # noqa: BLE001 - an engine that does not answer is not idle
        return False
    return queue.get("running") is None and not queue.get("queued")


def changes(series):
    """The samples where the value or the text changed (the log for the closing note)."""
    out, last = [], None
    for t, value, lo, hi, text, _, (krita, engine) in series:
        if (value, hi, text) != last:
            out.append([t, value, hi, text, krita, engine])
            last = (value, hi, text)
    return out


def run_step(k, win, panel):
    """The 24 MP refine: progress sampled, then cancelled (see the module docstring)."""
    doc, layer = open_document(k, win)
    if layer is None:
        log("NOTE", RESULTS["notes"][-1])
        return
    before = hashlib.sha1(bytes(layer.pixelData(0, 0, W, H))).hexdigest()
    panel.set_source("selection")
    panel.refresh()
    outcome = []
    panel.jobFinished.connect(outcome.append)
    load = [round(x, 2) for x in os.getloadavg()]
    busy = load[0] > BUSY_LOAD * (os.cpu_count() or 1)
    clock = WorkClock(panel)
    t0 = time.monotonic()
    panel.refine_button.click()
    clicked = time.monotonic() - t0  # the click's own work (the layer read) on the GUI thread
    shot = os.path.join(os.environ.get("RM_OUT", "/tmp"), "screenshot-24mp.png")
    series = sample_until(panel, outcome, t0, lambda: win.qwindow().grab().save(shot), clock)
    up, down = rises(series)
    end = series[-1][0] if series else 0.0
    gap, where = longest_gap(up, series[-1])
    cpu_gap, cpu_where = longest_gap(up, series[-1], 3)
    RESULTS["progress_24mp"] = {"click_s": round(clicked, 2), "rises": [[r[0], r[1], r[3]] for r in up],
                                "backwards": down, "samples": changes(series), "load": load,  # 1, 5, 15 min
                                "load_after": [round(x, 2) for x in os.getloadavg()], "busy": busy,
                                "cpus": os.cpu_count(), "engine_pid": clock.pid}
    log("24 MP progress: click %.2f s, rises %s" % (clicked, [r[:2] for r in up]))
    check("24 MP: the progress bar rises within %.0f s of the click" % FIRST_RISE_S,
          up and up[0][0] <= FIRST_RISE_S,
          "first rise at %s s (click returned after %.2f s)" % (up[0][0] if up else None, clicked))
    timed_check("24 MP: the bar rises at least every %.0f s while it runs (%.0f s sampled)" % (MAX_GAP_S, end),
                gap if up else 1e9, cpu_gap if up else 1e9, MAX_GAP_S, busy,
                "%d rises; longest wall gap %.2f s (%s), longest CPU gap %.2f s (%s); last value %s; load %s"
                % (len(up), gap, where, cpu_gap, cpu_where, up[-1][1] if up else None, load))
    check("24 MP: the bar never went backwards", not down, down[:5])
    if not outcome:
        tc, cc = time.monotonic(), clock()
        panel.cancel_button.click()
        wait_until(lambda: bool(outcome), 60)
        took, cpu = time.monotonic() - tc, clock() - cc
        RESULTS["progress_24mp"].update(cancel_s=round(took, 2), cancel_cpu_s=round(cpu, 2))
        check("24 MP: Cancel ends the job as cancelled", outcome == ["cancelled"], outcome)
        timed_check("24 MP: Cancel ends the job within %.0f s" % CANCEL_S, took, cpu, CANCEL_S, busy,
                    "load %s" % [round(x, 2) for x in os.getloadavg()])
    else:
        RESULTS.setdefault("notes", []).append("24 MP refine ended (%s) before Cancel" % outcome)
    panel.jobFinished.disconnect(outcome.append)
    check("24 MP: no mask was written, the layer's pixels are unchanged",
          not masks(layer) and hashlib.sha1(bytes(layer.pixelData(0, 0, W, H))).hexdigest() == before,
          [m.name() for m in masks(layer)])
    check("24 MP: the engine is idle after the cancel (no job running or queued)",
          wait_until(lambda: engine_idle(panel), 10), panel.status_label.text())
    doc.setModified(False)
    doc.close()
