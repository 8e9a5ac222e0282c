"""The comm protocol is declared once: extension/src/protocol.ts is generated from
codeact_kernel/protocol.py, and this test fails when the two differ (in either direction:
an edit on the TypeScript side shows up here as well)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from codeact_kernel import comm, protocol
from codeact_kernel.views import extension

GENERATED = Path(__file__).resolve().parents[1] / "extension" / "src" / "protocol.ts"


def test_the_typescript_declarations_are_the_python_ones():
    assert GENERATED.read_text() == protocol.typescript(), (
        "extension/src/protocol.ts is out of date: .venv/bin/python -m codeact_kernel.protocol > "
        "extension/src/protocol.ts")


def test_every_message_the_kernel_sends_is_declared():
    declared = {name for name, value in vars(protocol).items() if isinstance(value, type) and issubclass(value, dict)}
    for module in (comm, extension):
        built = {node.func.id for node in ast.walk(ast.parse(inspect.getsource(module)))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id[:1].isupper()}
        assert built & declared, module.__name__
        assert not {name for name in built if name.endswith(("Info", "Card", "Decision"))} - declared


def test_the_protocol_module_imports_nothing_of_the_kernel():
    tree = ast.parse(inspect.getsource(protocol))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert imported <= {"typing", "ast", "inspect", "sys", "types"}
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level > 0]
