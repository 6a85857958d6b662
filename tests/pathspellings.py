"""Other spellings of a path: what a client (or an attacker) may send for the same route.

``spellings(segments)`` is a hypothesis strategy: the route's segments with up to
three edits, each one a way servers and clients disagree about paths (dot
segments plain or escaped, escaped letters, ``%2F``, ``//``, a trailing ``/``,
case, ``;`` parameters, backslash, non-ASCII, ``..`` climbing, a mangled prefix).
``ISSUE_SPELLINGS`` are the spellings the issue names, for deterministic tests.
"""

from __future__ import annotations

from hypothesis import strategies as st

PREFIX = "/api/v1/"
DOTS = (".", "%2e", "%2E")
DOTDOTS = ("..", "%2e%2e", "%2E%2E", ".%2e", "%2E.")
PREFIXES = ("/API/V1/", "/api/v1//", "/%61pi/v1/", "/api/./v1/", "/api/v1/../v1/", "/Api/v1/")


def escape(char: str, upper: bool) -> str:
    code = f"{ord(char):02x}"
    return "%" + (code.upper() if upper else code)


@st.composite
def spellings(draw: st.DrawFn, segments: list[str]) -> str:
    """A raw path for ``segments`` (under ``/api/v1/``) with up to three edits."""
    parts = list(segments)
    prefix = PREFIX
    for _ in range(draw(st.integers(0, 3))):
        edit = draw(
            st.sampled_from(
                [
                    *("dot", "dot", "dot", "detour", "detour", "detour"),
                    *("escape", "escape", "escape", "climb"),
                    "slash2f",
                    "empty",
                    "trailing",
                    "case",
                    "param",
                    "backslash",
                    "unicode",
                    "prefix",
                ]
            )
        )
        at = draw(st.integers(0, len(parts)))
        if edit == "dot":
            parts.insert(at, draw(st.sampled_from(DOTS)))
        elif edit == "detour":
            parts[at:at] = [
                draw(st.sampled_from(["x", "tasks", "minimax", "%2e"])),
                draw(st.sampled_from(DOTDOTS)),
            ]
        elif edit == "climb":
            parts.insert(at, draw(st.sampled_from(DOTDOTS)))
        elif edit == "empty":
            parts.insert(at, "")
        elif edit == "trailing":
            parts.append(draw(st.sampled_from(["", ".", "%2e"])))
        elif edit == "prefix":
            prefix = draw(st.sampled_from(PREFIXES))
        elif parts:
            i = min(at, len(parts) - 1)
            parts[i] = _edit_segment(draw, edit, parts, i)
    return prefix + "/".join(parts)


def _edit_segment(draw: st.DrawFn, edit: str, parts: list[str], i: int) -> str:
    segment = parts[i]
    if edit == "escape" and segment:
        j = draw(st.integers(0, len(segment) - 1))
        return segment[:j] + escape(segment[j], draw(st.booleans())) + segment[j + 1 :]
    if edit == "slash2f" and i + 1 < len(parts):
        joined = segment + draw(st.sampled_from(["%2F", "%2f"])) + parts[i + 1]
        del parts[i + 1]
        return joined
    if edit == "backslash" and i + 1 < len(parts):
        joined = segment + "\\" + parts[i + 1]
        del parts[i + 1]
        return joined
    if edit == "case":
        return draw(st.sampled_from([segment.upper(), segment.title(), segment.swapcase()]))
    if edit == "param":
        return segment + draw(st.sampled_from([";", ";x=1", "%3B"]))
    if edit == "unicode":
        return segment + draw(st.sampled_from(["\u00e9", "%C3%A9", "\uff0e", "%EF%BC%8E", "%00"]))
    return segment


def issue_spellings(path: str) -> list[str]:
    """Every spelling the issue names of ``/api/v1/{provider}/{model}``, and a few more."""
    tail = path.removeprefix(PREFIX)
    provider, model = tail.split("/", 1)
    dotted = model.replace(".", "%2e")
    return [
        f"{PREFIX}{tail}",
        f"{PREFIX}./{tail}",
        f"{PREFIX}x/../{tail}",
        f"{PREFIX}{provider}/./{model}",
        f"{PREFIX}%2e/{tail}",
        f"{PREFIX}%2E/{provider}/%2e/{model}",
        f"{PREFIX}x/%2e%2e/{tail}",
        f"{PREFIX}{provider}/{dotted}",
        f"{PREFIX}%{ord(provider[0]):02X}{provider[1:]}/{model}",
        f"{PREFIX}{tail}/async",
        f"{PREFIX}./{tail}/./async",
        f"{PREFIX}text-to-video/{tail}/async",
        f"{PREFIX}{tail}/",
        f"{PREFIX}/{tail}",
        f"{PREFIX}{provider}//{model}",
        f"{PREFIX}{provider}%2F{model}",
        f"{PREFIX}{provider}%2f{model}",
        f"{PREFIX}../v1/{tail}",
        f"{PREFIX}%2e%2e/v1/{tail}",
        f"{PREFIX}{provider};x/{model}",
        f"{PREFIX}{provider}\\{model}",
        f"{PREFIX}{tail.upper()}",
        f"/API/V1/{tail}",
        f"/%61pi/v1/{tail}",
        f"{PREFIX}{tail}%00",
        f"{PREFIX}{tail}%C3%A9",
    ]
