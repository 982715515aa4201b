"""`shared-mcts show`: tree picture, HTML page and model table from a run folder (no TVM)."""

import json

from shared_mcts.search.tree import ROOT, Tree


def _run_folder(tmp_path):
    tree = Tree()
    a = tree.add_child(ROOT, None, "sample", {})
    tree.record(a.id, 4e-3)
    b = tree.add_child(a.id, None, "local:smollm2", {"root/unroll": 16}, "<script>alert(1)</script>")
    tree.record(b.id, 2e-3)
    c = tree.add_child(a.id, None, "expert", {"c/j/tile": [2, 8, 8]}, "register tile")
    tree.record(c.id, None, "build: failed")
    d = tree.add_child(b.id, None, "expert", {"c/j/tile": [4, 4, 8]})
    tree.record(d.id, 1e-3)
    (tmp_path / "tree.json").write_text(json.dumps(tree.as_dict()))
    summary = {"workload": "w", "best_latency_s": 1e-3, "best_proposer": "expert", "trials": 4, "router": "bandit",
               "per_model": {"expert": {"expansions": 2, "calls": 2, "edits": 4, "valid_edits": 3, "measured": 2,
                                        "new_bests": 1, "dollars": 0.5}}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    return tmp_path


def test_show_draws_the_tree_and_escapes_model_text(tmp_path, run_cli):
    run = _run_folder(tmp_path)
    code, out, err = run_cli("show", run)
    assert code == 0, err
    assert "expert" in out and "75% of 4" in out
    page = (run / "tree.html").read_text()
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert page.count("<circle") == 5 and 'stroke-width="3"' in page  # the path to the best is thick
    assert (run / "tree.png").stat().st_size > 1000


def test_show_on_a_folder_without_a_run(tmp_path, run_cli):
    code, _, err = run_cli("show", tmp_path)
    assert code == 2 and "no finished tuning run" in err
