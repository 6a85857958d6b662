"""Build ``proxy/simulator/data/schemas.json``: the request schemas the simulator publishes.

Run after changing the reference copy or ``additions.py``, then review the diff::

    python -m proxy.simulator.scripts.build_schemas

Input: ``reference/modellix-video-catalog.json`` at the repository's root, a verbatim copy of
the shared reference catalog (so a clean clone rebuilds without ``../shared``; the proxy's
catalog is built from the same file), patched and extended by ``additions.py``.
Output: per model a JSON Schema object (``type``, ``properties``
with ``type``/``enum``/``minimum``/``maximum``/``minLength``/``maxLength``/
``minItems``/``maxItems``/``pattern``/``default``/``description``, ``required``) and a
minimal example body. The simulator reads the checked-in JSON at run time, never this
script; a test rebuilds it and compares, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from proxy.simulator.scripts.additions import EXAMPLES, EXTRA_MODELS, PATCHES, Param

DATA = Path(__file__).resolve().parent.parent / "data"
REFERENCE = Path(__file__).resolve().parents[3] / "reference" / "modellix-video-catalog.json"
OUT = DATA / "schemas.json"
FACTS = (
    ("min_length", "minLength"),
    ("max_length", "maxLength"),
    ("min_items", "minItems"),
    ("max_items", "maxItems"),
    ("min", "minimum"),
    ("max", "maximum"),
    ("enum", "enum"),
    ("pattern", "pattern"),
    ("default", "default"),
)
GENERIC_DESCRIPTIONS = {
    "prompt": "Text describing the output to generate.",
    "negative_prompt": "What the output should not contain.",
    "duration": "Output length in seconds.",
    "resolution": "Output resolution.",
    "ratio": "Aspect ratio of the output.",
    "aspect_ratio": "Aspect ratio of the output.",
    "seed": "Random seed for reproducible generation.",
    "first_frame_image": "URL or Base64 of the starting frame.",
    "last_frame_image": "URL or Base64 of the ending frame.",
    "reference_images": "Reference image URLs.",
    "video_urls": "Reference video URLs.",
    "audio_urls": "Reference audio URLs.",
    "generate_audio": "Whether to generate audio for the video.",
    "camera_fixed": "Whether to keep the camera fixed during generation.",
    "execution_expires_after": "Task expiration time in seconds.",
}
_HIDDEN_NOTE_WORDS = ("not captured", "truncated", "inferred", "older snapshot")
URL_EXAMPLES = {"video": "https://example.com/source.mp4", "audio": "https://example.com/a.mp3"}
PROMPT_EXAMPLE = "A red fox running through fresh snow at dawn"


def _property(param: Param) -> dict[str, Any]:
    """One reference-format parameter as a JSON Schema property."""
    kind: str = param["type"]
    schema: dict[str, Any]
    if kind.startswith("array"):
        schema = {"type": "array", "items": {"type": "string", "minLength": 1}}
    else:
        schema = {"type": kind.split("(")[0]}
        if kind == "string(uri)":
            schema["minLength"] = 1
    for source, target in FACTS:
        if param.get(source) is not None:
            schema[target] = param[source]
    if param.get("required"):  # the upstream treats "" and [] in a required field as missing
        if schema["type"] == "string":
            schema.setdefault("minLength", 1)
        elif schema["type"] == "array":
            schema.setdefault("minItems", 1)
    note = param.get("note")
    if isinstance(note, str) and not any(word in note for word in _HIDDEN_NOTE_WORDS):
        schema["description"] = note
    elif param["name"] in GENERIC_DESCRIPTIONS:
        schema["description"] = GENERIC_DESCRIPTIONS[param["name"]]
    return schema


def patched(params: list[Param], patches: list[Param]) -> list[Param]:
    """``params`` with each patch merged into the parameter of its name (or appended)."""
    out = [dict(param) for param in params]
    for patch in patches:
        given = {key: value for key, value in patch.items() if value is not None}
        for param in out:
            if param["name"] == patch["name"]:
                param.update(given)
                break
        else:
            out.append(given)
    return out


def _example_value(name: str, prop: dict[str, Any]) -> Any:
    if "enum" in prop:
        return prop["enum"][0]
    if prop["type"] == "array":
        return [_example_value(name, {"type": "string"})]
    if prop["type"] != "string":
        return prop.get("default", prop.get("minimum", 1))
    if name == "prompt":
        return PROMPT_EXAMPLE
    if name == "text":
        return "Hello from the Modellix simulator."
    for word, url in URL_EXAMPLES.items():
        if word in name:
            return url
    return "https://example.com/first.jpg"


def build_model(slug: str, params: list[Param]) -> dict[str, Any]:
    """The schema and minimal example of one model."""
    properties = {param["name"]: _property(param) for param in params}
    required = [param["name"] for param in params if param.get("required")]
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    minimal = EXAMPLES.get(slug) or {
        name: _example_value(name, properties[name]) for name in required
    }
    return {
        "schema": schema,
        "examples": {"minimal": {"summary": "Minimum (required fields only)", "value": minimal}},
    }


def build(reference: dict[str, Any]) -> dict[str, Any]:
    models: dict[str, Any] = {}
    for slug, entry in reference.items():
        if slug != "_meta":
            models[slug] = build_model(slug, patched(entry["parameters"], PATCHES.get(slug, [])))
    for slug, params in EXTRA_MODELS.items():
        models[slug] = build_model(slug, params)
    return {
        "format": 1,
        "generated_by": "python -m proxy.simulator.scripts.build_schemas",
        "generated_from": [
            "reference/modellix-video-catalog.json",
            "proxy/simulator/scripts/additions.py",
        ],
        "models": models,
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    document = build(json.loads(args.reference.read_text(encoding="utf-8")))
    args.out.write_text(render(document), encoding="utf-8")
    sys.stdout.write(f"wrote {len(document['models'])} models to {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
