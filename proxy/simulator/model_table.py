"""The models the simulator lists and serves, with their prices.

Prices are the simulator's own figures (``docs/simulator.md`` lists them), except
Hailuo's and MiniMax Video-01's, which are Modellix's published per-second prices.
Video is priced per output second (by resolution where it varies), images per image,
text-to-speech and voice cloning per million characters of ``text``, speech-to-text
per second of input audio.
"""

from __future__ import annotations

from proxy.simulator.spec import ModelSpec, audio, image, video

T2V, I2V, V2V = "text-to-video", "image-to-video", "video-to-video"
T2I, I2I = "text-to-image", "image-to-image"
HAILUO = "768P=0.054 1080P=0.12"
SD_FULL = "480P=0.05 720P=0.10 1080P=0.20"
SD_FAST = "480P=0.03 720P=0.06"
SD_MINI = "480P=0.02 720P=0.04"
WAN = "720P=0.08 1080P=0.15"


def _hailuo(
    slug: str, type_: str, text: str, price: str = HAILUO, *, featured: bool = False
) -> ModelSpec:
    return video(slug, type_, text, price, hailuo=True, featured=featured)


def _seedance_2(kind: str, type_: str, label: str) -> tuple[ModelSpec, ...]:
    tiers = (("", "", SD_FULL), ("-fast", " Fast", SD_FAST), ("-mini", " Mini", SD_MINI))
    if kind == "t2v":
        tiers = (("", "", f"{SD_FULL} 4K=0.40"), *tiers[1:])
    return tuple(
        video(
            f"bytedance/seedance-2.0{tier}-{kind}",
            type_,
            f"Seedance 2.0{name} {label}",
            price,
            featured=(tier, kind) == ("-mini", "t2v"),
        )
        for tier, name, price in tiers
    )


UNSPECIFIED: tuple[ModelSpec, ...] = (
    image("google/nano-banana-2", T2I, "Google Nano Banana 2 text-to-image", "0.039"),
    image("alibaba/qwen-image-plus", T2I, "Qwen Image Plus text-to-image", "0.03", count="n"),
    video(
        "bytedance/seedance-1.0-pro-fast-t2v",
        T2V,
        "Seedance 1.0 Pro Fast text-to-video",
        "480P=0.02 720P=0.04 1080P=0.08",
    ),
)
"""Models the simulator serves that have no spec in the proxy's catalog (its
"upstream-listed" path: exact slug accepted, common fields checked only)."""

BEYOND_THE_PROXY: tuple[ModelSpec, ...] = (
    video(
        "bytedance/seedance-1.5-pro-t2v",
        T2V,
        "Seedance 1.5 Pro text-to-video",
        "480P=0.03 720P=0.06 1080P=0.13",
    ),
    video("vidu/vidu-q3-t2v", T2V, "Vidu Q3 text-to-video", "540P=0.05 720P=0.07 1080P=0.10"),
    video(
        "google/veo-3.1-fast-t2v", T2V, "Google Veo 3.1 Fast text-to-video", "*=0.15", featured=True
    ),
    video(
        "pixverse/pixverse-v5-t2v",
        T2V,
        "PixVerse V5 text-to-video",
        "360P=0.03 540P=0.03 720P=0.04 1080P=0.08",
        price_field="quality",
    ),
    audio(
        "alibaba/qwen-audio-3.0-tts-flash",
        "text-to-speech",
        "Qwen Audio 3.0 TTS Flash text-to-speech",
        "10",
        fmt="wav",
        featured=True,
    ),
    audio(
        "openai/whisper-1", "speech-to-text", "OpenAI Whisper speech-to-text", "0.0001", fmt="json"
    ),
    audio(
        "alibaba/cosyvoice-clone",
        "speech-to-speech",
        "CosyVoice voice cloning: speak a text in the voice of a sample",
        "25",
        fmt="mp3",
    ),
)
"""Further models outside the proxy's catalog: video families and audio."""

