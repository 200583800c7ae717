from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewind_vcs.errors import ConfigError
from rewind_vcs.providers.pricing import Price, PriceTable
from rewind_vcs.store.records import Usage

REQUIRED = {
    "openai": [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "o3",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "text-embedding-3-small",
    ],
    "anthropic": ["claude-3-5-haiku", "claude-sonnet-4", "claude-opus-4", "claude-haiku-4-5"],
    "gemini": ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.0-flash"],
}


def test_packaged_table_is_dated_and_covers_common_models() -> None:
    table = PriceTable.load()
    assert table.as_of == "2026-11-01"
    for provider, models in REQUIRED.items():
        for model in models:
            price = table.prices[provider][model]
            assert price.input > 0 and price.output >= 0
    raw = json.loads(
        Path(__file__).parents[2].joinpath("rewind_vcs/providers/pricing.json").read_text()
    )
    assert "indicative list prices" in raw["comment"].lower()


@pytest.mark.parametrize(
    ("provider", "model", "family"),
    [
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("openai", "gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("openai", "o3-mini-2025-01-31", "o3-mini"),
        ("anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("gemini", "gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini", "models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("openai", "anthropic/claude-opus-4", "claude-opus-4"),  # a router: any vendor's table
    ],
)
def test_longest_prefix(provider: str, model: str, family: str) -> None:
    table = PriceTable.load()
    expected = next(t[family] for t in table.prices.values() if family in t)
    assert table.lookup(provider, model) == expected


@pytest.mark.parametrize(
    "model", ["gpt-4", "gpt-4omni", "claude-opus-4-6", "gpt-5.1", "llama3", "", None]
)
def test_unpriced_models(model: str | None) -> None:
    # a bare prefix without a boundary, or a newer version number, is not its predecessor
    assert PriceTable.load().cost("openai", model, Usage(100, 100)) is None


def test_cost() -> None:
    table = PriceTable.load()
    cost = table.cost(
        "openai", "gpt-4o-mini-2024-07-18", Usage(input_tokens=1_000_000, output_tokens=500_000)
    )
    assert cost == pytest.approx(0.15 + 0.30)
    assert table.cost("anthropic", "claude-sonnet-4-5", Usage()) == 0.0


def test_overrides_and_files(tmp_path: Path) -> None:
    table = PriceTable.load(
        overrides={
            "openai": {"gpt-4o": {"input": 1, "output": 2}, "my-ft": {"input": 3, "output": 4}}
        }
    )
    assert table.lookup("openai", "gpt-4o-2024-05-13") == Price(1.0, 2.0)
    assert table.lookup("openai", "my-ft-v2") == Price(3.0, 4.0)
    assert table.lookup("openai", "gpt-4o-mini") == PriceTable.load().lookup(
        "openai", "gpt-4o-mini"
    )
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {"as_of": "2030-01-01", "providers": {"acme": {"rocket": {"input": 9, "output": 9}}}}
        )
    )
    custom = PriceTable.load(path)
    assert custom.as_of == "2030-01-01" and custom.lookup("acme", "rocket-20300101") == Price(
        9.0, 9.0
    )
    assert custom.lookup("openai", "gpt-4o") is None


def test_bad_tables_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        PriceTable.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        PriceTable.load(bad)
    with pytest.raises(ConfigError, match="numeric 'input' and 'output'"):
        PriceTable.load(overrides={"openai": {"x": {"input": "cheap"}}})


def test_default_is_cached() -> None:
    assert PriceTable.default() is PriceTable.default()
