"""Display prices in the model list, and the actual charge reported on the task."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from proxy.simulator import ManualClock, Simulator
from proxy.simulator.pricing import audio_seconds
from tests.simulator.conftest import Client, MakeClient, poll, submit

SimClient = tuple[Simulator, Client]
WEEK_MS = 7 * 86400 * 1000


async def _models(client: Client, query: str = "") -> dict[str, dict[str, Any]]:
    response = await client.get(f"/api/v1/models{query}")
    assert response.status == 200
    return {item["slug"]: item for item in (await response.json())["models"]}


async def _finished(
    client: Client, clock: ManualClock, slug: str, body: dict[str, Any]
) -> dict[str, Any]:
    task_id = (await submit(client, body, f"/api/v1/{slug}"))["data"]["task_id"]
    clock.advance(60)
    status, answer = await poll(client, task_id)
    assert status == 200
    return answer


async def test_model_list_items_carry_display_prices(sim_client: SimClient) -> None:
    """Each item's ``price`` is a fixed figure or a min-max range, in JSON numbers, with a unit."""
    _, client = sim_client
    models = await _models(client)
    assert models["kling/kling-v3-t2v"]["price"] == {"fixed": 0.1, "unit": "$/sec"}
    assert models["minimax/hailuo-2.3-t2v"]["price"] == {"min": 0.054, "max": 0.12, "unit": "$/sec"}
    assert models["minimax/hailuo-2.3-fast-i2v"]["price"] == {
        "min": 0.04,
        "max": 0.08,
        "unit": "$/sec",
    }
    assert models["minimax/hailuo-02-i2v"]["price"] == {"min": 0.02, "max": 0.12, "unit": "$/sec"}
    assert models["bytedance/seedance-2.0-t2v"]["price"] == {
        "min": 0.05,
        "max": 0.4,
        "unit": "$/sec",
    }
    assert models["google/nano-banana-2-lite"]["price"] == {"fixed": 0.02, "unit": "$/img"}
    assert models["alibaba/qwen-audio-3.0-tts-flash"]["price"] == {"fixed": 10, "unit": "$/M chars"}
    assert models["openai/whisper-1"]["price"] == {"fixed": 0.0001, "unit": "$/sec"}
    for slug, item in models.items():
        price = item["price"]
        numbers = [v for k, v in price.items() if k != "unit"]
        assert numbers, slug
        assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers)
        assert set(price) in ({"fixed", "unit"}, {"min", "max", "unit"}), slug
        assert price["unit"] in ("$/sec", "$/img", "$/M chars"), slug


async def test_featured_lists_only_featured_models(sim_client: SimClient) -> None:
    """``?featured=true`` lists the featured subset: at least the official plugin's defaults."""
    _, client = sim_client
    everything = await _models(client)
    featured = await _models(client, "?featured=true")
    assert {
        "google/nano-banana-2-lite",
        "google/nano-banana-2-lite-edit",
        "bytedance/seedance-2.0-mini-t2v",
    } <= set(featured)
    assert set(featured) < set(everything)
    assert len(featured) >= 5
    assert set(await _models(client, "?featured=false")) == set(everything)


async def test_success_carries_billing_duration_expiry_and_shape(
    sim_client: SimClient, clock: ManualClock
) -> None:
    """A success reports the amount billed (4 decimals), duration ms, expiry and 1366x768 mp4."""
    sim, client = sim_client
    answer = await _finished(client, clock, "minimax/hailuo-2.3-t2v", {"prompt": "x"})
    data = answer["data"]
    task = sim.tasks[data["task_id"]]
    assert data["billing"] == {"status": "succeeded", "amount": "0.3240"}
    assert data["duration"] == round((task.done_at - task.created_at) * 1000)
    assert isinstance(data["duration"], int)
    assert data["result_expires_at"] == round(task.done_at * 1000) + WEEK_MS
    (resource,) = data["result"]["resources"]
    assert (resource["width"], resource["height"], resource["format"]) == (1366, 768, "mp4")
    assert sim.billing_records()[0].amount_micros == 324_000


async def test_amount_is_rounded_half_up_and_billed_exactly(
    make_client: MakeClient, clock: ManualClock
) -> None:
    """5 s at $0.01549/s is $0.07745: reported "0.0775" and billed 77,500 micro-dollars."""
    sim, client = await make_client(prices={"kling/kling-v3-t2v": Decimal("0.01549")})
    answer = await _finished(client, clock, "kling/kling-v3-t2v", {"prompt": "x"})
    assert answer["data"]["billing"]["amount"] == "0.0775"
    assert [r.amount_micros for r in sim.billing_records()] == [77_500]
    billing = await (await client.get("/_sim/billing")).json()
    assert billing["total_micros"] == 77_500
    balance = await (await client.get("/api/v1/team/balance")).json()
    assert balance["data"]["balance"] == 99.9225