SPECS: tuple[ModelSpec, ...] = (
    _hailuo("minimax/hailuo-2.3-t2v", T2V, "MiniMax Hailuo 2.3 text-to-video"),
    _hailuo("minimax/hailuo-2.3-i2v", I2V, "MiniMax Hailuo 2.3 image-to-video"),
    _hailuo(
        "minimax/hailuo-2.3-fast-i2v",
        I2V,
        "MiniMax Hailuo 2.3 Fast image-to-video",
        "768P=0.04 1080P=0.08",
        featured=True,
    ),
    _hailuo("minimax/hailuo-02-fl2v", I2V, "MiniMax Hailuo 02 first+last frame"),
    _hailuo("minimax/hailuo-02-t2v", T2V, "MiniMax Hailuo 02 text-to-video"),
    _hailuo(
        "minimax/hailuo-02-i2v", I2V, "MiniMax Hailuo 02 image-to-video", f"512P=0.02 {HAILUO}"
    ),
    video("minimax/minimax-t2v-01", T2V, "MiniMax Video-01 text-to-video", "*=0.10"),
    video("minimax/minimax-i2v-01", I2V, "MiniMax Video-01 image-to-video", "*=0.10"),
    video("minimax/minimax-i2v-01-live", I2V, "MiniMax Video-01 Live image-to-video", "*=0.10"),
    *_seedance_2("t2v", T2V, "text-to-video"),
    *_seedance_2("i2v", I2V, "image-to-video"),
    *_seedance_2("v2v", V2V, "video-to-video"),
    video("kling/kling-v3-i2v", I2V, "Kling V3 image-to-video", "*=0.10"),
    video("kling/kling-v3-t2v", T2V, "Kling V3 text-to-video", "*=0.10", featured=True),
    video("kling/kling-v3-omni-video", T2V, "Kling V3 Omni video", "*=0.12"),
    video("kling/kling-video-o1", V2V, "Kling Video O1", "*=0.12"),
    video("kling/kling-v2.6-t2v", T2V, "Kling V2.6 text-to-video", "*=0.07"),
    video("kling/kling-v1.6-t2v", T2V, "Kling V1.6 text-to-video", "*=0.05"),
    video("alibaba/wan2.7-t2v", T2V, "Wan 2.7 text-to-video", WAN),
    video(
        "alibaba/wan2.7-i2v",
        I2V,
        "Wan 2.7 image-to-video",
        WAN,
        one_of=("first_frame", "first_clip"),  # continuation mode starts from a clip
    ),
    video("alibaba/wan2.7-r2v", "reference-to-video", "Wan 2.7 reference-to-video", WAN),
    video("alibaba/wan2.7-videoedit", V2V, "Wan 2.7 video edit", WAN),
    image("alibaba/wan2.7-image", T2I, "Wan 2.7 image generation", "0.03", count="n"),
    image(
        "bytedance/seedream-4.5-t2i",
        T2I,
        "Seedream 4.5 text-to-image",
        "0.04",
        count="seedream",
        featured=True,
        fmt="jpeg",
    ),
    image(
        "bytedance/seedream-4.0-t2i",
        T2I,
        "Seedream 4.0 text-to-image",
        "0.03",
        count="seedream",
        fmt="jpeg",
    ),
    image(
        "bytedance/seedream-5.0-lite", T2I, "Seedream 5.0 Lite text-to-image", "0.035", fmt="jpeg"
    ),
    image(
        "bytedance/seedream-5.0-lite-edit", I2I, "Seedream 5.0 Lite image edit", "0.035", fmt="jpeg"
    ),
    # The image models Modellix's own clients use by default (the plugin, the Canvas).
    image(
        "google/nano-banana-2-lite",
        T2I,
        "Google Nano Banana 2 Lite text-to-image",
        "0.02",
        featured=True,
    ),
    image(
        "google/nano-banana-2-lite-edit",
        I2I,
        "Google Nano Banana 2 Lite image edit",
        "0.025",
        featured=True,
    ),
    image("google/nano-banana-pro-edit", I2I, "Google Nano Banana Pro image edit", "0.134"),
    image("openai/gpt-image-2", T2I, "OpenAI GPT Image 2 text-to-image", "0.04"),
    image("openai/gpt-image-2-edit", I2I, "OpenAI GPT Image 2 image edit", "0.04"),
    image("openai/gpt-image-1.5", T2I, "OpenAI GPT Image 1.5 text-to-image", "0.034"),
    image("openai/gpt-image-1.5-edit", I2I, "OpenAI GPT Image 1.5 image edit", "0.034"),
    *UNSPECIFIED,
    *BEYOND_THE_PROXY,
)
