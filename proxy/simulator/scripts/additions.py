"""What the simulator's upstream accepts beyond the copied reference catalog.

Written in the reference catalog's own parameter format (``name``, ``type``,
``required``, ``enum``, ``min``/``max``, ``min_length``/``max_length``,
``min_items``/``max_items``, ``pattern``, ``default``, ``note``), so ``build_schemas``
translates these exactly like the reference's entries.

- ``PATCHES``: parameters added to (or replacing, by name) a reference model's list:
  the fields the upstream accepts today that the proxy's older catalog does not
  (``fps`` on the Seedance 2.0 family, ``512P`` on Hailuo 02 i2v), and the defaults the
  reference did not capture, set to what the simulator bills when a field is absent
  (its published default *is* its billing default).
- ``EXTRA_MODELS``: models the reference does not describe: the image models Modellix's
  own clients use, three "unspecified" models (listed and served, no spec in the
  proxy's catalog), and further video and audio families.
- ``EXAMPLES``: a model's minimal example body where the generic one would not do.

These are the simulator's own figures and field lists; where a real Modellix page was
seen (Seedance 1.0/1.5, the Seedance 2.0 api_schema documents) they follow it.
"""

from __future__ import annotations

from typing import Any

Param = dict[str, Any]


def p(name: str, type_: str, *, required: bool = False, **facts: Any) -> Param:
    """One parameter in the reference format."""
    return {"name": name, "type": type_, "required": required, **facts}


def prompt(max_length: int = 2000, *, required: bool = True) -> Param:
    return p("prompt", "string", required=required, min_length=1, max_length=max_length)


SEED_RANGE: dict[str, Any] = {"min": -1, "max": 2147483647}
RATIOS = ["21:9", "16:9", "4:3", "1:1", "3:4", "9:16"]
GEMINI_RATIOS = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
GEMINI_SIZES = ["1K", "2K", "4K"]
OPENAI_SIZES = ["auto", "1024x1024", "1536x1024", "1024x1536"]
QWEN_VOICES = ["Cherry", "Ethan", "Serena", "Chelsie", "Dylan", "Jada", "Sunny"]

_SEEDANCE_2 = [
    f"bytedance/seedance-2.0{tier}-{kind}"
    for kind in ("t2v", "i2v", "v2v")
    for tier in ("", "-fast", "-mini")
]
_SEEDANCE_2_EXTRA = [
    p("ratio", "string", enum=RATIOS, default="16:9"),
    p("resolution", "string", enum=None, default="720p"),  # enum kept from the reference
    p("fps", "integer", enum=[24], default=24, note="Frames per second of the output video."),
]

PATCHES: dict[str, list[Param]] = {
    **{slug: _SEEDANCE_2_EXTRA for slug in _SEEDANCE_2},
    "minimax/hailuo-02-i2v": [
        p("resolution", "string", enum=["512P", "768P", "1080P"], default="768P"),
    ],
    "alibaba/wan2.7-i2v": [
        p(
            "first_frame",
            "string",
            pattern="^(https?://|oss://|data:image/)",
            note="First frame image. One of first_frame or first_clip is required.",
        ),
        p("duration", "integer", min=2, max=15, default=5),
    ],
    "alibaba/wan2.7-r2v": [p("resolution", "string", default="1080P")],
    "alibaba/wan2.7-image": [
        p(
            "n",
            "integer",
            min=1,
            max=12,
            default=4,
            note="Images to generate (default 4; 12 when enable_sequential is true).",
        ),
    ],
    "kling/kling-v3-omni-video": [p("duration", "integer", enum=list(range(3, 16)), default=5)],
    "kling/kling-video-o1": [p("duration", "integer", enum=list(range(3, 16)), default=5)],
}
"""Per reference slug: parameters replacing the one of the same name, or appended.

A key set to ``None`` (``enum=None`` above) keeps the reference's value for that key.
"""


def _gemini(edit: bool) -> list[Param]:
    params = [
        prompt(20000),
        p("aspectRatio", "string", enum=GEMINI_RATIOS, default="1:1"),
        p("imageSize", "string", enum=GEMINI_SIZES, default="1K"),
    ]
    if edit:
        params.insert(
            1,
            p("image", "array<string>", required=True, min_items=1, max_items=10),
        )
    return params


def _openai(edit: bool, v15: bool) -> list[Param]:
    size = (
        p("size", "string", enum=OPENAI_SIZES, default="auto")
        if v15
        else p("size", "string", pattern=r"^(auto|[0-9]{3,4}x[0-9]{3,4})$", default="auto")
    )
    params = [
        prompt(32000),
        size,
        p("quality", "string", enum=["auto", "low", "medium", "high"], default="auto"),
    ]
    if edit:
        params.append(p("images", "array<string>", required=True, min_items=1, max_items=10))
        params.append(p("mask", "string(uri)"))
    if v15:
        params.append(p("background", "string", enum=["auto", "opaque", "transparent"]))
    if edit and v15:
        params.append(p("input_fidelity", "string", enum=["low", "high"]))
    return params


_SEEDANCE_1 = [
    prompt(10000),
    p("ratio", "string", enum=[*RATIOS, "adaptive"], default="16:9"),
    p("seed", "integer", default=-1, **SEED_RANGE),
    p("camera_fixed", "boolean", default=False),
    p("execution_expires_after", "integer", min=3600, max=259200, default=172800),
    p("return_last_frame", "boolean", default=False),
]

