"""A user's own router and proposer plug into tune() as instances (the README's developer
section shows these two classes): one class each, no registry edit, real TVM underneath."""

from shared_mcts import tune
from shared_mcts.search.proposal import Edit, Proposal
from shared_mcts.search.routers import Router

from .conftest import DATA

MATMUL = f"{DATA / 'small_matmul.py'}:matmul"


class Alternate(Router):
    """Alternates between the models, first name first."""

    name = "alternate"

    def __init__(self):
        self.turn = 0
        self.measured: list[str] = []

    def choose(self, node, tree, rng, ctx):
        names = sorted(ctx.available())
        self.turn += 1
        return names[(self.turn - 1) % len(names)] if names else None

    def on_measurement(self, parent, child, model, gain, new_best):
        self.measured.append(model)


class HalveLastTile:
    """Moves a factor of 2 out of the innermost position of one tile knob per edit."""

    name = "halver"

    def propose(self, request):
        edits = []
        for knob in request.knobs.values():
            if knob.kind == "tile" and knob.value[-1] % 2 == 0 and len(edits) < request.k:
                factors = list(knob.value)
                factors[-1] //= 2
                factors[0] *= 2
                edits.append(Edit({knob.name: factors}, "halve the innermost factor"))
        return Proposal(edits)


def test_a_router_and_a_proposer_given_as_instances(target, tmp_path):
    router = Alternate()
    result = tune(MATMUL, trials=8, seed=0, models=[HalveLastTile(), "mutate"], router=router, target=target,
                  out=tmp_path / "run", remeasure_repeat=1, space="stock")
    assert result.correct and result.trials == 8
    assert result.models == ["mutate", "halver"] and result.router == "alternate"
    assert "halver" in result.per_model and result.per_model["halver"].expansions >= 1
    assert set(router.measured) <= {"halver", "mutate"} and router.measured  # the router learned from its choices
    assert (tmp_path / "run" / "summary.json").exists()
