"""Generate ``proxy/catalog/data/catalog.json`` from the reference catalog.

The reference is ``reference/modellix-video-catalog.json`` at the repository's root (a verbatim
copy of the shared reference; the simulator's published schemas are built from the same file).
Run once when it changes, then review the diff::

    python -m proxy.catalog.scripts.build_catalog

The reference's entries are joined by ``extra_models.EXTRA_MODELS``: image models
Modellix's own clients use that the reference does not describe, written in the same
format. Per-parameter facts (types, enums, ranges, lengths, defaults) are translated
mechanically; the free-text cross-field constraints are translated by hand in
``rules.py`` into JSON Schema ``if/then`` fragments, each with its certainty.
The checked-in JSON, not this script, is what the proxy reads at run time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from proxy.catalog.scripts.extra_models import ADDED_PARAMETERS, EXTRA_MODELS
from proxy.catalog.scripts.rules import billing_for, cross_rules, media_for, normalise_kind

OUT = Path(__file__).resolve().parent.parent / "data" / "catalog.json"
REFERENCE = Path(__file__).resolve().parents[3] / "reference" / "modellix-video-catalog.json"


def _param_schema(param: dict[str, Any]) -> dict[str, Any]:
    ptype: str = param["type"]
    schema: dict[str, Any]
    if ptype.startswith("array"):
        item: dict[str, Any] = {"type": "string", "minLength": 1}
        schema = {"type": "array", "items": item}
        if "min_items" in param:
            schema["minItems"] = param["min_items"]
        if "max_items" in param:
            schema["maxItems"] = param["max_items"]
    else:
        base = ptype.split("(")[0]
        schema = {"type": base}
        if ptype == "string(uri)":
            schema["minLength"] = 1
    for src, dst in (
        ("min_length", "minLength"),
        ("max_length", "maxLength"),
        ("min", "minimum"),
        ("max", "maximum"),
        ("enum", "enum"),
        ("pattern", "pattern"),
        ("default", "default"),
    ):
        if src in param:
            schema[dst] = param[src]
    if param.get("required"):
        # The upstream treats "" and [] in a required field as missing.
        if schema["type"] == "string":
            schema.setdefault("minLength", 1)
        elif schema["type"] == "array":
            schema.setdefault("minItems", 1)
    if "note" in param:
        schema["description"] = param["note"]
    return schema


def build_model(slug: str, ref: dict[str, Any]) -> dict[str, Any]:
    """Translate one reference entry into our catalog format."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    rules: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for param in [*ref["parameters"], *ADDED_PARAMETERS.get(slug, [])]:
        name = param["name"]
        properties[name] = _param_schema(param)
        if "default" in param:
            defaults[name] = param["default"]
        if param.get("required"):
            required.append(name)
        rules[f"param:{name}"] = {
            "status": param.get("status", "inferred"),
            "text": param.get("note", f"type and bounds of '{name}'"),
            "fields": [name],
        }
    all_of: list[dict[str, Any]] = []
    for rule_id, rule in cross_rules(slug).items():
        fragment = rule.pop("schema")
        if "drop_required" in rule:
            required = [r for r in required if r not in rule.pop("drop_required")]
        all_of.append({"$comment": rule_id, **fragment})
        rules[rule_id] = rule
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
    }
    if required:
        schema["required"] = required
    if all_of:
        schema["allOf"] = all_of
    status = "documented" if ref.get("slug_status") == "documented" else "inferred"
    kind, detail = normalise_kind(ref["kind"])
    return {
        "slug": slug,
        "kind": kind,
        "kind_detail": detail,
        "status": status,
        "legacy": bool(ref.get("legacy", False)),
        "sources": ref.get("source", []),
        "json_schema": schema,
        "rules": rules,
        "media": media_for(slug, ref),
        "defaults": defaults,
        "billing": billing_for(slug, kind, defaults),
        "closed": slug == "kling/kling-v3-i2v",
    }


def build(reference: dict[str, Any]) -> dict[str, Any]:
    entries = {slug: ref for slug, ref in reference.items() if slug != "_meta"}
    entries.update({slug: ref for slug, ref in EXTRA_MODELS.items() if slug not in entries})
    models = {slug: build_model(slug, ref) for slug, ref in entries.items()}
    return {
        "format": 1,
        "generated_from": [
            "reference/modellix-video-catalog.json",
            "proxy/catalog/scripts/extra_models.py",
        ],
        "description": reference.get("_meta", {}).get("description", ""),
        "models": models,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("reference", type=Path, nargs="?", default=REFERENCE)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    reference = json.loads(args.reference.read_text(encoding="utf-8"))
    catalog = build(reference)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(catalog, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {len(catalog['models'])} models to {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
