"""A model's hard limits for a run: calls, tokens, dollars."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CallBudget:
    """One model's hard limits for a run: calls, tokens, dollars. Every attempt is charged,
    failed ones included. `admit` is asked before an attempt with the attempt's worst case,
    so a limit is never passed, not even by the call that reaches it."""

    max_calls: int | None = None
    max_total_tokens: int | None = None
    max_dollars: float | None = None
    calls: int = 0
    tokens: int = 0
    dollars: float = 0.0

    def completion_room(self, prompt_tokens: int, wanted: int) -> int:
        """How many completion tokens an attempt may ask for, after its prompt."""
        if self.max_total_tokens is None:
            return wanted
        return max(min(wanted, self.max_total_tokens - self.tokens - prompt_tokens), 0)

    def admit(self, prompt_tokens: int, completion_tokens: int, worst_dollars: float) -> str | None:
        """None if an attempt of this worst case fits, else why not."""
        if self.max_calls is not None and self.calls + 1 > self.max_calls:
            return f"call budget of {self.max_calls} spent"
        if self.max_total_tokens is not None and self.tokens + prompt_tokens + completion_tokens > self.max_total_tokens:
            return f"token budget of {self.max_total_tokens} would be exceeded"
        if self.max_dollars is not None and self.dollars + worst_dollars > self.max_dollars + 1e-12:
            return f"dollar budget of {self.max_dollars:g} would be exceeded"
        return None

    def spent(self) -> bool:
        """No further call could be admitted, whatever its size."""
        return ((self.max_calls is not None and self.calls >= self.max_calls)
                or (self.max_total_tokens is not None and self.tokens >= self.max_total_tokens)
                or (self.max_dollars is not None and self.dollars >= self.max_dollars))

    def charge(self, tokens: int, dollars: float) -> None:
        self.calls += 1
        self.tokens += tokens
        self.dollars += dollars

    def as_dict(self) -> dict:
        return {"max_calls": self.max_calls, "max_total_tokens": self.max_total_tokens, "max_dollars": self.max_dollars,
                "calls": self.calls, "tokens": self.tokens, "dollars": self.dollars}
