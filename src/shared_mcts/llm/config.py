"""Model specs: what `--models` names, from a comma list or a models.toml file.

A spec list mixes LLMs and non-LLM proposers: `local:smollm2,expert,mutate`,
`openai:gpt-4o-mini`, `local:/path/model.gguf`, or the path of a TOML file with one table per
model under [models.NAME]. Every field is validated here, with one-line errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import UserError

BUILTIN = ("expert", "mutate", "greedy")
BACKENDS = ("builtin", "local", "openai")


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
    # moves): for small grammar-constrained models. None: for local models only.
    small_schema: bool | None = None
    strength: float | None = None  # routers escalate to the strongest; None: ranked by expected cost
    max_edits: int = 4  # edits asked per call (the engine may ask fewer)
    script_chars: int | None = None  # TVMScript shown; None: 800 for local models (prompt time), else 3000

    @property
    def script_limit(self) -> int:
        return self.script_chars if self.script_chars is not None else (800 if self.backend == "local" else 3000)

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
    def uses_small_schema(self) -> bool:
        return self.backend == "local" if self.small_schema is None else self.small_schema

    @property
    def is_llm(self) -> bool:
        return self.backend != "builtin"

    def dollars(self, prompt_tokens: int, completion_tokens: int, seconds: float) -> float:
        return (prompt_tokens * self.price_in_per_m + completion_tokens * self.price_out_per_m) / 1e6 \
            + seconds * self.price_per_second + self.price_per_call


_FIELDS = {f.name: f for f in fields(ModelSpec)}
_NUMBERS = ("price_in_per_m", "price_out_per_m", "price_per_second", "price_per_call", "temperature", "timeout_s",
            "max_dollars", "strength")
_INTEGERS = ("max_tokens", "max_calls", "max_total_tokens", "max_edits", "script_chars")
RESPONSE_FORMATS = ("json_schema", "json_object", "none")
FALLBACKS = BUILTIN + ("none",)


def spec_from_text(text: str) -> ModelSpec:
    text = text.strip()
    if text in BUILTIN:
        return ModelSpec(name=text, backend="builtin", model=text)
    backend, _, model = text.partition(":")
    if backend == "local" and model:
        return ModelSpec(name=text, backend="local", model=model, timeout_s=120.0)
    if backend == "openai" and model:
        return ModelSpec(name=text, backend="openai", model=model, api_key_env="OPENAI_API_KEY")
    raise UserError(f"unknown model {text!r}; use {', '.join(BUILTIN)}, local:smollm2, local:PATH.gguf, "
                    "openai:MODEL, or a models.toml file")


def _check_table(name: str, table: dict, origin: str) -> ModelSpec:
    where = f"{origin} [models.{name}]"
    unknown = sorted(set(table) - set(_FIELDS) - {"name"})
    if unknown:
        raise UserError(f"{where}: unknown field {unknown[0]!r}")
    if "backend" not in table or table["backend"] not in BACKENDS:
        raise UserError(f"{where}: backend must be one of {', '.join(BACKENDS)}")
    if "model" not in table or not isinstance(table["model"], str) or not table["model"]:
        raise UserError(f"{where}: model must be a non-empty string")
    if table["backend"] == "builtin" and table["model"] not in BUILTIN:
        raise UserError(f"{where}: builtin model must be one of {', '.join(BUILTIN)}")
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
    if table.get("fallback", "mutate") not in FALLBACKS:
        raise UserError(f"{where}: fallback must be one of {', '.join(FALLBACKS)}")
    if table["backend"] == "openai" and "base_url" in table and not table["base_url"].startswith(("http://", "https://")):
        raise UserError(f"{where}: base_url must start with http:// or https://")
    if table["backend"] == "openai" and "api_key_env" not in table:
        # An empty api_key_env means the endpoint needs no key (a local server).
        table = dict(table, api_key_env="OPENAI_API_KEY")
    values = {k: (float(v) if k in _NUMBERS else v) for k, v in table.items() if k != "name"}
    return ModelSpec(name=name, **values)


def load_models_file(path: Path) -> list[ModelSpec]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
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
        specs.append(_check_table(name, dict(table), str(path)))
    return specs


def parse_model_specs(text: str) -> list[ModelSpec]:
    """`--models` value: a comma list of specs, or the path of a models.toml file."""
    text = (text or "").strip()
    if not text:
        raise UserError("--models: nothing given")
    if text.endswith(".toml"):
        specs = load_models_file(Path(text))
    else:
        parts = [part.strip() for part in text.split(",")]
        if not all(parts):
            raise UserError(f"--models {text!r}: an empty name in the list; give names separated by commas, "
                            "e.g. expert,mutate")
        specs = [spec_from_text(part) for part in parts]
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserError(f"--models names {duplicates[0]!r} twice")
    return specs
