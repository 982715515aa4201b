"""Run folders never lose data: a folder that is not ours is refused untouched, `tune` without
--out makes a fresh folder, and the README's stock-TVM recipe applies what a real run found."""

import re
import subprocess
import sys
import time

from .conftest import DATA

REPO = DATA.parent.parent
MATMUL = f"{DATA / 'small_matmul.py'}:matmul"


def _tree(root):
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def test_a_folder_of_the_user_is_refused_by_a_real_process_and_left_untouched(tmp_path):
    mine = tmp_path / "mine"
    (mine / "database").mkdir(parents=True)
    (mine / "database" / "database_tuning_record.json").write_text('{"theirs": 1}\n')
    for name in ("best.py", "summary.json.bak", "tree.json.old"):
        (mine / name).write_text(f"the user's {name}\n")
    before = _tree(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "shared_mcts", "tune", MATMUL, "--models", "expert,mutate",
                           "--trials", "4", "--out", str(mine)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "is not empty and holds no tuning run" in proc.stderr
    assert _tree(tmp_path) == before


def test_fresh_folders_are_unique_within_one_second(tmp_path, monkeypatch):
    from shared_mcts.paths import claim_new_folder

    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20250101-120000")
    first, second = (claim_new_folder(tmp_path / "runs", "tests/data/small_matmul.py:matmul") for _ in range(2))
    assert first.name == "small_matmul-matmul-20250101-120000" and second.name == first.name + "-2"
    assert first.is_dir() and second.is_dir()


def test_tune_without_out_then_the_readme_recipe_applies_the_run_with_stock_tvm(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "shared_mcts", "tune", MATMUL, "--models", "expert,mutate",
                           "--trials", "4", "--remeasure-repeat", "1"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = re.search(r"run folder (runs/small_matmul-matmul-\d{8}-\d{6})\n", proc.stderr)
    assert said, proc.stderr
    run = tmp_path / said.group(1)
    assert f"run folder: {said.group(1)}" in proc.stdout and (run / "summary.json").is_file()

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Using a run's schedule with stock TVM"):]
    begin = section.index("```python\n") + len("```python\n")
    recipe = section[begin:section.index("\n```", begin)]
    assert "shared_mcts" not in recipe.replace("(no shared_mcts import)", "")
    script = tmp_path / "apply_best.py"
    script.write_text(recipe + '\nassert "shared_mcts" not in sys.modules\n')
    applied = subprocess.run([sys.executable, str(script), str(run)], capture_output=True, text=True, cwd=REPO)
    assert applied.returncode == 0, applied.stderr[-2000:]
    assert re.fullmatch(r"best schedule: [\d.]+ us\n", applied.stdout), applied.stdout
