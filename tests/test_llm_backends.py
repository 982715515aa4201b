"""LLM backends against real things: the embedded SmolLM2 in llama.cpp, llama-cpp-python's
OpenAI-compatible server on 127.0.0.1, and a local server that injects faults."""

import json

import pytest

from shared_mcts.llm.backends import LlamaCppBackend, OpenAIBackend, smollm2_path
from shared_mcts.llm.caller import ModelCaller
from shared_mcts.models import ModelSpec
from shared_mcts.proposers.llm.parse import edits_from_answer, extract_json
from shared_mcts.proposers.llm.prompt import answer_schema, build_messages
from shared_mcts.space.knobs import CATEGORICAL, TILE, Knob

from .llm_servers import FaultServer, free_port, start_llama_server

KNOBS = {
    "c/j/tile": Knob("c/j/tile", TILE, (4, 4, 8), block="c", loop="j", extent=128, parts=3, max_innermost=64,
                     loop_kind="spatial", innermost_spatial=True),
    "root/unroll": Knob("root/unroll", CATEGORICAL, 0, choices=(0, 16, 64)),
}
MESSAGES = build_messages({"name": "matmul", "shapes": {"M": 128, "N": 128, "K": 128}, "flops": 4.2e6},
                          {"cores": 2, "simd_lanes_fp32": 16, "peak_gflops": 320}, KNOBS,
                          "for i, j, k in T.grid(128, 128, 128):\n    C[i, j] += A[i, k] * B[k, j]", [], 2)
SCHEMA = answer_schema(KNOBS, 2)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    port = free_port()
    proc = start_llama_server(smollm2_path(), port, tmp_path_factory.mktemp("server") / "server.log")
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def faults():
    server = FaultServer(slow_s=3.0)
    yield server
    server.close()


def test_embedded_smollm2_answers_schema_constrained_json():
    backend = LlamaCppBackend(smollm2_path())
    completion = backend.complete(MESSAGES, SCHEMA, max_tokens=200, temperature=0.7, timeout_s=120, seed=1)
    answer = extract_json(completion.text)
    edits, problems, _ = edits_from_answer(answer, 2)
    assert isinstance(answer, dict) and "edits" in answer, completion.text
    assert completion.tokens_source == "local" and completion.completion_tokens > 0
    assert 0 < completion.prompt_tokens <= backend.prompt_tokens(MESSAGES)  # the budget's bound holds
    # Same seed, same answer: a local run is reproducible.
    again = backend.complete(MESSAGES, SCHEMA, max_tokens=200, temperature=0.7, timeout_s=120, seed=1)
    assert again.text == completion.text


def test_openai_backend_against_a_real_llama_cpp_server(llama_server):
    spec = ModelSpec(name="srv", backend="openai", model="smollm2", base_url=llama_server, api_key_env="",
                     response_format="json_object", max_tokens=200, timeout_s=120)
    caller = ModelCaller(spec, OpenAIBackend(spec))
    result = caller.call(MESSAGES, SCHEMA, seed=3)
    assert result.text is not None, result.as_dict()
    attempt = result.attempts[0]
    assert attempt.ok and attempt.tokens_source == "provider" and attempt.prompt_tokens > 0
    assert attempt.prompt_tokens <= OpenAIBackend(spec).prompt_tokens(MESSAGES)
    answer = extract_json(result.text)
    assert isinstance(answer, dict) and "edits" in answer, result.text


def _fault_caller(url, **kw):
    spec = ModelSpec(**{"name": "f", "backend": "openai", "model": "fake", "base_url": url, "api_key_env": "",
                        "max_retries": 2, "timeout_s": 5.0, **kw})
    return ModelCaller(spec, OpenAIBackend(spec), sleep=lambda s: None)


@pytest.mark.parametrize("mode, kind, attempts", [
    ("500", "http_500", 3), ("429", "http_429", 3), ("garbage", "bad_response", 1)])
def test_faults_are_retried_or_not_and_recorded(faults, mode, kind, attempts):
    result = _fault_caller(faults.url(mode)).call(MESSAGES, SCHEMA, seed=0)
    assert result.text is None
    assert [a.error_kind for a in result.attempts] == [kind] * attempts
    assert faults.hits[mode] == attempts


def test_a_too_slow_endpoint_times_out_and_a_dead_one_fails_fast(faults):
    slow = _fault_caller(faults.url("slow"), timeout_s=0.5, max_retries=1).call(MESSAGES, SCHEMA, seed=0)
    assert [a.error_kind for a in slow.attempts] == ["timeout", "timeout"]
    dead = _fault_caller(f"http://127.0.0.1:{free_port()}/v1").call(MESSAGES, SCHEMA, seed=0)
    assert [a.error_kind for a in dead.attempts] == ["connection"] * 3


def test_usage_missing_is_estimated_and_answers_parse(faults):
    result = _fault_caller(faults.url("no-usage")).call(MESSAGES, SCHEMA, seed=0)
    assert result.attempts[0].tokens_source == "estimate"
    assert edits_from_answer(extract_json(result.text), 2)[0][0].changes == {"root/unroll": 16}


def test_the_api_key_never_reaches_the_record(faults, monkeypatch):
    secret = "sk-test-0123456789-secret"
    monkeypatch.setenv("SHARED_MCTS_TEST_KEY", secret)
    result = _fault_caller(faults.url("echo-key"), api_key_env="SHARED_MCTS_TEST_KEY").call(MESSAGES, SCHEMA, seed=0)
    record = json.dumps(result.as_dict())
    assert result.attempts[0].error_kind == "http_401"
    assert secret not in record and "***" in record


def test_any_gguf_file_is_a_local_model():
    from shared_mcts.llm.backends import make_backend
    from shared_mcts.proposers import model_specs

    backend = make_backend(model_specs([f"local:{smollm2_path()}"])[0])
    assert isinstance(backend, LlamaCppBackend) and backend.model_path == smollm2_path()
