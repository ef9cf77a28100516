"""JSON encoding: orjson when it happens to be installed, the standard library otherwise."""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["NATIVE_DATETIME", "backend", "dumps", "loads"]


def _default(obj: Any) -> Any:
    """Encode the few non-JSON types a tracking call commonly carries."""
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


dumps: Callable[[Any], bytes]
loads: Callable[[bytes | str], Any]

try:  # pragma: no cover - depends on the environment
    if os.environ.get("REISE_NO_ORJSON"):
        raise ImportError("orjson disabled by REISE_NO_ORJSON")
    import orjson as _orjson

    _odumps = _orjson.dumps

    def _dumps_orjson(obj: Any) -> bytes:
        """Serialise ``obj`` to compact UTF-8 JSON bytes with orjson."""
        return _odumps(obj, default=_default)

    dumps = _dumps_orjson
    loads = _orjson.loads
    NATIVE_DATETIME = True
    backend = "orjson"
except ImportError:  # pragma: no cover - depends on the environment
    _encoder = json.JSONEncoder(
        default=_default, separators=(",", ":"), allow_nan=False, ensure_ascii=False
    ).encode

    def _dumps_std(obj: Any) -> bytes:
        """Serialise ``obj`` to compact UTF-8 JSON bytes with the standard library."""
        return _encoder(obj).encode()

    dumps = _dumps_std
    loads = json.loads
    NATIVE_DATETIME = False
    backend = "json"
