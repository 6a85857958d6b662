"""Key material is masked wherever it stands in text that reaches logs or traces."""

from __future__ import annotations

import pytest

from proxy.telemetry.redaction import redact_text, redact_value

KEY = "mlx-vk-0123456789abcdefghijklmnopqrstuv"


@pytest.mark.parametrize(
    "text",
    [
        f"/api/v1/tasks/{KEY}",
        f"/api/v1/models?api_key={KEY}",
        f"Bearer {KEY}",
        f"\\x7f{KEY}",
        "/api/v1/tasks/sk-live-0123456789abcdef",
    ],
)
def test_keys_in_paths_and_values_are_masked(text: str) -> None:
    """A proxy or Modellix key in a path, query or header value never survives redaction."""
    for masked in (redact_text(text), redact_value("url.path", text)):
        assert "0123456789" not in masked
        assert "[redacted]" in masked
