"""The engine client's errors (stdlib only): what the service refused, a service that is
not there, a cancelled job; and the error an HTTP error response stands for."""

import json
import re
from typing import Optional


class EngineError(Exception):
    """The service refused a request or a job failed; ``status`` is the HTTP code."""

    def __init__(self, message: str, status: Optional[int] = None, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class EngineNotRunning(EngineError):
    """No reachable service was found (or the one started did not come up)."""


class JobCancelled(EngineError):
    """The refine job was cancelled before it finished."""


def error_from(status: int, data: bytes) -> EngineError:
    try:
        detail = json.loads(data.decode("utf-8")).get("detail")
    except (ValueError, AttributeError, UnicodeDecodeError):
        detail = None
    message = str(detail) if detail else data[:200].decode("utf-8", "replace") or "HTTP %d" % status
    if status == 401:
        return EngineNotRunning("the service refused the token (401): %s" % message, status)
    return EngineError("HTTP %d: %s" % (status, message), status)


def rejects_field(exc: EngineError, field: str) -> bool:
    """Whether ``exc`` is an engine older than the plugin refusing a request field it does
    not know yet (422 naming ``field``): the caller then asks again without it."""
    # the name as a whole word: "band" is not the "widen_band" of an older engine's answer
    return exc.status == 422 and re.search(r"(?<!\w)%s(?!\w)" % re.escape(field), str(exc)) is not None
