"""An LLM as a proposer: prompt (prompt.py) -> one safe call (shared_mcts/llm/caller.py) -> edits
parsed as data (parse.py) and validated against the node's knobs.

Edits that break a knob's constraints are dropped and counted against the model. A call that
yields no valid edit (refused by a budget, failed, or all invalid) hands the node to the
named non-LLM fallback; the engine credits those edits to the fallback, not to the model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...llm.caller import ModelCaller
from ...search.proposal import Proposal, ProposalRequest, Proposer
from ...space.knobs import validate_edit
from .parse import edits_from_answer, extract_json
from .prompt import answer_schema, build_messages


class LLMProposer:
    def __init__(self, name: str, caller: ModelCaller, workload: dict, script_of: Callable[[Any], str],
                 fallback: Proposer | None = None, small_schema: bool = False, max_edits: int = 4,
                 script_chars: int = 3000):
        self.name, self.caller, self.workload = name, caller, workload
        self.small_schema, self.max_edits, self.script_chars = small_schema, max_edits, script_chars
        self.script_of, self.fallback = script_of, fallback

    def propose(self, request: ProposalRequest) -> Proposal:
        k = max(1, min(request.k, self.max_edits))
        messages = build_messages(self.workload, request.hardware, request.knobs, self.script_of(request.candidate),
                                  request.history, k, tried=request.tried, siblings=request.siblings,
                                  next_models=request.next_models, script_chars=self.script_chars)
        schema = answer_schema(request.knobs, k, next_models=request.next_models or None,
                               small_schema=self.small_schema)
        result = self.caller.call(messages, schema, seed=request.rng.randrange(2**31))
        edits, rejected, problems, next_model = [], [], [], None
        if result.text is not None:
            parsed, problems, next_model = edits_from_answer(extract_json(result.text), k)
            for edit in parsed:
                reason = validate_edit(request.knobs, edit.changes)
                if reason:
                    rejected.append({"changes": edit.changes, "reason": reason})
                else:
                    edits.append(edit)
        log = {"call": result.as_dict(), "problems": problems,
               "answer": None if result.text is None else result.text[:2000]}
        proposal = Proposal(edits, result.cost(), rejected=rejected, log=log,
                            next_model=next_model if next_model in request.next_models else None)
        if edits:
            return proposal
        why = result.refused or (result.attempts[-1].error_kind if result.attempts and not result.attempts[-1].ok
                                 else "no valid edit in the answer")
        if self.fallback is None:
            proposal.note = f"{why}; no fallback"
            return proposal
        proposal.note = f"{why}; fell back to {self.fallback.name}"
        proposal.fallback, proposal.fallback_name = self.fallback.propose(request), self.fallback.name
        return proposal
