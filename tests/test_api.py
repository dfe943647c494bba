"""The package's shape: its public names, the imports between its modules, what `import sac_lit`
loads, and that no private name crosses a module boundary."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import sac_lit

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sac_lit"

PUBLIC = [
    "gaussian_entropy", "bernoulli_entropy", "soft_q_target", "TwinQ", "critic_loss",
    "polyak_update", "squashed_gaussian_log_prob", "SquashedGaussianActor", "ActionMap",
    "actor_loss", "temperature_loss", "Temperature", "ReplayBuffer", "Batch",
    "SACConfig", "SAC",
    "RunConfig", "Run", "Trainer", "Callback", "Evaluation", "ProgressBar", "Divergence",
    "evaluate", "make_env", "TrainingDiverged", "RunDir", "MetricsFiles", "Checkpoints",
    "train",
    "sweep", "BatchedSAC", "SeedList", "seeds_learner", "CompiledUpdate", "compiled",
    "EnvSpec", "TensorBoard", "BestModel", "EarlyStop", "export_policy", "record_video",
    "BatchRenorm", "CrossQConfig", "CrossQ",
]


def test_the_public_names_are_the_rl_api():
    assert sac_lit.__all__ == PUBLIC
    for name in PUBLIC:
        assert callable(getattr(sac_lit, name)), name
    # the book's exhibits stay importable from their chapters' modules
    from sac_lit.entropy import entropy                     # noqa: F401
    from sac_lit.gaussian import LOG_STD_MAX, rsample       # noqa: F401
    from sac_lit.speed import matmul_gflops, roofline       # noqa: F401
    from sac_lit.sweep import iqm, iqm_ci                    # noqa: F401
    from sac_lit.values import soft_value_iteration          # noqa: F401


def test_the_command_line_exports_only_main():
    import sac_lit.cli
    assert sac_lit.cli.__all__ == ["main"]


def imports_of(path: Path) -> set[str]:
    "The sac_lit modules a module imports (relative imports, as nbdev writes them)."
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.add(node.module or "")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sac_lit."):
            found.add(node.module.split(".", 1)[1])
    return found - {""}


def test_no_import_cycle_among_the_modules():
    graph = {p.stem: imports_of(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " -> ".join(path + [module])
        state[module] = "open"
        for other in graph.get(module, ()):
            visit(other, path + [module])
        state[module] = "done"

    for module in graph:
        visit(module, [])
    assert "cli" not in set().union(*(imports for name, imports in graph.items()
                                      if name not in ("cli", "__main__")))


def test_no_private_name_crosses_a_module():
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                    "sac_lit")):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, (path.name, private)


def test_import_sac_lit_loads_no_ray_scipy_or_command_line():
    code = ("import sys, sac_lit; print(sorted(m for m in ('ray', 'scipy', 'sac_lit.cli') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, timeout=300).stdout
    assert out.strip() == "[]"
