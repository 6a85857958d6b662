"""The pure parts of the door: model names to slugs, seconds and size to a model's fields,
refusals in OpenAI's shape, a job as a video (status, progress, expiry), and the
configuration check of the operator's model map."""

from __future__ import annotations

import json

import pytest

from proxy.catalog.from_settings import build_catalog
from proxy.checks import check_settings
from proxy.config import ModelSettings, OpenAIVideoModel, OpenAIVideosSettings, Settings
from proxy.errors import BudgetExceeded, InvalidInput
from proxy.openai_videos.content import pick
from proxy.openai_videos.errors import OpenAIError, upstream_refusal
from proxy.openai_videos.mapping import VideoModels
from proxy.openai_videos.objects import Timing, video
from proxy.openai_videos.remix import family_of, remix_models
from proxy.openai_videos.request import VideoRequest, from_fields
from proxy.stores.records import JobRecord, JobStatus

CATALOG, PINNER = build_catalog(ModelSettings())
SORA = OpenAIVideoModel(text="minimax/hailuo-2.3-t2v", image="minimax/hailuo-2.3-i2v")


def models(**settings: object) -> VideoModels:
    return VideoModels(OpenAIVideosSettings.model_validate(settings), CATALOG, PINNER.aliases)


@pytest.mark.parametrize(
    ("name", "image", "slug"),
    [
        ("hailuo-2.3", False, "minimax/hailuo-2.3-t2v"),
        ("hailuo-2.3", True, "minimax/hailuo-2.3-i2v"),
        ("kling-v3", True, "kling/kling-v3-i2v"),
        ("seedance-2.0", False, "bytedance/seedance-2.0-t2v"),
        ("minimax/hailuo-02-t2v", True, "minimax/hailuo-02-i2v"),
        ("hailuo-2.3-fast-i2v", True, "minimax/hailuo-2.3-fast-i2v"),
        ("sora-2", False, "minimax/hailuo-2.3-t2v"),
        ("sora-2", True, "minimax/hailuo-2.3-i2v"),
    ],
)
def test_model_names_resolve(name: str, image: bool, slug: str) -> None:
    """Operator names, slugs and bare catalog names resolve; a reference picks the i2v model."""
    assert models(models={"sora-2": SORA}).slug_for(name, image) == slug


def test_unknown_or_missing_models_are_refused() -> None:
    """An unknown name is 404 ``model_not_found``; none and no default is 400 on ``model``;
    the default model is used when configured."""
    with pytest.raises(OpenAIError) as unknown:
        models().slug_for("sora-2", False)
    assert (unknown.value.status, unknown.value.code) == (404, "model_not_found")
    with pytest.raises(OpenAIError) as missing:
        models().slug_for(None, False)
    assert (missing.value.status, missing.value.param) == (400, "model")
    assert models(default_model="hailuo-02").slug_for(None, False) == "minimax/hailuo-02-t2v"


@pytest.mark.parametrize(
    ("slug", "size", "fields"),
    [
        ("minimax/hailuo-2.3-t2v", "1280x720", {"resolution": "768P"}),
        ("minimax/hailuo-2.3-t2v", "1920x1080", {"resolution": "1080P"}),
        ("kling/kling-v3-t2v", "720x1280", {"mode": "std", "aspect_ratio": "9:16"}),
        ("kling/kling-v3-t2v", "1792x1024", {"mode": "pro", "aspect_ratio": "16:9"}),
        ("bytedance/seedance-2.0-t2v", "1280x720", {"resolution": "720p", "ratio": "16:9"}),
        ("bytedance/seedance-2.0-t2v", "3840x2160", {"resolution": "4k", "ratio": "16:9"}),
    ],
)
def test_sizes_map_onto_each_models_fields(slug: str, size: str, fields: dict[str, str]) -> None:
    """A size names the model's own resolution value (and ratio, where the model takes one)."""
    mapped = models().translate(VideoRequest(prompt="p", seconds="8", size=size), slug)
    assert mapped.body == {"prompt": "p", "duration": 8, **fields}
    assert (mapped.seconds, mapped.size) == ("8", size)
    assert mapped.params["duration"] == "seconds"


