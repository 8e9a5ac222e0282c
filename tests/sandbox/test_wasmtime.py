"""What only the wasmtime backend does: the fuller guest's standard library, its start-up limits."""

from __future__ import annotations

import pytest

from codeact_kernel.sandbox.base import Grants, Limits

STDLIB = ("json math re datetime statistics collections itertools functools heapq bisect string "
          "textwrap decimal fractions random dataclasses typing enum csv io base64 hashlib time "
          "operator copy pprint uuid").split()



def test_a_memory_limit_too_small_to_start_is_a_clear_error(wasmtime_sandbox, tools):
    from codeact_kernel.errors import SandboxError

    with pytest.raises(SandboxError, match="memory limit of 1 MB is too small"):
        wasmtime_sandbox.run("print(1)", tools, limits=Limits(memory_mb=1))
    assert wasmtime_sandbox.run("print(call_tool('add', 2, 3))", tools).stdout == "5\n"


def test_the_stdlib_models_use_imports_and_works(wasmtime_sandbox, tools):
    program = "import " + ", ".join(STDLIB) + "\n" + (
        "print(statistics.mean([1, 2, 3]), heapq.nlargest(1, [3, 9, 2]), string.ascii_lowercase[:3],\n"
        "      textwrap.shorten('a b c d e f', 5), datetime.date(2026, 1, 2).isoformat(),\n"
        "      decimal.Decimal('1.10') + 1, fractions.Fraction(1, 3) * 3, len(str(uuid.uuid4())),\n"
        "      hashlib.sha256(b'x').hexdigest()[:8], base64.b64encode(b'hi').decode())\n"
        "buf = io.StringIO(); csv.writer(buf).writerow([1, 'a']); print(buf.getvalue().strip())\n"
    )
    result = wasmtime_sandbox.run(program, tools)
    assert result.ok, result.error
    assert result.stdout == (
        "2 [9] abc [...] 2026-01-02 2.10 1 36 2d711642 aGk=\n1,a\n"
    )


def test_output_may_have_subdirectories(wasmtime_sandbox, tools):
    program = ("import os\nos.makedirs('/output/charts', exist_ok=True)\n"
               "open('/output/charts/a.svg', 'w').write('<svg/>')")
    result = wasmtime_sandbox.run(program, tools, grants=Grants(output=True))
    assert result.ok, result.error
    assert result.output_files == {"charts/a.svg": b"<svg/>"}
