"""Settings from the environment: validated, with messages that name what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeact_kernel.config import Config, ceiling
from codeact_kernel.errors import ConfigError


def test_environment_overrides_defaults():
    config = Config().with_env({
        "OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "CODEACT_MODEL": "llama3",
        "CODEACT_APPROVAL": "AUTO", "CODEACT_SANDBOX": "wasmtime", "CODEACT_TIMEOUT": "5",
        "CODEACT_TRANSCRIPT": "~/t.jsonl",
    })
    assert (config.model, config.approval, config.sandbox, config.timeout) == ("llama3", "auto", "wasmtime", 5.0)
    assert config.base_url == "http://127.0.0.1:11434/v1" and config.api_key == "sk-x"
    assert config.transcript == Path("~/t.jsonl").expanduser()
    assert "sk-x" not in repr(config)
    assert Config().guest == "auto" and Config().with_env({"CODEACT_GUEST": " Science"}).guest == "science"


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("CODEACT_APPROVAL", "sometimes", "approval must be one of ask, auto, reject, recorded"),
    ("CODEACT_SANDBOX", "docker", "sandbox must be one of auto, hyperlight, wasmtime"),
    ("CODEACT_GUEST", "gpu", "the guest must be one of auto, standard, science"),
    ("CODEACT_TIMEOUT", "soon", "CODEACT_TIMEOUT must be a number of seconds"),
    ("CODEACT_TIMEOUT", "-1", "CODEACT_TIMEOUT must be positive"),
])
def test_bad_values_are_refused_with_the_choices(variable, value, message):
    with pytest.raises(ConfigError, match=message):
        Config().with_env({variable: value})


def test_replay_and_limits():
    config = Config(model="replay:notebooks/quickstart.jsonl", timeout=7, allowed_domains={"h": None})
    assert config.replay_path() == Path("notebooks/quickstart.jsonl")
    assert config.limits().timeout == 7 and config.grants().allowed_domains == {"h": None}
    assert Config().replay_path() is None


def test_the_deployers_ceiling_comes_from_the_environment_or_system_config(tmp_path):
    system = tmp_path / "etc-jupyter"
    system.mkdir()
    assert ceiling({}, [str(system)]) is None
    (system / "codeact.json").write_text('{"approval_max": "recorded"}')
    assert ceiling({}, [str(system)]) == ("recorded", f"approval_max in {system / 'codeact.json'}")
    policy, source = ceiling({"CODEACT_APPROVAL_MAX": "ask"}, [str(system)])  # the strictest wins
    assert policy == "ask" and source.startswith("CODEACT_APPROVAL_MAX in the kernel's environment")
    with pytest.raises(ConfigError, match="must be one of"):
        ceiling({"CODEACT_APPROVAL_MAX": "lenient"}, [])


def test_no_setting_passes_the_ceiling():
    config = Config(approval_max="ask", approval_max_source="CODEACT_APPROVAL_MAX in the kernel's environment")
    with pytest.raises(ConfigError, match="'auto' is not allowed here: CODEACT_APPROVAL_MAX in the kernel's "
                                          "environment sets the most permissive policy to 'ask'"):
        config.with_env({"CODEACT_APPROVAL": "auto"})
    assert config.with_env({"CODEACT_APPROVAL": "reject"}).approval == "reject"
