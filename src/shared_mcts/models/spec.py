"""Model specs: what `--models` names, from a comma list or a models.toml file.

A spec list mixes LLMs and non-LLM proposers: `local:smollm2,expert,mutate`,
`openai:gpt-4o-mini`, `local:/path/model.gguf`, or the path of a TOML file with one table per
model under [models.NAME]. Every field is validated here, with one-line errors. Which non-LLM
proposers exist is the proposer registry's business: the names come in as `builtin`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import UserError

BUILTIN_BACKEND = "builtin"  # a non-LLM proposer run in this process
NO_FALLBACK = "none"


@dataclass(frozen=True)
class BackendDefaults:
    """What an LLM backend's registry entry tells spec parsing: field values a short name
    (`BACKEND:MODEL`) and a models.toml table of that backend start from."""

    short_form: dict
    table: dict


Backends = Mapping[str, BackendDefaults]


@dataclass(frozen=True)
class ModelSpec:
    name: str  # how the ledger, the tree and reports call it
    backend: str  # builtin | local | openai
    model: str  # builtin: expert/mutate/greedy; local: "smollm2" or a .gguf path; openai: model id
    base_url: str | None = None
    api_key_env: str | None = None  # the NAME of the variable holding the key, never the key
    price_in_per_m: float = 0.0  # dollars per 1M prompt tokens
    price_out_per_m: float = 0.0  # dollars per 1M completion tokens
    price_per_second: float = 0.0  # dollars per second of the model's own time (local models)
    price_per_call: float = 0.0  # explicit price of a non-LLM stand-in
    max_tokens: int = 512
    temperature: float = 0.7
    timeout_s: float = 60.0
    max_calls: int | None = None  # hard budgets for the run, counted on every attempt
    max_dollars: float | None = None
    max_total_tokens: int | None = None
    max_retries: int = 2  # extra attempts after a 429, a 5xx, a timeout or a dropped connection
    response_format: str = "json_schema"  # json_schema (OpenAI) | json_object (llama.cpp servers) | none
    fallback: str = "mutate"  # the non-LLM proposer used when a call gives no valid edit ("none": nothing)
    # Constrain the answer more tightly (one knob per edit, tile values limited to valid one-step
    # moves): for small grammar-constrained models. None: the backend's default (llm/backends.py).
    small_schema: bool | None = None
    strength: float | None = None  # routers escalate to the strongest; None: ranked by expected cost
    max_edits: int = 4  # edits asked per call (the engine may ask fewer)
    script_chars: int | None = None  # TVMScript shown; None: the backend's default (llm/backends.py)


    TYPICAL_PROMPT_TOKENS = 3000
    TYPICAL_SECONDS = 10.0

    def expected_dollars(self) -> float:
        """A prior for one expansion's cost, until measured costs replace it."""
        return self.dollars(self.TYPICAL_PROMPT_TOKENS, self.max_tokens // 2, self.TYPICAL_SECONDS) if self.is_llm \
            else self.price_per_call

    @property
    def rank(self) -> float:
        return self.strength if self.strength is not None else self.expected_dollars()


    @property
    def is_llm(self) -> bool:
        return self.backend != BUILTIN_BACKEND

    def dollars(self, prompt_tokens: int, completion_tokens: int, seconds: float) -> float:
        return (prompt_tokens * self.price_in_per_m + completion_tokens * self.price_out_per_m) / 1e6 \
            + seconds * self.price_per_second + self.price_per_call


_FIELDS = {f.name: f for f in fields(ModelSpec)}
_NUMBERS = ("price_in_per_m", "price_out_per_m", "price_per_second", "price_per_call", "temperature", "timeout_s",
            "max_dollars", "strength")
_INTEGERS = ("max_tokens", "max_calls", "max_total_tokens", "max_edits", "script_chars")
RESPONSE_FORMATS = ("json_schema", "json_object", "none")


def spec_from_text(text: str, builtin: Collection[str], backends: Backends) -> ModelSpec:
    """A spec from its short form: a builtin proposer's name, or BACKEND:MODEL (local:smollm2)."""
    text = text.strip()
    if text in builtin:
        return ModelSpec(name=text, backend=BUILTIN_BACKEND, model=text)
    backend, _, model = text.partition(":")
    if backend in backends and model:
        return ModelSpec(name=text, backend=backend, model=model, **backends[backend].short_form)
    forms = ", ".join([*builtin, *(f"{b}:MODEL" for b in backends)])
    raise UserError(f"unknown model {text!r}; use {forms} (local:smollm2, local:PATH.gguf, openai:MODEL), "
                    "or a models.toml file")


def _check_table(name: str, table: dict, origin: str, builtin: Collection[str], backends: Backends) -> ModelSpec:
    where = f"{origin} [models.{name}]"
    unknown = sorted(set(table) - set(_FIELDS) - {"name"})
    if unknown:
        raise UserError(f"{where}: unknown field {unknown[0]!r}")
    known = (BUILTIN_BACKEND, *backends)
    if "backend" not in table or table["backend"] not in known:
        raise UserError(f"{where}: backend must be one of {', '.join(known)}")
    if "model" not in table or not isinstance(table["model"], str) or not table["model"]:
        raise UserError(f"{where}: model must be a non-empty string")
    if table["backend"] == BUILTIN_BACKEND and table["model"] not in builtin:
        raise UserError(f"{where}: builtin model must be one of {', '.join(builtin)}")
    for key in _NUMBERS:
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise UserError(f"{where}: {key} must be a non-negative number")
    for key in _INTEGERS:
        if key in table and (isinstance(table[key], bool) or not isinstance(table[key], int) or table[key] < 1):
            raise UserError(f"{where}: {key} must be a positive integer")
    for key in ("max_dollars", "timeout_s"):
        if key in table and table[key] == 0:
            raise UserError(f"{where}: {key} must be positive")
    if "small_schema" in table and not isinstance(table["small_schema"], bool):
        raise UserError(f"{where}: small_schema must be true or false")
    if "max_retries" in table and (isinstance(table["max_retries"], bool) or not isinstance(table["max_retries"], int)
                                   or not 0 <= table["max_retries"] <= 10):
        raise UserError(f"{where}: max_retries must be an integer from 0 to 10")
    for key in ("base_url", "api_key_env", "response_format", "fallback"):
        if key in table and not isinstance(table[key], str):
            raise UserError(f"{where}: {key} must be a string")
    if table.get("response_format", "json_schema") not in RESPONSE_FORMATS:
        raise UserError(f"{where}: response_format must be one of {', '.join(RESPONSE_FORMATS)}")
    fallbacks = (*builtin, NO_FALLBACK)
    if table.get("fallback", "mutate") not in fallbacks:
        raise UserError(f"{where}: fallback must be one of {', '.join(fallbacks)}")
    if "base_url" in table and not table["base_url"].startswith(("http://", "https://")):
        raise UserError(f"{where}: base_url must start with http:// or https://")
    if table["backend"] in backends:  # e.g. openai's api_key_env; an empty one means no key is needed
        table = {**backends[table["backend"]].table, **table}
    values: dict[str, Any] = {k: (float(v) if k in _NUMBERS else v) for k, v in table.items() if k != "name"}
    return ModelSpec(name=name, **values)


def load_models_file(path: Path, builtin: Collection[str], backends: Backends) -> list[ModelSpec]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib

    if not path.is_file():
        raise UserError(f"models file not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML: {e}") from None
    tables = data.get("models")
    if not isinstance(tables, dict) or not tables:
        raise UserError(f"{path}: expected one or more [models.NAME] tables")
    unknown = sorted(set(data) - {"models"})
    if unknown:
        raise UserError(f"{path}: unknown top-level key {unknown[0]!r}")
    specs = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise UserError(f"{path}: models.{name} must be a table")
        specs.append(_check_table(name, dict(table), str(path), builtin, backends))
    return specs


def parse_model_specs(text: str, builtin: Collection[str], backends: Backends) -> list[ModelSpec]:
    """A comma list of specs, or the path of a models.toml file."""
    text = (text or "").strip()
    if not text:
        raise UserError("is empty: nothing given", argument="models")
    if text.endswith(".toml"):
        specs = load_models_file(Path(text), builtin, backends)
    else:
        parts = [part.strip() for part in text.split(",")]
        if not all(parts):
            raise UserError(f"{text!r}: an empty name in the list; give names separated by commas, "
                            "e.g. expert,mutate", argument="models")
        specs = [spec_from_text(part, builtin, backends) for part in parts]
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserError(f"names {duplicates[0]!r} twice", argument="models")
    return specs
