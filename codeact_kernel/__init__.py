"""codeact-kernel: a Jupyter kernel where each cell is a prompt answered by one sandboxed program."""

__version__ = "0.1.0"

from .tools import tool  # noqa: E402

__all__ = ["__version__", "tool"]
