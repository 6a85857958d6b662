"""The user documents' examples, found by walking the files: README.md and docs/**/*.md.

Every fenced block carries a language: ``sh``, ``yaml``, ``json`` and ``python`` blocks are
examples (run, checked as configuration, parsed, run with the OpenAI SDK by
``tests/openai_videos/test_python_examples.py``), ``text`` blocks are diagrams and listings. Each
``sh`` line is classified by :func:`step_of` into how a test runs it; a line no kind fits is
an error, so a new example never goes unrun silently. A document whose ``sh`` examples a
dedicated test runs says so in a comment, ``<!-- examples run by tests/x/test_y.py -->``.
"""

from __future__ import annotations

import enum
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LANGUAGES = frozenset({"sh", "yaml", "json", "python", "text"})
_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", flags=re.S | re.M)
_DELEGATED = re.compile(r"<!--\s*examples run by (\S+)\s*-->")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=(\S*)$")
#: Variables the example runner provides (the reader's own values in the documents).
PROVIDED = frozenset({"MODELLIX_BASE_URL", "MODELLIX_API_KEY", "ADMIN_URL", "ADMIN_TOKEN"})
#: ``modellix-proxy`` subcommands that answer and exit: run as written.
RUN_SUBCOMMANDS = frozenset(
    {"check-config", "keys", "budgets", "report", "webhooks", "balance", "audit", "admin-tokens"}
)
#: Commands that serve or measure for minutes: their flags are checked against ``--help``.
LONG_RUNNING = (
    ("modellix-proxy", "serve"),
    ("modellix-proxy", "demo"),
    ("modellix-proxy", "simulator"),
    ("python", "-m"),
)


def documents() -> list[Path]:
    """README.md and every Markdown file under docs/, in a stable order."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


@dataclass(frozen=True, slots=True)
class Fence:
    path: Path
    line: int
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def fences(path: Path) -> list[Fence]:
    """The fenced blocks of ``path`` with their language and first line number."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        found.append(Fence(path, line, match.group(1).strip(), match.group(2)))
    return found


def delegated_to(path: Path) -> Path | None:
    """The test that runs ``path``'s ``sh`` examples itself, if the document names one."""
    match = _DELEGATED.search(path.read_text(encoding="utf-8"))
    return None if match is None else REPO / match.group(1)


def commands(block: str) -> list[str]:
    """A block's commands: continuation lines joined, comment-only lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = (line.strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


class Kind(enum.Enum):
    EXPORT = "export"  # export NAME=value: the shell of the following lines
    OVERRIDE = "override"  # MODELLIX_PROXY_...=value: a configuration override, checked
    MAKE = "make"  # make TARGET [VAR=value]: the target and variables exist
    PYTEST = "pytest"  # collected (--collect-only), not run: it would run the suite
    HELP = "help"  # long-running: every flag used is in the command's --help
    CLI = "cli"  # the official modellix-cli: flags checked (not installable here)
    RUN = "run"  # curl, modellix-proxy check-config/keys/budgets/...: run as written


def words_of(command: str) -> list[str]:
    """The command's words, without a trailing comment."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=False)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def program(word: str) -> str:
    """``.venv/bin/pytest`` and ``pytest`` alike."""
    return word.rsplit("/", 1)[-1]


def step_of(command: str) -> Kind:
    """How a documented command line is run by the example test; ValueError if no way fits."""
    words = words_of(command)
    if not words:
        raise ValueError(f"an empty command: {command!r}")
    first = program(words[0])
    if first == "export" and len(words) == 2 and _ASSIGNMENT.match(words[1]):
        return Kind.EXPORT
    if len(words) == 1 and (match := _ASSIGNMENT.match(words[0])):
        return Kind.OVERRIDE if match.group(1).startswith("MODELLIX_PROXY_") else Kind.EXPORT
    if first == "make":
        return Kind.MAKE
    if first == "pytest":
        return Kind.PYTEST
    if first == "modellix-cli":
        return Kind.CLI
    if first == "curl":
        return Kind.RUN
    if first == "modellix-proxy" and len(words) > 1 and words[1] in RUN_SUBCOMMANDS:
        return Kind.RUN
    for head in LONG_RUNNING:
        if program(words[0]).startswith(head[0]) and words[1:2] == [head[1]]:
            return Kind.HELP
    raise ValueError(
        f"the documents' example test does not know how to run {command!r}: make it one of "
        f"{', '.join(k.value for k in Kind)} (tests/docs_examples.py), or mark the block `text`"
    )


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file (duplicates numbered as GitHub does)."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        anchor = github_anchor(match.group(1))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        out.add(anchor if count == 0 else f"{anchor}-{count}")
    return out


def relative_links(path: Path) -> list[str]:
    """Links to files of the repository (and anchors), fences excluded."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    targets = [m.group(1) for m in _LINK.finditer(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def broken_link(path: Path, target: str) -> str | None:
    """Why ``target`` (a link in ``path``) does not resolve, or ``None``."""
    file_part, _, anchor = target.partition("#")
    dest = (path.parent / file_part).resolve() if file_part else path
    if not dest.exists():
        return f"{target}: no such file {dest}"
    if REPO not in dest.parents and dest != REPO:
        return f"{target}: outside the repository"
    if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
        return f"{target}: no heading #{anchor} in {dest.relative_to(REPO)}"
    return None
