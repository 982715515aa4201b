"""One model call, made safe: budget check before every attempt, retries with backoff on
transient failures, the replay cache, and a record of every attempt for the ledger.

The same for every backend, and free of any network or TVM code: tested with fake backends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..models import CallBudget, ModelSpec
from ..search.events import CallStartedEvent
from ..search.proposal import ProposalCost
from .backends import BackendError, ChatBackend, Completion
from .cache import ReplayCache, cache_key, failure_key

MIN_COMPLETION_TOKENS = 32  # below this no answer with one edit fits: do not spend the call
MAX_BACKOFF_S = 30.0


@dataclass
class Attempt:
    model: str
    attempt: int
    ok: bool
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    dollars: float
    tokens_source: str  # provider | local | estimate | cache
    error_kind: str | None = None
    error: str | None = None
    cached: bool = False


@dataclass
class CallResult:
    text: str | None
    attempts: list[Attempt] = field(default_factory=list)
    refused: str | None = None  # why no (further) attempt was made: budget, replay miss

    @property
    def cached(self) -> bool:
        return any(a.cached for a in self.attempts)

    def cost(self) -> ProposalCost:
        return ProposalCost(calls=len(self.attempts), prompt_tokens=sum(a.prompt_tokens for a in self.attempts),
                            completion_tokens=sum(a.completion_tokens for a in self.attempts),
                            seconds=sum(a.seconds for a in self.attempts), dollars=sum(a.dollars for a in self.attempts))

    def as_dict(self) -> dict:
        return {"ok": self.text is not None, "refused": self.refused, "attempts": [asdict(a) for a in self.attempts]}


class ModelCaller:
    def __init__(self, spec: ModelSpec, backend: ChatBackend, budget: CallBudget | None = None,
                 cache: ReplayCache | None = None, replay_only: bool = False,
                 sleep: Callable[[float], None] = time.sleep, backoff_s: float = 1.0,
                 journal: Callable[[CallStartedEvent], None] | None = None):
        self.spec, self.backend, self.cache, self.journal = spec, backend, cache, journal
        self.budget = budget or CallBudget(spec.max_calls, spec.max_total_tokens, spec.max_dollars)
        self.replay_only, self.sleep, self.backoff_s = replay_only, sleep, backoff_s

    def _identity(self) -> dict:
        s = self.spec
        return {"backend": s.backend, "model": s.model, "base_url": s.base_url, "response_format": s.response_format}

    def call(self, messages: list[dict], schema: dict, seed: int) -> CallResult:
        """One call, attempt by attempt. An attempt recorded in the cache (its answer, or its
        failure in this run's own cache) is served as recorded, so a resumed or replayed run
        takes the same path and spends the same budget; any other attempt is made for real,
        announced first to the journal so that a crash mid-call is still counted on resume."""
        spec = self.spec
        params = {"max_tokens": spec.max_tokens, "temperature": spec.temperature, "seed": seed}
        key = cache_key(self._identity(), messages, schema, params)
        result = CallResult(None)
        for attempt in range(1, spec.max_retries + 2):
            answer = self.cache.get(key) if self.cache else None
            failure = self.cache.get(failure_key(key, attempt)) if self.cache else None
            if failure is not None:
                if not self._replay_failure(failure, attempt, result):
                    return result
                continue
            if answer is not None:
                return self._serve_cached(answer, result)
            if self.replay_only:
                result.refused = "replay: no cached answer for this prompt"
                return result
            prompt_tokens = self.backend.prompt_tokens(messages)
            room = self.budget.completion_room(prompt_tokens, spec.max_tokens)
            if room < min(MIN_COMPLETION_TOKENS, spec.max_tokens):
                result.refused = f"token budget of {self.budget.max_total_tokens} leaves no room for an answer"
                return result
            worst = spec.dollars(prompt_tokens, room, spec.timeout_s)
            refused = self.budget.admit(prompt_tokens, room, worst)
            if refused:
                result.refused = refused
                return result
            if self.journal:
                self.journal(CallStartedEvent(spec.name, key, attempt, prompt_tokens, room))
            try:
                completion: Completion = self.backend.complete(messages, schema, room, spec.temperature, spec.timeout_s,
                                                               seed)
            except BackendError as e:
                # What a failed attempt cost is often unknown: charge its prompt (our upper bound)
                # and whatever it reported, so the budgets stay on the safe side.
                used_prompt = e.prompt_tokens if e.prompt_tokens is not None else prompt_tokens
                record = {"model": spec.name, "attempt": attempt, "error_kind": e.kind, "error": str(e),
                          "prompt_tokens": used_prompt, "completion_tokens": e.completion_tokens or 0,
                          "seconds": e.seconds, "retryable": e.retryable,
                          "tokens_source": "local" if e.prompt_tokens is not None else "estimate"}
                if self.cache is not None:
                    self.cache.put(failure_key(key, attempt), record, shared=False)  # failures are this run's
                self._charge_failure(record, result)
                if not e.retryable or attempt > spec.max_retries:
                    return result
                wait = e.retry_after_s if e.retry_after_s is not None else self.backoff_s * 2 ** (attempt - 1)
                self.sleep(min(max(wait, 0.0), MAX_BACKOFF_S))
                continue
            dollars = spec.dollars(completion.prompt_tokens, completion.completion_tokens, completion.seconds)
            self.budget.charge(completion.prompt_tokens + completion.completion_tokens, dollars)
            result.attempts.append(Attempt(spec.name, attempt, True, completion.prompt_tokens,
                                           completion.completion_tokens, completion.seconds, dollars,
                                           completion.tokens_source))
            result.text = completion.text
            if self.cache is not None:
                self.cache.put(key, {"model": spec.name, "attempt": attempt, "text": completion.text,
                                     "prompt_tokens": completion.prompt_tokens,
                                     "completion_tokens": completion.completion_tokens,
                                     "seconds": completion.seconds, "tokens_source": completion.tokens_source})
            return result
        return result

    def _charge_failure(self, record: dict, result: CallResult, cached: bool = False) -> None:
        spec = self.spec
        dollars = spec.dollars(record["prompt_tokens"], record["completion_tokens"], record["seconds"])
        self.budget.charge(record["prompt_tokens"] + record["completion_tokens"], dollars)
        result.attempts.append(Attempt(spec.name, record["attempt"], False, record["prompt_tokens"],
                                       record["completion_tokens"], record["seconds"], dollars,
                                       "cache" if cached else record["tokens_source"], record["error_kind"],
                                       record["error"], cached=cached))

    def _replay_failure(self, record: dict, attempt: int, result: CallResult) -> bool:
        """Serve a recorded failed attempt; True if the original went on to retry."""
        spec = self.spec
        dollars = spec.dollars(record["prompt_tokens"], record["completion_tokens"], record["seconds"])
        refused = self.budget.admit(record["prompt_tokens"], record["completion_tokens"], dollars)
        if refused:
            result.refused = refused
            return False
        self._charge_failure(record, result, cached=True)
        return bool(record.get("retryable")) and attempt <= spec.max_retries

    def charge_orphans(self, journal: list[dict]) -> int:
        """Attempts announced in an earlier process's journal whose outcome never arrived (it was
        killed mid-call): they may have been paid for, so they are charged (call and prompt)."""
        orphans = 0
        for e in journal:
            if e.get("event") != CallStartedEvent.kind or e.get("model") != self.spec.name:
                continue
            answer = self.cache.get(e["key"]) if self.cache else None
            if (answer is not None and answer.get("attempt", 1) == e["attempt"]) or \
                    (self.cache and self.cache.get(failure_key(e["key"], e["attempt"])) is not None):
                continue
            self.budget.charge(e["prompt_tokens"], self.spec.dollars(e["prompt_tokens"], 0, 0))
            orphans += 1
        return orphans

    def _serve_cached(self, hit: dict, result: CallResult) -> CallResult:
        """A cached answer costs what it cost when it was made, so a replayed run spends its
        budgets exactly as the original did (and stops calling where the original stopped)."""
        spec = self.spec
        prompt, completion = int(hit.get("prompt_tokens", 0)), int(hit.get("completion_tokens", 0))
        seconds = float(hit.get("seconds", 0.0))
        dollars = spec.dollars(prompt, completion, seconds)
        refused = self.budget.admit(prompt, completion, dollars)
        if refused:
            result.refused = refused
            return result
        self.budget.charge(prompt + completion, dollars)
        result.attempts.append(Attempt(spec.name, int(hit.get("attempt", 1)), True, prompt, completion, seconds, dollars,
                                       "cache", cached=True))
        result.text = str(hit.get("text", ""))
        return result
