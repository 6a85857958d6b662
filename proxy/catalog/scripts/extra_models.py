"""Models the proxy validates fully although the shared reference catalog does not list them.

These are the image models Modellix's own public clients use by default: the agent
skill's text-to-image default (``google/nano-banana-2-lite``) and the five models the
Agent Canvas is approved to call. Each entry is written in the reference catalog's own
format (``parameters`` with ``status`` marks), so ``build_catalog`` translates it exactly
like a reference entry. Only ``prompt`` and the media fields the clients always send are
required; every other rule is ``inferred`` from what the clients send (the Modellix
model pages for these slugs were not retrieved), and where the clients disagree with
each other the looser bound is kept, so the proxy never refuses what the upstream takes.
"""

from __future__ import annotations

from typing import Any

CANVAS = "Modellix/modellix-agent-canvas mcp/lib/model-adapters (request body fields)"
ROUTER = "Modellix/modellix-agent-canvas mcp/lib/modellix-model-router.mjs (sizes, params)"
SKILL = "Modellix/modellix-skill SKILL.md and rest-playbook.md (default text-to-image slug)"

MAX_REFERENCE_IMAGES = 10  # the Canvas's own cap on ordered reference images
OPENAI_PROMPT_MAX = 32_000  # the Canvas refuses longer prompts for the gpt-image models
OPENAI_SIZES = ["auto", "1024x1024", "1536x1024", "1024x1536"]
GEMINI_RATIOS = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
GEMINI_SIZES = ["1K", "2K", "4K"]


def _param(name: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "required": False, "status": "inferred", **extra}


def _prompt(max_length: int | None = None) -> dict[str, Any]:
    param = _param("prompt", "string", required=True, min_length=1, status="documented")
    if max_length is not None:
        param["max_length"] = max_length
        param["note"] = f"at most {max_length} characters (inferred from the Agent Canvas)"
    return param


def _images(name: str, note: str) -> dict[str, Any]:
    return _param(
        name,
        "array<string>",
        required=True,
        min_items=1,
        max_items=MAX_REFERENCE_IMAGES,
        note=note,
    )


def _openai(edit: bool, v15: bool) -> list[dict[str, Any]]:
    size = (
        _param("size", "string", enum=OPENAI_SIZES, note="'auto' or one of the OpenAI sizes")
        if v15
        else _param(
            "size",
            "string",
            pattern=r"^(auto|[0-9]{3,4}x[0-9]{3,4})$",
            note="'auto' or 'WIDTHxHEIGHT' (the Canvas sends 1024x1024 up to 3840x2160)",
        )
    )
    params = [
        _prompt(OPENAI_PROMPT_MAX),
        size,
        _param("quality", "string", enum=["auto", "low", "medium", "high"]),
    ]
    if edit:
        params.append(_images("images", "ordered input image URLs, HTTPS"))
        params.append(_param("mask", "string(uri)", note="mask image URL (one input image)"))
    if v15:
        params.append(_param("background", "string", enum=["auto", "opaque", "transparent"]))
    if edit and v15:
        params.append(_param("input_fidelity", "string", enum=["low", "high"]))
    return params


def _gemini(edit: bool) -> list[dict[str, Any]]:
    params = [
        _prompt(),
        _param("aspectRatio", "string", enum=GEMINI_RATIOS, note="output aspect ratio"),
        _param("imageSize", "string", enum=GEMINI_SIZES, note="output size tier"),
    ]
    if edit:
        params.insert(1, _images("image", "ordered reference image URLs, HTTPS"))
    return params


def _entry(kind: str, sources: list[str], parameters: list[dict[str, Any]]) -> dict[str, Any]:
    image_fields = [p["name"] for p in parameters if p["name"] in ("image", "images", "mask")]
    return {
        "kind": kind,
        "slug_status": "documented",  # the slug itself is used by Modellix's own clients
        "source": sources,
        "parameters": parameters,
        "cross_field_constraints": [],
        "image_input": {"fields": image_fields, "status": "limits not retrieved"}
        if image_fields
        else None,
        "pricing": None,
    }


EXTRA_MODELS: dict[str, dict[str, Any]] = {
    "google/nano-banana-2-lite": _entry("t2i", [SKILL], _gemini(edit=False)),
    "google/nano-banana-pro-edit": _entry("i2i", [CANVAS, ROUTER], _gemini(edit=True)),
    "openai/gpt-image-2": _entry("t2i", [CANVAS, ROUTER], _openai(edit=False, v15=False)),
    "openai/gpt-image-2-edit": _entry("i2i", [CANVAS, ROUTER], _openai(edit=True, v15=False)),
    "openai/gpt-image-1.5": _entry("t2i", [CANVAS, ROUTER], _openai(edit=False, v15=True)),
    "openai/gpt-image-1.5-edit": _entry("i2i", [CANVAS, ROUTER], _openai(edit=True, v15=True)),
}

ADDED_PARAMETERS: dict[str, list[dict[str, Any]]] = {
    f"bytedance/seedance-2.0-{variant}-{mode}".replace("-std", ""): [
        {
            "name": "fps",
            "type": "integer",
            "required": False,
            "enum": [24],
            "default": 24,
            "status": "documented",
            "note": "frames per second of the output (24); the upstream accepts and bills it",
        }
    ]
    for variant in ("std", "fast", "mini")
    for mode in ("t2v", "i2v", "v2v")
}
"""Fields a reference model accepts that the reference catalog does not list, by slug: the
catalog must never refuse what the upstream accepts, even when its published schema cannot be
read (Seedance 2.0's ``fps``, documented as 24 fps, which its published schema carries)."""
