"""Test doubles that are real parts: a scripted OpenAI-compatible server on 127.0.0.1 and a
notebook frontend that drives a real kernel through jupyter_client.

The project's tests, benchmarks and notebook builder use them; so can anyone testing tools
or notebooks written for this kernel, without a model or a browser.
"""

from .frontend import Cell, Frontend
from .scripted_openai import ScriptedOpenAI

__all__ = ["Cell", "Frontend", "ScriptedOpenAI"]
