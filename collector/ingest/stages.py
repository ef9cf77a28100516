"""The journey stages and the rules that give a touchpoint its stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import orjson

from collector.errors import ConfigError

__all__ = ["CHANNELS", "STAGES", "STAGE_RANK", "StageRules"]

STAGES: tuple[str, ...] = ("awareness", "consideration", "purchase", "retention", "advocacy")
STAGE_RANK: dict[str, int] = {name: rank for rank, name in enumerate(STAGES, start=1)}
CHANNELS: frozenset[str] = frozenset({"web", "pos", "email", "social", "ads", "sms", "app", "support", "other"})

_RULE_FIELDS = frozenset({"event", "type", "channel", "stage"})
MEMO_SIZE = 4096  # (type, event, channel) answers remembered per rules: event names repeat


@dataclass(frozen=True)
class StageRules:
    """Event name (optionally with channel) -> stage; type-wide rules as a fallback."""

    by_event: dict[tuple[str, str | None], str]
    by_type: dict[tuple[str, str | None], str]
    # stage_for remembered by its arguments (the rules never change): set in __post_init__
    _memo: Callable[[str, str, str], str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_memo", lru_cache(maxsize=MEMO_SIZE)(self._stage_for))

    @classmethod
    def load(cls, path: Path) -> StageRules:
        """Read and check a rules file (JSON with a ``rules`` list)."""
        try:
            doc = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"stage rules {path}: {exc}") from exc
        rules = doc.get("rules") if isinstance(doc, dict) else None
        if not isinstance(rules, list):
            raise ConfigError(f"stage rules {path}: expected an object with a 'rules' list")
        by_event: dict[tuple[str, str | None], str] = {}
        by_type: dict[tuple[str, str | None], str] = {}
        for number, rule in enumerate(rules, start=1):
            where = f"stage rules {path}, rule {number}"
            if not isinstance(rule, dict) or not set(rule) <= _RULE_FIELDS:
                raise ConfigError(f"{where}: expected an object with fields {sorted(_RULE_FIELDS)}")
            stage, event, type_, channel = (rule.get(k) for k in ("stage", "event", "type", "channel"))
            if stage not in STAGE_RANK:
                raise ConfigError(f"{where}: stage must be one of {', '.join(STAGES)}")
            if channel is not None and channel not in CHANNELS:
                raise ConfigError(f"{where}: unknown channel {channel!r}")
            if isinstance(event, str) and event:
                by_event[(event.casefold(), channel)] = stage
            elif isinstance(type_, str) and type_:
                by_type[(type_, channel)] = stage
            else:
                raise ConfigError(f"{where}: needs an 'event' or a 'type'")
        return cls(by_event=by_event, by_type=by_type)

    def stage_for(self, type_: str, event: str, channel: str) -> str:
        """The stage a rule gives this touchpoint, or '' when no rule matches (remembered: MEMO_SIZE answers)."""
        return self._memo(type_, event, channel)

    def _stage_for(self, type_: str, event: str, channel: str) -> str:
        name = event.casefold()
        return (
            self.by_event.get((name, channel))
            or self.by_event.get((name, None))
            or self.by_type.get((type_, channel))
            or self.by_type.get((type_, None))
            or ""
        )
