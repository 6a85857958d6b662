"""Admission settings: per-team limits, and what check-config says about them."""

from __future__ import annotations

from proxy.checks import check_settings
from proxy.config import load


def test_admission_limits_per_team() -> None:
    """Team overrides win over the section's defaults, field by field."""
    settings = load(
        None,
        {
            "MODELLIX_PROXY_ADMISSION__ENABLED": "true",
            "MODELLIX_PROXY_ADMISSION__TEAMS": "{studio: {concurrency: 2}}",
        },
    ).admission
    assert (settings.concurrency_of("studio"), settings.concurrency_of("other")) == (2, 3)
    assert settings.max_queue_of("studio") == settings.max_queue == 1000


def test_check_config_refuses_a_queue_that_could_not_send() -> None:
    """The queue sends with the proxy's own key: pass-through mode or no key is a problem."""
    problems = check_settings(load(None, {"MODELLIX_PROXY_ADMISSION__ENABLED": "true"}))
    assert any(p.startswith("admission.enabled:") for p in problems)
    fine = load(
        None,
        {
            "MODELLIX_PROXY_ADMISSION__ENABLED": "true",
            "MODELLIX_PROXY_KEYS__MODE": "virtual",
            "MODELLIX_PROXY_UPSTREAM__API_KEY": "sk-upstream",
        },
    )
    assert not [p for p in check_settings(fine) if p.startswith("admission")]
