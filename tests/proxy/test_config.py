"""Configuration: file plus environment, every problem reported with its field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli import main
from proxy.config import ConfigError, load


def test_file_then_environment_overrides(tmp_path: Path) -> None:
    """Environment overrides (MODELLIX_PROXY_, __ nesting) win over the file."""
    path = tmp_path / "proxy.yaml"
    path.write_text("listen: {port: 9000}\nupstream: {origin: 'http://127.0.0.1:1'}\n")
    settings = load(
        path, {"MODELLIX_PROXY_LISTEN__PORT": "9001", "MODELLIX_PROXY_ADMIN__TOKEN": "007"}
    )
    assert settings.listen.port == 9001
    assert settings.upstream.origin == "http://127.0.0.1:1"
    assert settings.admin_token() == "007"


def test_every_problem_is_listed_with_its_path(tmp_path: Path) -> None:
    """A bad file reports each wrong field by path, not only the first."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "listen: {port: 99999}\nupstream: {origin: 'https://api.modellix.ai/v1'}\n"
        "models: {policy: lenient}\nbogus: 1\n"
    )
    with pytest.raises(ConfigError) as info:
        load(path, {})
    text = "\n".join(info.value.problems)
    for where in ("listen.port", "upstream", "models.policy", "bogus"):
        assert where in text


def test_secret_from_file(tmp_path: Path) -> None:
    """Secrets can come from a file instead of the config."""
    secret = tmp_path / "token"
    secret.write_text("from-a-file\n")
    settings = load(None, {"MODELLIX_PROXY_ADMIN__TOKEN_FILE": str(secret)})
    assert settings.admin_token() == "from-a-file"


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``check-config`` exits 1 listing problems, 0 for a good file."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: {port: -1}\nmodels: {unknown_fields: maybe}\n")
    assert main(["check-config", "-c", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "listen.port" in out
    assert "models.unknown_fields" in out
    good = tmp_path / "good.yaml"
    good.write_text("listen: {port: 8080}\n")
    assert main(["check-config", "-c", str(good)]) == 0
    assert "configuration OK" in capsys.readouterr().out


def test_not_yaml_is_a_clear_error(tmp_path: Path) -> None:
    """A file that is not YAML (or not a mapping) is refused with a plain message."""
    path = tmp_path / "x.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load(path, {})


def test_check_config_finds_problems_only_the_parts_see(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Aliases to missing models, prices for non-slugs and missing files are reported."""
    path = tmp_path / "semantic.yaml"
    path.write_text(
        "models: {aliases: {acme/video: acme/not-a-model}}\n"
        "pricing: {models: {acme-nothing: {unit: per_video, usd: '1.0'}}}\n"
        "listen: {tls_cert_file: /nonexistent/cert.pem, tls_key_file: /nonexistent/key.pem}\n"
    )
    assert main(["check-config", "-c", str(path)]) == 1
    out = capsys.readouterr().out
    assert "models.aliases" in out
    assert "pricing.models.acme-nothing" in out
    assert "listen.tls_cert_file" in out


def test_words_yaml_would_turn_into_booleans_stay_words() -> None:
    """``off`` in an override is a preflight mode, not YAML 1.1 false; true/false stay booleans."""
    settings = load(
        None,
        {
            "MODELLIX_PROXY_MODELS__PREFLIGHT__MODE": "off",
            "MODELLIX_PROXY_WATCHER__ENABLED": "false",
        },
    )
    assert settings.models.preflight.mode == "off"
    assert settings.watcher.enabled is False


def test_virtual_keys_without_an_upstream_key_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Virtual-key mode needs the upstream key the proxy injects."""
    path = tmp_path / "vk.yaml"
    path.write_text("keys: {mode: virtual}\n")
    assert main(["check-config", "-c", str(path)]) == 1
    assert "keys.mode" in capsys.readouterr().out