def test_a_size_the_model_lacks_is_refused_naming_what_it_takes() -> None:
    """Hailuo has no 480p: 400 on ``size`` listing the sizes that reach its resolutions."""
    with pytest.raises(OpenAIError) as refused:
        models().translate(VideoRequest(prompt="p", size="854x480"), "minimax/hailuo-2.3-t2v")
    assert refused.value.param == "size"
    assert "1280x720 or 720x1280 (768P)" in refused.value.detail


def test_defaults_show_the_models_own_duration_and_class() -> None:
    """Left out, seconds and size are the model's defaults as the video shows them."""
    mapped = models().translate(VideoRequest(prompt="p"), "kling/kling-v3-t2v")
    assert mapped.body == {"prompt": "p"}
    assert (mapped.seconds, mapped.size) == ("5", "1280x720")


def test_request_fields_are_checked() -> None:
    """Unknown fields, a missing prompt, a file_id and a reference that is no URL are 400s."""
    for fields, param in (
        ({"prompt": "p", "quality": "hd"}, "quality"),
        ({"model": "x"}, "prompt"),
        ({"prompt": "p", "input_reference": {"file_id": "f"}}, "input_reference.file_id"),
        ({"prompt": "p", "input_reference": "ftp://x"}, "input_reference"),
        ({"prompt": "p", "seconds": 8.5}, "seconds"),
    ):
        with pytest.raises(OpenAIError) as refused:
            from_fields(fields)
        assert refused.value.param == param
    assert from_fields({"prompt": "p", "seconds": 8}).seconds == "8"


def test_pipeline_refusals_in_openais_shape() -> None:
    """A validation refusal names the OpenAI parameter; a budget refusal is 429
    ``insufficient_quota`` that the SDK must not retry; the upstream's 429 keeps Retry-After."""
    invalid = InvalidInput(
        "duration must be one of 6, 10", errors=[{"field": "duration", "problem": "not 6 or 10"}]
    )
    wrapped = OpenAIError.wrap(invalid)
    doc = wrapped.envelope()
    assert wrapped.status == 400
    assert doc["error"]["param"] == "seconds"
    assert "seconds: not 6 or 10" in doc["error"]["message"]
    budget = OpenAIError.wrap(BudgetExceeded("no room in studio-a-day"))
    assert (budget.status, budget.headers["x-should-retry"]) == (429, "false")
    assert budget.envelope()["error"]["type"] == "insufficient_quota"
    limited = upstream_refusal(429, b'{"code":429,"message":"slow down"}', {"Retry-After": "3"})
    assert (limited.status, limited.code, limited.headers) == (
        429, "rate_limit_exceeded", {"Retry-After": "3"},
    )  # fmt: skip


