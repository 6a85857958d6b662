"""`check-config` and the admin CLI: every problem at once, one plain line per field."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.checks import all_problems
from proxy.cli import main

BAD = """\
listen: {port: 70000, tls_cert_file: /nonexistent/cert.pem, tls_key_file: /nonexistent/key.pem}
models: {unknown_fields: maybe, aliases: {acme/video: acme/not-a-model}}
pricing: {models: {acme-nothing: {unit: per_video, usd: '1.0'}}}
keys: {mode: virtual}
"""


def test_schema_and_semantic_problems_come_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Schema errors and the checks of the built parts are all reported by one run."""
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    assert main(["check-config", "-c", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "7 problem(s) found"
    fields = [line.removeprefix("error: ").split(":")[0] for line in lines[:-1]]
    assert fields == [
        "listen.port",
        "models.unknown_fields",
        "listen.tls_cert_file",
        "listen.tls_key_file",
        "keys.mode",
        "models.aliases",
        "pricing.models.acme-nothing",
    ]
    assert "(env MODELLIX_PROXY_LISTEN__PORT)" in lines[0]
    assert "https://errors.pydantic.dev" not in "\n".join(lines)


def test_problems_name_the_variable_that_set_the_value(tmp_path: Path) -> None:
    """A value from an override names its MODELLIX_PROXY_* variable."""
    environ = {
        "MODELLIX_PROXY_WATCHER__TICK_SECONDS": "-3",
        "MODELLIX_PROXY_STORE__URL": "mysql://db/x",
        "MODELLIX_PROXY_CONFIG": str(tmp_path / "missing.yaml"),
    }
    assert [str(p) for p in all_problems(None, environ)] == [
        f"(top level): {tmp_path / 'missing.yaml'}: cannot read (No such file or directory)"
    ]
    del environ["MODELLIX_PROXY_CONFIG"]
    assert [str(p) for p in all_problems(None, environ)] == [
        "watcher.tick_seconds: Input should be greater than 0 "
        "(set by MODELLIX_PROXY_WATCHER__TICK_SECONDS)",
        "store.url: use sqlite:///path.db or postgresql://user@host:port/db "
        "(set by MODELLIX_PROXY_STORE__URL)",
    ]


def test_admin_cli_errors_are_one_line_per_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad budget prints one plain line per option, no pydantic text or links."""
    monkeypatch.setenv("MODELLIX_PROXY_STORE__URL", f"sqlite:///{tmp_path / 'p.db'}")
    assert main(["budgets", "set", "b", "--scope", "team", "--limit-usd", "-3"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "error: --subject: a team budget needs a subject (the team it applies to)",
        "error: --limit-usd: Input should be greater than 0",
    ]
    assert main(["budgets", "set", "b", "--scope", "global", "--limit-usd", "3 dollars"]) == 2
    assert capsys.readouterr().err == "error: --limit-usd: not an amount of dollars: '3 dollars'\n"
