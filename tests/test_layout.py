"""The package's structure: the model modules import one another at the top, in no circle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

MODEL = Path(__file__).resolve().parent.parent / "src" / "mlapi" / "model"


def test_no_model_module_imports_a_sibling_inside_a_function():
    # A function-local relative import is how a cycle gets hidden; third-party libraries may
    # still load lazily (onnx, sentencepiece: only the encoder kind needs them).
    found = []
    for path in sorted(MODEL.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found += [f"{path.name}:{inner.lineno}" for inner in ast.walk(node)
                          if isinstance(inner, ast.ImportFrom) and inner.level > 0]
    assert found == []


def test_each_model_module_imports_first_on_its_own():
    # Each one first, in a process where no other mlapi.model module is loaded yet: a circle
    # at the top would fail here with a partially initialised module.
    names = sorted(p.stem for p in MODEL.glob("*.py") if p.stem != "__init__")
    code = "\n".join([
        "import importlib, sys",
        f"for name in {names!r}:",
        "    for loaded in [m for m in sys.modules if m.startswith('mlapi.model')]:",
        "        del sys.modules[loaded]",
        "    importlib.import_module('mlapi.model.' + name)",
        "print('ok')",
    ])
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "ok"