@pytest.mark.parametrize(
    ("slug", "body", "shape"),
    [
        ("bytedance/seedream-4.5-t2i", {"prompt": "x"}, ("image", "jpeg", 2048, 2048)),
        (
            "google/nano-banana-2-lite",
            {"prompt": "x", "aspectRatio": "16:9", "imageSize": "2K"},
            ("image", "png", 2048, 1152),
        ),
        ("openai/gpt-image-2", {"prompt": "x", "size": "1536x1024"}, ("image", "png", 1536, 1024)),
        (
            "bytedance/seedance-2.0-mini-t2v",
            {"prompt": "x", "ratio": "9:16", "resolution": "480p"},
            ("video", "mp4", 480, 854),
        ),
        (
            "bytedance/seedance-2.0-t2v",
            {"prompt": "x", "resolution": "4k"},
            ("video", "mp4", 3840, 2160),
        ),
        ("alibaba/wan2.7-t2v", {"prompt": "x", "ratio": "1:1"}, ("video", "mp4", 1080, 1080)),
    ],
)
async def test_resources_have_format_and_dimensions(
    sim_client: SimClient,
    clock: ManualClock,
    slug: str,
    body: dict[str, Any],
    shape: tuple[str, str, int, int],
) -> None:
    """Resources carry type, format, width and height derived from the request."""
    _, client = sim_client
    answer = await _finished(client, clock, slug, body)
    resource = answer["data"]["result"]["resources"][0]
    assert (resource["type"], resource["format"], resource["width"], resource["height"]) == shape
    extension = "jpg" if shape[1] == "jpeg" else shape[1]
    assert resource["url"].endswith(f".{extension}")


async def test_failed_task_carries_billing_only_when_billed(
    make_client: MakeClient, clock: ManualClock
) -> None:
    """A failed task has no billing, unless failed tasks are billed (then it shows the charge)."""
    for bill_failed, expected in (
        (False, None),
        (True, {"status": "succeeded", "amount": "0.3240"}),
    ):
        _, client = await make_client(bill_failed=bill_failed)
        answer = await _finished(
            client, clock, "minimax/hailuo-2.3-t2v", {"prompt": "[sim:task_failed]"}
        )
        assert answer["data"]["status"] == "failed"
        assert answer["data"].get("billing") == expected


async def test_billing_can_be_left_out_of_answers(
    make_client: MakeClient, clock: ManualClock
) -> None:
    """With ``report_billing`` off the answer has no billing field, yet the task is billed."""
    sim, client = await make_client(report_billing=False)
    answer = await _finished(client, clock, "minimax/hailuo-2.3-t2v", {"prompt": "x"})
    assert answer["data"]["status"] == "success"
    assert "billing" not in answer["data"]
    assert sim.billed_total_micros() == 324_000


@pytest.mark.parametrize(
    ("slug", "body", "amount", "shape"),
    [
        (
            "alibaba/qwen-audio-3.0-tts-flash",
            {"text": "x" * 2345},
            "0.0235",  # 2,345 characters at $10 per million
            ("audio", "wav"),
        ),
        (
            "openai/whisper-1",
            {"audio_url": "https://example.com/talk.mp3?duration=90.2"},
            "0.0091",  # 91 s at $0.0001/s
            ("text", "json"),
        ),
        (
            "alibaba/cosyvoice-clone",
            {"audio_url": "https://example.com/me.wav", "text": "y" * 1000, "format": "wav"},
            "0.0250",
            ("audio", "wav"),
        ),
    ],
)
async def test_audio_models_bill_characters_or_input_seconds(
    sim_client: SimClient,
    clock: ManualClock,
    slug: str,
    body: dict[str, Any],
    amount: str,
    shape: tuple[str, str],
) -> None:
    """TTS and cloning bill per million characters of text, STT per second of input audio."""
    _, client = sim_client
    answer = await _finished(client, clock, slug, body)
    assert answer["data"]["billing"]["amount"] == amount
    resource = answer["data"]["result"]["resources"][0]
    assert (resource["type"], resource["format"]) == shape
    assert "width" not in resource


def test_input_audio_length_is_deterministic_and_bounded() -> None:
    """Without ``duration=`` the URL's hash picks 1-600 s, the same every time."""
    urls = [f"https://example.com/{i}.mp3" for i in range(200)]
    lengths = [audio_seconds(url) for url in urls]
    assert lengths == [audio_seconds(url) for url in urls]
    assert all(1 <= n <= 600 for n in lengths)
    assert len(set(lengths)) > 50
    assert audio_seconds("https://x/a.mp3?duration=0.2") == 1
    assert audio_seconds("https://x/a.mp3?duration=9999") == 600
    assert audio_seconds("https://x/a.mp3?duration=12") == 12
