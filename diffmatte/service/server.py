"""Run the service: bind the socket, publish ``service.json``, shut down gracefully."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import sys
import threading
from typing import Any, Optional

import uvicorn

from . import config as cfgfiles
from .app import API_VERSION, Service, ServiceConfig, create_app, service_version
from .guard import ConnectionGuard, guarded_protocol

log = logging.getLogger("diffmatte.service")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_exposed(host: str) -> None:
    """Say loudly that a non-loopback bind exposes the engine to the network."""
    if is_loopback(host):
        return
    bar = "!" * 78
    sys.stderr.write(
        f"\n{bar}\n!! WARNING: binding the engine service to {host!r}, NOT to loopback.\n"
        "!! Anyone who can reach this address and learns the token can run jobs on\n"
        "!! this machine's GPU, and traffic (images, token) is NOT encrypted.\n"
        f"!! Use --host 127.0.0.1 unless you really mean it.\n{bar}\n\n")
    sys.stderr.flush()
    log.warning("service bound to non-loopback address %s", host)


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` (port 0: the OS picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if os.name == "posix":
        # Lets a restarted service take the port back at once (TIME_WAIT), while two
        # live listeners on one port are still refused on POSIX.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn server that settles jobs before closing connections."""

    def __init__(self, config: uvicorn.Config, service: Service, on_shutdown: Any = None) -> None:
        super().__init__(config)
        self.service = service
        self.on_shutdown = on_shutdown

    async def shutdown(self, sockets: Optional[list] = None) -> None:
        if self.on_shutdown is not None:
            self.on_shutdown()
        # Queued jobs are cancelled, the running one gets its grace period; their event
        # streams then end by themselves, so uvicorn's connection wait below is short.
        await asyncio.to_thread(self.service.close)
        await super().shutdown(sockets)


# Largest request head (request line + headers) h11 buffers before answering 400.
MAX_HEAD_BYTES = 16 * 1024


def uvicorn_config(app: Any, service: Service, log_level: str) -> uvicorn.Config:
    """uvicorn settings of the service: guarded h11 connections, no connection-count 503.

    ``limit_concurrency`` stays off because uvicorn counts idle connections against it
    (63 silent sockets then locked everyone out); the guard and the gate bound
    connections and requests instead.
    """
    cfg = service.config
    guard = ConnectionGuard(max_connections=cfg.max_connections,
                            max_per_client=cfg.max_connections_per_client,
                            head_timeout=cfg.head_timeout)
    service.connection_stats = guard.stats
    return uvicorn.Config(app, lifespan="off", log_level=log_level, access_log=False,
                          http=guarded_protocol(guard), ws="none",
                          h11_max_incomplete_event_size=MAX_HEAD_BYTES,
                          timeout_graceful_shutdown=int(cfg.shutdown_grace) + 5,
                          limit_concurrency=None, timeout_keep_alive=max(1, int(round(cfg.keep_alive))))


def served_hosts(config: Optional[ServiceConfig], host: str) -> ServiceConfig:
    """``config`` with the Host / Origin names a service bound to ``host`` answers to besides
    loopback names: a non-loopback address it was bound to on purpose, or any name when bound
    to every interface (0.0.0.0, ::)."""
    import dataclasses

    config = config or ServiceConfig()
    if is_loopback(host):
        return config
    extra = "*" if host in ("", "0.0.0.0", "::") else host
    return dataclasses.replace(config, allowed_hosts=tuple(config.allowed_hosts) + (extra,))


class RunningService:
    """A service running in a background thread (tests, embedding in a process)."""

    def __init__(self, engine: Any, token: str, config: Optional[ServiceConfig] = None,
                 host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.token = token
        self.sock = bind_socket(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        app, self.service = create_app(engine, token, served_hosts(config, host))
        uconf = uvicorn_config(app, self.service, log_level)
        self.server = _Server(uconf, self.service)
        self.service.request_shutdown = self.stop_async
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="diffmatte-service", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop_async(self) -> None:
        """Ask the server to stop (returns at once)."""
        self.server.should_exit = True

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server and wait for its thread."""
        self.stop_async()
        self.thread.join(timeout)


def serve(engine: Any, host: str = "127.0.0.1", port: int = 0,
          config: Optional[ServiceConfig] = None, log_level: str = "info") -> int:
    """Serve ``engine`` in the foreground until SIGINT/SIGTERM or POST /v1/shutdown."""
    config = config or ServiceConfig()
    token = cfgfiles.load_or_create_token()
    warn_if_exposed(host)
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        sys.stderr.write(f"error: cannot listen on {host}:{port}: {exc}\n")
        return 2
    bound_host, bound_port = sock.getsockname()[:2]
    app, service = create_app(engine, token, served_hosts(config, host))
    uconf = uvicorn_config(app, service, log_level)
    pid = os.getpid()
    server = _Server(uconf, service,
                     on_shutdown=lambda: cfgfiles.remove_service_file(pid))

    def request_shutdown() -> None:
        server.should_exit = True

    service.request_shutdown = request_shutdown
    path = cfgfiles.write_service_file({
        "host": bound_host, "port": bound_port, "pid": pid,
        "version": service_version(), "api": API_VERSION,
    })
    log.info("Refine Matte service on http://%s:%d (token in %s, discovery in %s)",
             bound_host, bound_port, cfgfiles.config_dir() / cfgfiles.TOKEN_FILE, path)
    print(f"diffmatte service listening on http://{bound_host}:{bound_port}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        cfgfiles.remove_service_file(pid)
        service.close()
        sock.close()
    return 0
