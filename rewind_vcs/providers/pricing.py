"""Token prices: a dated table shipped as data (``pricing.json``), overridable.

Model names are matched by the longest listed prefix that ends at a name
boundary, so dated and suffixed names find their family:
``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``, ``claude-sonnet-4-20250514`` ->
``claude-sonnet-4``, while ``gpt-4o`` never prices ``gpt-4o-mini``. A remainder that starts with a
small version number is a newer model, not a dated snapshot, and is not priced
by its predecessor: ``claude-opus-4-6`` is not ``claude-opus-4`` (but
``gemini-2.0-flash-001`` is ``gemini-2.0-flash``).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewind_vcs.errors import ConfigError
from rewind_vcs.store.records import Usage

_BOUNDARY = "-_:@"
_VERSION_BUMP = re.compile(r"^[-_]\d{1,2}(?!\d)")


@dataclass(frozen=True)
class Price:
    input: float  # USD per million input tokens
    output: float  # USD per million output tokens


@dataclass
class PriceTable:
    as_of: str = ""
    prices: dict[str, dict[str, Price]] = field(default_factory=dict)

    @classmethod
    def load(
        cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None
    ) -> PriceTable:
        """The table in ``path`` (default: the packaged ``pricing.json``), with ``overrides``
        applied on top: ``{"openai": {"my-model": {"input": 1.0, "output": 2.0}}}``
        (or the same shape as the file, under ``"providers"``)."""
        if path is None:
            raw = (
                importlib.resources.files("rewind_vcs.providers")
                .joinpath("pricing.json")
                .read_text("utf-8")
            )
            where = "the packaged pricing table"
        else:
            try:
                raw = Path(path).read_text("utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read pricing table {path}: {exc.strerror}") from exc
            where = str(path)
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{where} is not valid JSON: {exc}") from exc
        table = cls(as_of=str(_mapping(data, where).get("as_of", "")))
        table._merge(data.get("providers", {}), where)
        if overrides:
            table._merge(overrides.get("providers", overrides), "the price overrides")
        return table

    @classmethod
    def default(cls) -> PriceTable:
        """The packaged table, read once."""
        return _default_table()

    def _merge(self, providers: Any, where: str) -> None:
        for provider, models in _mapping(providers, where).items():
            target = self.prices.setdefault(provider.lower(), {})
            for model, price in _mapping(models, where).items():
                entry = _mapping(price, where)
                try:
                    target[model.lower()] = Price(float(entry["input"]), float(entry["output"]))
                except (KeyError, TypeError, ValueError) as exc:
                    raise ConfigError(
                        f"{where}: price of {provider}/{model} needs numeric 'input' and 'output'"
                    ) from exc

    def lookup(self, provider: str | None, model: str | None) -> Price | None:
        """The price of ``model``: the provider's own table first, then any other
        (an OpenAI-compatible router may serve another vendor's models)."""
        if not model:
            return None
        name = model.strip().lower().rsplit("/", 1)[-1]  # "models/x", "openai/gpt-4o"
        tables = [self.prices.get((provider or "").lower(), {})]
        tables += [t for p, t in self.prices.items() if p != (provider or "").lower()]
        for table in tables:
            best = _longest_prefix(name, table)
            if best is not None:
                return table[best]
        return None

    def cost(self, provider: str | None, model: str | None, usage: Usage) -> float | None:
        """USD for ``usage`` tokens of ``model``, or None when the model is not priced."""
        price = self.lookup(provider, model)
        if price is None:
            return None
        total = usage.input_tokens * price.input + usage.output_tokens * price.output
        return round(total / 1_000_000, 10)


def _longest_prefix(name: str, table: dict[str, Price]) -> str | None:
    best = None
    for key in table:
        rest = name[len(key) :]
        if name == key or (
            name.startswith(key) and rest[0] in _BOUNDARY and not _VERSION_BUMP.match(rest)
        ):
            if best is None or len(key) > len(best):
                best = key
    return best


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a JSON object, found {type(value).__name__}")
    return value


@functools.lru_cache(maxsize=1)
def _default_table() -> PriceTable:
    return PriceTable.load()
