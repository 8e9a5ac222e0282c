"""Choosing a backend: the probe's verdict, its reason, the override, the clear error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from codeact_kernel.errors import SandboxError, SandboxUnavailable
from codeact_kernel.sandbox import selection


def test_the_probe_answers_quickly_with_a_reason():
    probe = selection.cached_probe()
    assert isinstance(probe.ok, bool) and probe.reason
    assert selection.cached_probe() is probe  # once per process


def test_auto_falls_back_to_wasmtime_and_says_why(monkeypatch):
    probe = selection.cached_probe()
    if probe.ok:
        pytest.skip("Hyperlight boots on this machine, so auto picks it")
    monkeypatch.delenv("CODEACT_SANDBOX", raising=False)
    choice = selection.choose()
    assert choice.sandbox.name == "wasmtime"
    assert probe.reason in choice.reason
    choice.sandbox.close()


def test_asking_for_hyperlight_where_it_cannot_boot_is_a_clear_error(monkeypatch):
    probe = selection.cached_probe()
    if probe.ok:
        pytest.skip("Hyperlight boots on this machine")
    monkeypatch.setenv("CODEACT_SANDBOX", "hyperlight")
    with pytest.raises(SandboxUnavailable) as info:
        selection.choose()
    assert info.value.reason == probe.reason
    assert "CODEACT_SANDBOX=auto" in str(info.value)


def test_an_unknown_backend_is_refused():
    with pytest.raises(SandboxError, match="choose one of auto, hyperlight, wasmtime"):
        selection.choose("docker")


def test_the_probe_recognises_a_vm_exit():
    # What hyperlight-sandbox prints on a nested PVM host (recorded in shared notes).
    stderr = ("RuntimeError: Failed to create sandbox: failed to load Wasm runtime: Internal "
              "Hyperlight VM error: Initialize error: Failed to run vm: Unexpected VM exit: "
              "Unknown KVM VCPU exit: InternalError")
    assert selection.explain(stderr).startswith("the VM started but this hypervisor cannot run it")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not os.path.exists("/dev/kvm"),
                    reason="hiding /dev/kvm for real needs root, unshare and a /dev/kvm to hide")
def test_the_probe_detects_a_missing_hypervisor_for_real():
    # Mount /dev/null over /dev/kvm in a private mount namespace: Hyperlight finds no hypervisor.
    code = "from codeact_kernel.sandbox.selection import probe_hyperlight as p; print(p().reason)"
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", f'mount --bind /dev/null /dev/kvm && exec "{sys.executable}" -c "{code}"'],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("no hypervisor"), proc.stdout
