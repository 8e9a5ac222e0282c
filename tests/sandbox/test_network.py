"""Network grants: nothing by default; an allow-list opens exactly what it names."""

from __future__ import annotations

import pytest

from codeact_kernel.sandbox.base import Grants
from codeact_kernel.sandbox.network import Rule


def test_no_network_by_default(sandbox, tools, http_server):
    result = sandbox.run(f"http_get('{http_server}/x')", tools)
    assert result.error.type == "PermissionError"
    assert "network access is off" in result.error.message


def test_an_allowed_domain_is_reachable(sandbox, tools, http_server):
    grants = Grants(allowed_domains={http_server.split("//")[1]: None})
    result = sandbox.run(
        f"r = http_get('{http_server}/hello')\nprint(r['status'], r['body'])\n"
        f"r = http_post('{http_server}/echo', {{'a': 1}})\nprint(r['status'], r['body'])",
        tools, grants=grants)
    assert result.ok, result.error
    assert result.stdout == "200 hello from /hello\n201 {\"a\": 1}\n"


def test_other_hosts_ports_and_methods_are_refused(sandbox, tools, http_server):
    port = int(http_server.rsplit(":", 1)[1])
    grants = Grants(allowed_domains={f"127.0.0.1:{port}": frozenset({"GET"})})
    program = (
        "for call in (lambda: http_post(URL + '/x', 'data'),\n"
        "             lambda: http_get('http://localhost:%d/x' % PORT),\n"
        "             lambda: http_get('http://127.0.0.1:%d/x' % (PORT + 1)),\n"
        "             lambda: http_get('file:///etc/passwd')):\n"
        "    try:\n        call()\n        print('reached')\n"
        "    except PermissionError as e:\n        print('refused:', e)\n"
    )
    result = sandbox.run(f"URL = {http_server!r}\nPORT = {port}\n" + program, tools, grants=grants)
    assert result.ok, result.error
    lines = result.stdout.splitlines()
    assert lines[0] == f"refused: POST 127.0.0.1:{port} is not in the allowed domains"
    assert lines[1] == f"refused: GET localhost:{port} is not in the allowed domains"
    assert lines[2].startswith("refused: GET 127.0.0.1:")
    assert lines[3].startswith("refused: only http(s) URLs")


def test_an_unreachable_allowed_host_is_an_os_error(sandbox, tools):
    grants = Grants(allowed_domains={"127.0.0.1:9": None})
    result = sandbox.run("http_get('http://127.0.0.1:9/')", tools, grants=grants)
    assert result.error.type == "OSError"
    assert "failed: GET http://127.0.0.1:9/" in result.error.message


@pytest.mark.parametrize(
    ("target", "url", "allowed"),
    [
        ("api.example.com", "https://api.example.com/v1", True),
        ("api.example.com", "https://evil.example.com/", False),
        ("https://api.example.com/v1", "https://api.example.com/v1/users", True),
        ("https://api.example.com/v1", "https://api.example.com/v10", False),
        ("https://api.example.com/v1", "http://api.example.com/v1", False),
        ("api.example.com:8443", "https://api.example.com/", False),
    ],
)
def test_rule_matching(target, url, allowed):
    from codeact_kernel.sandbox.network import HttpBroker

    assert (HttpBroker({target: None}).check("GET", url) is None) is allowed


def test_rules_become_hyperlight_urls():
    assert Rule.parse("api.example.com").urls() == ["http://api.example.com", "https://api.example.com"]
    assert Rule.parse("https://h:8443/v1/").urls() == ["https://h:8443/v1"]
    with pytest.raises(ValueError, match="only http and https"):
        Rule.parse("ftp://h")
