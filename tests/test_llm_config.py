"""models.toml and --models parsing (pure)."""

import pytest

from shared_mcts.errors import UserError
from shared_mcts.proposers import model_specs as parse_model_specs

GOOD = """
[models.small]
backend = "local"
model = "smollm2"
price_per_second = 0.0001
max_tokens = 256

[models.gpt]
backend = "openai"
model = "gpt-4o-mini"
base_url = "http://127.0.0.1:8000/v1"
price_in_per_m = 0.15
price_out_per_m = 0.6
max_calls = 4
max_dollars = 0.5

[models.expert]
backend = "builtin"
model = "expert"
price_per_call = 0.01
"""


def test_comma_list():
    specs = parse_model_specs("local:smollm2, expert,mutate,openai:gpt-4o-mini")
    assert [s.name for s in specs] == ["local:smollm2", "expert", "mutate", "openai:gpt-4o-mini"]
    assert [s.is_llm for s in specs] == [True, False, False, True]
    assert specs[3].api_key_env == "OPENAI_API_KEY"


def test_models_file(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text(GOOD)
    small, gpt, expert = parse_model_specs(str(path))
    assert small.backend == "local" and small.max_tokens == 256
    assert gpt.api_key_env == "OPENAI_API_KEY" and gpt.max_calls == 4
    assert gpt.dollars(1_000_000, 1_000_000, 0) == pytest.approx(0.75)
    assert expert.dollars(0, 0, 0) == pytest.approx(0.01)
    assert small.dollars(0, 0, 10) == pytest.approx(0.001)


@pytest.mark.parametrize("text, words", [
    ('[models.a]\nbackend = "nope"\nmodel = "x"', "backend must be one of"),
    ('[models.a]\nbackend = "local"', "model must be"),
    ('[models.a]\nbackend = "local"\nmodel = "x"\nprice_in_per_m = -1', "non-negative"),
    ('[models.a]\nbackend = "local"\nmodel = "x"\nmax_calls = 0', "positive integer"),
    ('[models.a]\nbackend = "local"\nmodel = "x"\ncolour = 1', "unknown field 'colour'"),
    ('[models.a]\nbackend = "builtin"\nmodel = "oracle"', "builtin model"),
    ('[models.a\nbackend = 1', "not valid TOML"),
    ('title = "x"', "[models.NAME]"),
])
def test_bad_models_files(tmp_path, text, words):
    path = tmp_path / "models.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_model_specs(str(path))


@pytest.mark.parametrize("text, words", [
    ("gpt-9", "unknown model"),
    ("", "nothing given"),
    ("expert,expert", "twice"),
    ("missing.toml", "not found"),
])
def test_bad_spec_lists(text, words):
    with pytest.raises(UserError, match=words):
        parse_model_specs(text)
