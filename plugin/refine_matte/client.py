"""Standard-library client of the Refine Matte engine service.

Runs inside a host application's embedded Python (Python >= 3.8, no third-party
packages): it finds the local service through the config directory, starts one as a
child process when asked, and exchanges PNG bytes with it.

    client = EngineClient.ensure_running(python="/path/to/engine/venv/bin/python")
    alpha_png = client.refine(image_png, trimap_png, steps=10,
                              on_progress=lambda step, total, preview: ...)
"""

import base64
import http.client
import json
import socket
import subprocess
import threading
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

# Where the service is and how one starts (re-exported: callers import them from here).
from .service_files import (CONFIG_ENV, ENGINE_FILE, LOG_FILE, PYTHON_ENV, SERVICE_FILE,  # noqa: F401
                            TOKEN_FILE, NotPublished, StartFailed, config_dir, engine_python, log_tail, read_published,
                            service_command, spawn_service)

# The errors (re-exported: callers import them from here) and a job's event stream.
from .client_errors import EngineError, EngineNotRunning, JobCancelled, error_from, rejects_field  # noqa: F401
from .client_events import ProgressCallback, dispatch, read_events
from .client_submit import OLD_ENGINE_NO_WIDEN, submit_refine  # noqa: F401 - the warning re-exported
from .client_trimap import trimap_request


def _b64(data: bytes) -> str:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("image data must be bytes (PNG file contents), got %s" % type(data).__name__)
    return base64.b64encode(bytes(data)).decode("ascii")