EXTRA_MODELS: dict[str, list[Param]] = {
    # The image models Modellix's own clients use (the plugin's defaults, the Canvas).
    "google/nano-banana-2-lite": _gemini(edit=False),
    "google/nano-banana-2-lite-edit": _gemini(edit=True),
    "google/nano-banana-pro-edit": _gemini(edit=True),
    "openai/gpt-image-2": _openai(edit=False, v15=False),
    "openai/gpt-image-2-edit": _openai(edit=True, v15=False),
    "openai/gpt-image-1.5": _openai(edit=False, v15=True),
    "openai/gpt-image-1.5-edit": _openai(edit=True, v15=True),
    # Listed and served, without a spec in the proxy's catalog.
    "google/nano-banana-2": _gemini(edit=False),
    "alibaba/qwen-image-plus": [
        prompt(800),
        p("negative_prompt", "string", max_length=500),
        p("size", "string", pattern=r"^[0-9]{3,4}\*[0-9]{3,4}$", default="1328*1328"),
        p("n", "integer", min=1, max=4, default=1),
        p("prompt_extend", "boolean", default=True),
        p("seed", "integer", min=0, max=2147483647),
    ],
    "bytedance/seedance-1.0-pro-fast-t2v": [
        *_SEEDANCE_1,
        p("resolution", "string", enum=["480p", "720p", "1080p"], default="1080p"),
        p("duration", "integer", enum=list(range(2, 13)), default=5),
        p("frames", "integer", min=29, max=289),
        p("service_tier", "string", enum=["default", "flex"], default="default"),
    ],
    # Video families outside the proxy's catalog.
    "bytedance/seedance-1.5-pro-t2v": [
        *_SEEDANCE_1,
        p("resolution", "string", enum=["480p", "720p", "1080p"], default="720p"),
        p("duration", "integer", min=4, max=12, default=5),
        p("generate_audio", "boolean", default=True),
        p("fps", "integer", enum=[16, 24], default=24),
        p("service_tier", "string", enum=["default", "flex"], default="default"),
    ],
    "vidu/vidu-q3-t2v": [
        prompt(2000),
        p("duration", "integer", min=1, max=16, default=5),
        p("resolution", "string", enum=["540p", "720p", "1080p"], default="720p"),
        p("aspect_ratio", "string", enum=["16:9", "9:16", "1:1"], default="16:9"),
        p("movement_amplitude", "string", enum=["auto", "small", "medium", "large"]),
        p("bgm", "boolean", default=False),
        p("seed", "integer", min=0, max=2147483647),
    ],
    "google/veo-3.1-fast-t2v": [
        prompt(4000),
        p("negative_prompt", "string", max_length=2000),
        p("duration", "integer", enum=[4, 6, 8], default=8),
        p("resolution", "string", enum=["720p", "1080p"], default="720p"),
        p("aspect_ratio", "string", enum=["16:9", "9:16"], default="16:9"),
        p("generate_audio", "boolean", default=True),
        p("seed", "integer", min=0, max=4294967295),
    ],
    "pixverse/pixverse-v5-t2v": [
        prompt(2048),
        p("negative_prompt", "string", max_length=2048),
        p("duration", "integer", enum=[5, 8], default=5),
        p(
            "quality",
            "string",
            enum=["360p", "540p", "720p", "1080p"],
            default="540p",
            note="Output quality (resolution); it sets the price per second.",
        ),
        p("aspect_ratio", "string", enum=["16:9", "4:3", "1:1", "3:4", "9:16"], default="16:9"),
        p("motion_mode", "string", enum=["normal", "fast"], default="normal"),
        p("seed", "integer", min=0, max=2147483647),
    ],
    # Audio.
    "alibaba/qwen-audio-3.0-tts-flash": [
        p("text", "string", required=True, min_length=1, max_length=5000),
        p("voice", "string", enum=QWEN_VOICES, default="Cherry"),
        p(
            "language_type",
            "string",
            enum=["Auto", "Chinese", "English", "Japanese", "Korean", "French", "German"],
            default="Auto",
        ),
    ],
    "openai/whisper-1": [
        p(
            "audio_url",
            "string",
            required=True,
            min_length=1,
            pattern="^https?://",
            note="URL of the audio to transcribe (mp3, mp4, m4a, wav, webm); at most 600 s.",
        ),
        p("language", "string", min_length=2, max_length=8, note="ISO-639-1 code, e.g. en."),
        p("prompt", "string", max_length=1000),
        p(
            "response_format",
            "string",
            enum=["json", "text", "srt", "verbose_json", "vtt"],
            default="json",
        ),
        p("temperature", "number", min=0, max=1, default=0),
    ],
    "alibaba/cosyvoice-clone": [
        p(
            "audio_url",
            "string",
            required=True,
            min_length=1,
            pattern="^https?://",
            note="Reference voice sample (10-60 s of clear speech).",
        ),
        p("text", "string", required=True, min_length=1, max_length=2000),
        p("format", "string", enum=["mp3", "wav"], default="mp3"),
        p("sample_rate", "integer", enum=[16000, 22050, 24000, 44100, 48000], default=24000),
    ],
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "alibaba/wan2.7-i2v": {
        "first_frame": "https://example.com/first.jpg",
        "prompt": "The scene slowly comes to life",
    },
    "openai/whisper-1": {"audio_url": "https://example.com/meeting.mp3?duration=42"},
}
"""Minimal example bodies that the generic rule (required fields only) cannot build."""