def job(status: JobStatus, **fields: object) -> JobRecord:
    request = {"model": "hailuo-02", "prompt": "p", "seconds": "6", "size": "1280x720"}
    return JobRecord(
        task_id="t-1", caller="fp:x", pinned_slug="minimax/hailuo-02-t2v", submitted_at=1000.0,
        status=status, api="openai", api_ref="video_1", api_request=json.dumps(request),
        **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_status_progress_and_expiry() -> None:
    """Queued 0; in progress elapsed over typical (1..99); completed 100 with an expiry;
    failed carries the reason; unknown and expired read as failed with their own codes."""
    timing = Timing(now=1060.0, typical_seconds=120.0, retention_seconds=86400.0)
    assert (
        video(job(JobStatus.PENDING), timing)["status"],
        video(job(JobStatus.PENDING), timing)["progress"],
    ) == ("queued", 0)
    running = video(job(JobStatus.PROCESSING), timing)
    assert (running["status"], running["progress"]) == ("in_progress", 50)
    late = Timing(now=9999.0, typical_seconds=120.0, retention_seconds=86400.0)
    assert video(job(JobStatus.PROCESSING), late)["progress"] == 99
    done = video(job(JobStatus.SUCCESS, terminal_at=1100.0), timing)
    assert (done["status"], done["progress"], done["expires_at"]) == ("completed", 100, 87500)
    upstream = video(job(JobStatus.SUCCESS, terminal_at=1100.0), timing, expires_at=90000.0)
    assert upstream["expires_at"] == 90000
    failed = video(job(JobStatus.FAILED, error_reason="content policy"), timing)
    assert failed["error"] == {"code": "generation_failed", "message": "content policy"}
    for status, code in (
        (JobStatus.UNKNOWN, "submit_outcome_unknown"),
        (JobStatus.EXPIRED, "expired"),
    ):
        shown = video(job(status), timing)
        assert (shown["status"], shown["error"]["code"]) == ("failed", code)


def test_check_config_names_a_broken_model_map() -> None:
    """A mapped name with no target, or a target that is no slug, is reported by field."""
    settings = Settings.model_validate(
        {
            "openai_videos": {
                "models": {"a": {}, "b": {"text": "Not A Slug"}, "sora-2": SORA.model_dump()}
            }
        }
    )
    problems = [p for p in check_settings(settings) if p.startswith("openai_videos")]
    assert problems == [
        "openai_videos.models.a: needs text or image (or both)",
        "openai_videos.models.b.text: not a model slug (provider/model)",
    ]


def test_remix_models_default_to_the_catalogs_v2v_and_take_the_operators_map() -> None:
    """Each Seedance 2.0 tier remixes with its own v2v model; the operator adds a family,
    turns one off with an empty target, and check-config names a malformed entry."""
    settings = OpenAIVideosSettings.model_validate(
        {
            "remix_models": {
                "alibaba/wan2.7": "alibaba/wan2.7-videoedit",
                "bytedance/seedance-2.0-mini": "",
            }
        }
    )
    found = remix_models(settings, CATALOG)
    assert found["bytedance/seedance-2.0"] == "bytedance/seedance-2.0-v2v"
    assert found["bytedance/seedance-2.0-fast"] == "bytedance/seedance-2.0-fast-v2v"
    assert found["alibaba/wan2.7"] == "alibaba/wan2.7-videoedit"
    assert "bytedance/seedance-2.0-mini" not in found
    assert family_of("bytedance/seedance-2.0-fast-i2v") == "bytedance/seedance-2.0-fast"
    assert family_of("minimax/hailuo-02-fl2v") == "minimax/hailuo-02"
    broken = Settings.model_validate(
        {"openai_videos": {"remix_models": {"Bad Family": "x", "kling/kling-v3": "Not A Slug"}}}
    )
    assert [p for p in check_settings(broken) if p.startswith("openai_videos")] == [
        "openai_videos.remix_models.Bad Family: not a model family (provider/name)",
        "openai_videos.remix_models.Bad Family: not a model slug (provider/model)",
        "openai_videos.remix_models.kling/kling-v3: not a model slug (provider/model)",
    ]


def test_content_variants_pick_the_right_result_file() -> None:
    """The video is the task's video file; a thumbnail is an image returned beside it, none
    without one; a spritesheet is never a Modellix result."""
    video_only = job(JobStatus.SUCCESS, output_urls=("https://f.example/v.mp4",))
    both = job(
        JobStatus.SUCCESS, output_urls=("https://f.example/v.mp4", "https://f.example/c.JPG")
    )
    assert pick(video_only, "video") == "https://f.example/v.mp4"
    assert pick(video_only, "thumbnail") is None
    assert pick(both, "thumbnail") == "https://f.example/c.JPG"
    assert pick(both, "video") == "https://f.example/v.mp4"
    assert pick(both, "spritesheet") is None
