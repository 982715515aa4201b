"""Selectors by name: a router of routers.py under the tree policy, or a selector of its own
(`abmcts`). What `tune(router=...)` and the `shared:ROUTER` bench methods accept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .abmcts import ABMCTSSelector, speedup_score
from .policies import PolicyConfig
from .routers import ROUTERS, make_router, router_names
from .selector import Selector, TreePolicySelector


@dataclass(frozen=True)
class SelectionContext:
    models: list[str]
    seed: int = 0
    reference_latency_s: float | None = None  # the untuned program's latency
    roofline_s: float | None = None  # FLOPs / peak
    policy: PolicyConfig = PolicyConfig()


def _abmcts(ctx: SelectionContext) -> Selector:
    score = speedup_score(ctx.reference_latency_s or 1.0, ctx.roofline_s or 0.0)
    return ABMCTSSelector(score, seed=ctx.seed)


# {name: (factory, help)}: selectors that replace the tree policy and the router together.
SELECTORS: dict[str, tuple[Callable[[SelectionContext], Selector], str]] = {
    "abmcts": (_abmcts, "Sakana AI's AB-MCTS-A (treequest): chooses node and model jointly from the measured "
                        "speedup; proposing, measuring and credit stay ours"),
}


def make_selector(text: str, ctx: SelectionContext) -> Selector:
    """A selector by name; raises ValueError with a one-line reason."""
    if text in SELECTORS:
        return SELECTORS[text][0](ctx)
    if text.partition(":")[0] not in ROUTERS:
        raise ValueError(f"unknown router {text!r}; known: {', '.join(selector_names())}")
    return TreePolicySelector(make_router(text, ctx.models), ctx.policy)


def check_selector(text: str, models: list[str]) -> None:
    """Raise ValueError (one line) if `make_selector` would refuse `text`, without building it."""
    if text not in SELECTORS:
        make_selector(text, SelectionContext(models))


def selector_names() -> list[str]:
    return [*router_names(), *SELECTORS]


def selector_help() -> dict[str, str]:
    names = dict(zip(router_names(), ROUTERS))
    return {**{shown: ROUTERS[name][1] for shown, name in names.items()},
            **{name: text for name, (_, text) in SELECTORS.items()}}
