"""Issue-15 diagnosis: re-measure the final schedules of 'anomalous' cells (re-measure >= 1.4x the
search's best) and of as many normal ones, twice each, with the FMA probe beside the samples."""
import json, sys, time
from pathlib import Path
import tvm
from tvm.script import from_source
from shared_mcts.bench.matrix import Cell
from shared_mcts.measure.remeasure import remeasure

TARGET = {"kind": "llvm", "mcpu": "znver5", "num-cores": 2}
rows = []
for folder in ["structural", "structural-models", "stock64"]:
    for line in open(f"/work/runs/{folder}/results.jsonl"):
        r = json.loads(line)
        if r.get("status") == "ok" and r.get("search_best_s") and r.get("remeasure"):
            rows.append((r["latency_s"] / r["search_best_s"], folder, r))
rows.sort(key=lambda x: -x[0])
bad = [x for x in rows if x[0] >= 1.4][: int(sys.argv[1])]
good = [x for x in rows if x[0] < 1.1 and "mlp" in x[2]["cell"]["workload"]][: int(sys.argv[1]) // 2]
for ratio, folder, r in bad + good:
    c = r["cell"]
    cell = Cell(c["workload"], c["method"], c["trials"], c["seed"])
    text = (Path(f"/work/runs/{folder}/cells") / cell.dirname / "best.py").read_text()
    mod = from_source(text)
    mod = mod if isinstance(mod, tvm.IRModule) else tvm.IRModule({"main": mod})
    for attempt in range(2):
        again = remeasure(mod, TARGET, repeat=10)
        print(json.dumps({"folder": folder, "cell": cell.key, "ratio_then": round(ratio, 2),
                          "search_best_ms": round(r["search_best_s"] * 1e3, 4), "then_ms": round(r["latency_s"] * 1e3, 4),
                          "now_ms": round(again.median_s * 1e3, 4), "now_min_max_ms": [round(again.min_s * 1e3, 4), round(again.max_s * 1e3, 4)],
                          "probe_gflops": [round(g) for g in again.machine_gflops], "at": time.strftime("%H:%M:%S")}), flush=True)