class EngineClient:
    """Talks to one running service at ``host:port`` with ``token``."""

    def __init__(self, host: str, port: int, token: str, timeout: float = 60.0) -> None:
        self.host = host
        self.port = int(port)
        self.token = token
        self.timeout = timeout
        #: the child process when :meth:`ensure_running` started the service
        self.process: Optional[subprocess.Popen] = None

    def __repr__(self) -> str:
        return "EngineClient(http://%s:%d)" % (self.host, self.port)

    # -- discovery ----------------------------------------------------------------------
    @classmethod
    def discover(cls, config: Optional[str] = None, timeout: float = 60.0,
                 probe_timeout: float = 2.0) -> "EngineClient":
        """Connect to the service published in the config directory.

        Raises :class:`EngineNotRunning` when there is no ``service.json``, no token,
        or the published address does not answer.
        """
        directory = config or config_dir()
        try:
            host, port, token = read_published(directory)
        except NotPublished as exc:
            raise EngineNotRunning(str(exc)) from None
        client = cls(host, port, token, timeout=timeout)
        try:
            client._request("GET", "/v1/info", timeout=probe_timeout)
        except EngineNotRunning:
            raise
        except EngineError as exc:
            raise EngineNotRunning("the service at %s:%d refused us: %s" % (host, port, exc)) from None
        return client

    @classmethod
    def ensure_running(cls, python: Optional[str] = None, args: Sequence[str] = (),
                       timeout: float = 120.0, config: Optional[str] = None,
                       command: Optional[Sequence[str]] = None) -> "EngineClient":
        """Discover the service, or start ``python -m diffmatte serve`` and wait for it.

        ``python`` is the engine environment's interpreter (default: the
        ``REFINE_MATTE_PYTHON`` variable, else ``sys.executable``); ``args`` are extra
        ``serve`` options; ``command`` replaces the whole command line. The child's
        output goes to ``service.log`` in the config directory.
        """
        try:
            return cls.discover(config)
        except EngineNotRunning:
            pass
        directory = config or config_dir()
        argv, env = service_command(python, args, config, command)
        try:
            proc, log_path = spawn_service(argv, env, directory)
        except StartFailed as exc:
            raise EngineNotRunning("cannot start the engine (%s): %s" % (" ".join(argv), exc)) from None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                # Lost a start race to another front end? Then that one serves us.
                try:
                    return cls.discover(config)
                except EngineNotRunning:
                    raise EngineNotRunning("the engine service exited with code %s:\n%s"
                                           % (code, log_tail(log_path))) from None
            try:
                client = cls.discover(config, probe_timeout=1.0)
            except EngineNotRunning:
                time.sleep(0.2)
                continue
            client.process = proc
            return client
        proc.terminate()
        raise EngineNotRunning("the engine service did not come up within %.0f s:\n%s"
                               % (timeout, log_tail(log_path)))

    def alive(self, timeout: float = 2.0) -> bool:
        """Whether the service still answers at this address with this token."""
        try:
            self._request("GET", "/v1/info", timeout=timeout)
        except EngineError:
            return False
        return True

    # -- HTTP ---------------------------------------------------------------------------
    def _connection(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port,
                                          timeout=self.timeout if timeout is None else timeout)

    def _headers(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        headers = {"Authorization": "Bearer " + self.token}
        if extra:
            headers.update(extra)
        return headers

    def _request(self, method: str, path: str, payload: Optional[Dict[str, Any]] = None,
                 timeout: Optional[float] = None) -> Tuple[bytes, str]:
        """Send one request; return ``(body, content_type)`` or raise :class:`EngineError`."""
        data, resp = self._exchange(method, path, payload, timeout)
        return data, resp.getheader("Content-Type", "")

    def _exchange(self, method: str, path: str, payload: Optional[Dict[str, Any]],
                  timeout: Optional[float]) -> Tuple[bytes, http.client.HTTPResponse]:
        body = None
        headers = self._headers()
        if payload is not None:
            body = json.dumps(payload).encode("utf-8")
            headers["Content-Type"] = "application/json"
        conn = self._connection(timeout)
        try:
            try:
                try:
                    conn.request(method, path, body=body, headers=headers)
                except (BrokenPipeError, ConnectionResetError):
                    # The service may refuse a body early (401, 413) and close while we
                    # are still sending: its answer is usually already readable.
                    pass
                resp = conn.getresponse()
                data = resp.read()
            except (ConnectionError, socket.timeout, OSError, http.client.HTTPException) as exc:
                if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
                    raise EngineNotRunning("no engine service at %s:%d (%s)"
                                           % (self.host, self.port, exc)) from None
                raise EngineError("request %s %s failed: %s" % (method, path, exc)) from None
        finally:
            conn.close()
        if resp.status >= 400:
            raise error_from(resp.status, data)
        return data, resp

    def _json(self, method: str, path: str, payload: Optional[Dict[str, Any]] = None,
              timeout: Optional[float] = None) -> Dict[str, Any]:
        data, _ = self._request(method, path, payload, timeout)
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError:
            raise EngineError("the service sent invalid JSON for %s %s" % (method, path)) from None

    # -- API ----------------------------------------------------------------------------
    def info(self) -> Dict[str, Any]:
        """Service, model, device, memory and queue information."""
        return self._json("GET", "/v1/info")

    def shutdown(self) -> None:
        """Ask the service to finish (or cancel) its jobs and exit."""
        self._json("POST", "/v1/shutdown")

    def submit_refine(self, image_png: bytes, trimap_png: bytes, steps: int = 10,
                      seed: Optional[int] = None, preview: bool = True,
                      quantize_trimap: bool = False, samples: int = 1, widen_band: bool = False,
                      band: Optional[float] = None) -> str:
        """Queue a refine job and return its id (see :meth:`wait` and :meth:`result`).

        ``samples`` > 1 asks the engine to average that many draws (slower, less noisy).
        ``widen_band``: the trimap came from rough input (a selection read with a rough edge,
        strokes); the engine may grow the band where it cut through the edge and solve again,
        by ``band`` (the band radius the trimap was made with; None: the image's default).
        """
        payload = {"image": _b64(image_png), "trimap": _b64(trimap_png), "steps": int(steps),
                   "seed": seed, "preview": bool(preview), "quantize_trimap": bool(quantize_trimap)}
        if int(samples) != 1:  # older services reject unknown fields
            payload["samples"] = int(samples)
        if widen_band:  # likewise
            payload["widen_band"] = True
            if band is not None:
                payload["band"] = float(band)
        return str(self._json("POST", "/v1/jobs/refine", payload)["job"])

    def cancel(self, job_id: str) -> None:
        """Cancel a queued or running job (no error if it already ended)."""
        self._json("POST", "/v1/jobs/%s/cancel" % job_id)

    def forget(self, job_id: str) -> None:
        """Drop a finished job and its result from the service's memory."""
        self._json("DELETE", "/v1/jobs/%s" % job_id)

    def result(self, job_id: str) -> bytes:
        """The 16-bit greyscale PNG alpha of a finished job."""
        data, _ = self._request("GET", "/v1/jobs/%s/result" % job_id)
        return data

    def events(self, job_id: str, cancel_event: Optional[threading.Event] = None,
               timeout: Optional[float] = None):
        """Yield the job's events (dicts) as they happen, ending with a terminal one.

        When ``cancel_event`` gets set, the job is cancelled and the stream goes on
        until the service confirms with a ``cancelled`` (or ``done``) event.
        ``timeout`` bounds the silence between two lines (the service sends a
        keep-alive about twice a second).
        """
        conn = self._connection(timeout if timeout is not None else max(self.timeout, 5.0))
        cancel_sent = False
        try:
            try:
                conn.request("GET", "/v1/jobs/%s/events" % job_id,
                             headers=self._headers({"Accept": "text/event-stream"}))
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise EngineError("cannot follow job %s: %s" % (job_id, exc)) from None
            if resp.status >= 400:
                raise error_from(resp.status, resp.read())

            def cancel_if_asked() -> None:
                nonlocal cancel_sent
                if cancel_event is not None and cancel_event.is_set() and not cancel_sent:
                    cancel_sent = True
                    self.cancel(job_id)

            yield from read_events(resp, job_id, cancel_if_asked)
        finally:
            conn.close()

    def wait(self, job_id: str, on_progress: Optional[ProgressCallback] = None,
             cancel_event: Optional[threading.Event] = None,
             on_work: Optional[Callable[[int, int], None]] = None,
             on_warning: Optional[Callable[[str], None]] = None,
             on_status: Optional[Callable[[str], None]] = None) -> None:
        """Follow a job to its end; raise :class:`JobCancelled` or :class:`EngineError`.

        ``on_work(done, total)`` gets the engine's real work (encoder tiles and tile x step
        decodes) from every event that carries it (services that send none: never);
        ``on_status("started")`` hears the job start."""
        for event in self.events(job_id, cancel_event=cancel_event):
            if on_status is not None and event.get("type") == "started":
                on_status("started")
            dispatch(event, on_progress, on_work, on_warning)

    def refine(self, image_png: bytes, trimap_png: bytes, steps: int = 10,
               seed: Optional[int] = None, on_progress: Optional[ProgressCallback] = None,
               cancel_event: Optional[threading.Event] = None, preview: bool = True,
               quantize_trimap: bool = False, samples: int = 1,
               on_work: Optional[Callable[[int, int], None]] = None,
               on_warning: Optional[Callable[[str], None]] = None, widen_band: bool = False,
               on_status: Optional[Callable[[str], None]] = None, band: Optional[float] = None) -> bytes:
        """Refine a matte; return the alpha as 16-bit greyscale PNG bytes.

        ``on_progress(step, total, preview_png_or_None)`` is called for each diffusion
        step, ``on_work(done, total)`` with the engine's tile x step counts (see
        :meth:`wait`); ``on_warning(message)`` with what the service found suspicious in the
        trimap (a region the matte cannot explain); setting ``cancel_event`` cancels the job and
        raises :class:`JobCancelled`. ``widen_band=True`` for a trimap made from rough input
        by ``band`` (see :meth:`submit_refine`; ``widen_rule.widens`` says which trimaps are).
        ``on_status`` hears "submitted" (the service has the job) and "started".
        """
        if cancel_event is not None and cancel_event.is_set():
            raise JobCancelled("cancelled before submission", code="cancelled")
        options = dict(steps=steps, seed=seed, preview=preview and on_progress is not None,
                       quantize_trimap=quantize_trimap, samples=samples)
        job_id = submit_refine(self, image_png, trimap_png, options, widen_band, band, on_warning)
        try:
            if on_status is not None:
                on_status("submitted")
            self.wait(job_id, on_progress=on_progress, cancel_event=cancel_event, on_work=on_work,
                      on_warning=on_warning, on_status=on_status)
            return self.result(job_id)
        except BaseException:
            # A callback that raises (or KeyboardInterrupt) must not leave the GPU busy.
            try:
                self.cancel(job_id)
            except EngineError:
                pass
            raise
        finally:
            try:
                self.forget(job_id)
            except EngineError:
                pass

    def trimap_from_mask(self, mask_png: bytes, band: Optional[int] = None,
                         adaptive: bool = True, image_png: Optional[bytes] = None,
                         edge: str = "exact", on_warning: Optional[Callable[[str], None]] = None,
                         on_edge: Optional[Callable[[str], None]] = None,
                         on_work: Optional[Callable[[int, int], None]] = None,
                         cancel_event: Optional[threading.Event] = None) -> bytes:
        """Trimap (8-bit PNG, 0/128/255) from a binary or soft mask; with ``image_png``
        the unknown band also follows the image (hair and fur outside a coarse mask).
        ``edge="rough"`` (needs the image): the mask is a region around the subject (a
        lasso, a rectangle) and the subject's edge is found inside it; ``"auto"`` decides.
        ``on_warning(message)``: the selection gave too little to go on (e.g. it leaves
        almost no background outside it). ``on_edge(edge)``: how the mask was read, "rough",
        "exact" or "sam-box" (a rectangle read by SAM's box prompt, where SAM is installed;
        "auto" decided; the service's ``X-Trimap-Edge``); not called for an
        "auto" request to a service that does not say. ``on_work`` / ``cancel_event``: the
        computation's progress, and its cancel (see :func:`client_trimap.trimap_request`)."""
        payload = {"mask": _b64(mask_png), "band": band, "adaptive": bool(adaptive)}
        if edge != "exact":
            payload["edge"] = edge
        if image_png is not None:
            payload["image"] = _b64(image_png)
        data, headers = trimap_request(self, "/v1/trimap/mask", payload, on_warning, on_work, cancel_event)
        if on_edge is not None:
            used = headers.get("X-Trimap-Edge") or edge
            if used in ("rough", "exact", "sam-box"):
                on_edge(used)
        return data

    def trimap_from_scribbles(self, image_png: bytes, fg_png: bytes, bg_png: bytes,
                              unknown_png: Optional[bytes] = None,
                              band: Optional[int] = None,
                              on_warning: Optional[Callable[[str], None]] = None,
                              on_work: Optional[Callable[[int, int], None]] = None,
                              cancel_event: Optional[threading.Event] = None) -> bytes:
        """Trimap from foreground / background (/ unknown) scribble layers; ``on_warning``,
        ``on_work`` and ``cancel_event`` as in :meth:`trimap_from_mask`."""
        payload = {"image": _b64(image_png), "fg": _b64(fg_png), "bg": _b64(bg_png),
                   "unknown": _b64(unknown_png) if unknown_png is not None else None, "band": band}
        return trimap_request(self, "/v1/trimap/scribbles", payload, on_warning, on_work, cancel_event)[0]

    def sam_embed(self, image_png: bytes) -> str:
        """Compute (and cache in the service) the SAM embedding; return an image id."""
        return str(self._json("POST", "/v1/sam/embed", {"image": _b64(image_png)})["image_id"])

    def sam_trimap(self, image_png: Optional[bytes] = None, points: Sequence[Tuple[float, float]] = (),
                   labels: Sequence[int] = (), box: Optional[Sequence[float]] = None,
                   image_id: Optional[str] = None, band: Optional[int] = None,
                   output: str = "trimap") -> bytes:
        """Trimap (or, with ``output="mask"``, a mask) from SAM point / box prompts.

        Pass ``image_id`` from :meth:`sam_embed` to reuse the cached embedding while the
        user keeps clicking on the same image.
        """
        payload: Dict[str, Any] = {
            "points": [[float(x), float(y)] for x, y in points],
            "labels": [int(v) for v in labels],
            "box": [float(v) for v in box] if box is not None else None,
            "band": band, "output": output}
        if image_id is not None:
            payload["image_id"] = image_id
        if image_png is not None:
            payload["image"] = _b64(image_png)
        data, _ = self._request("POST", "/v1/sam/trimap", payload)
        return data


    def cutout(self, alpha_png: bytes, image_png: Optional[bytes] = None,
               edges: Optional[Dict[str, float]] = None, decontaminate: float = 1.0,
               premultiplied: bool = False, output: str = "rgba") -> bytes:
        """Edge controls and the colour-decontaminated cut-out of a finished matte, without
        an engine run (``diffmatte.finish.cutout.finish``, as ``diffmatte refine --rgba``): an RGBA
        PNG, or with ``output="alpha"`` the edged matte as a 16-bit grey PNG."""
        payload: Dict[str, Any] = {"alpha": _b64(alpha_png), "edges": dict(edges or {}),
                                   "decontaminate": float(decontaminate),
                                   "premultiplied": bool(premultiplied), "output": output}
        if image_png is not None:
            payload["image"] = _b64(image_png)
        data, _ = self._request("POST", "/v1/cutout", payload)
        return data


