"""The documentation's references hold: every `docs/…` path that the README, the docs and the code cite
exists, every `docs/design.md#anchor` names a section of docs/design.md, and every results file puts its
current table before its dated runs."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE_DIRS = ("w2s", "annotators", "w2s_app", "bench", "scripts")
DOC_PATH = re.compile(r"\bdocs/[\w./-]*\w(?:#[\w-]+)?")
MODULE_PATH = re.compile(r"(?<![\w/.])(?:w2s|annotators|w2s_app)/[\w/]*\w\.py\b")
MD_LINK = re.compile(r"\]\(([^)\s:]+)\)")  # relative links only: a URL has a scheme (':')


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(md: Path, level: str = "#+") -> list[str]:
    """The Markdown headings of `md` (of `level`), code blocks left out."""
    text = re.sub(r"```.*?```", "", md.read_text(encoding="utf-8"), flags=re.DOTALL)
    return re.findall(rf"^{level} (.+)$", text, flags=re.MULTILINE)


def anchors(md: Path) -> set[str]:
    return {slug(h) for h in headings(md)}


def citing_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for folder in CODE_DIRS:
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".sh"))
    return files


def broken(target: Path, anchor: str | None) -> str | None:
    if not target.exists():
        return "no such file"
    if anchor and target.suffix == ".md" and anchor not in anchors(target):
        return f"no section #{anchor}"
    return None


def test_cited_docs_paths_exist():
    problems = []
    for f in citing_files():
        for m in DOC_PATH.finditer(f.read_text(encoding="utf-8")):
            path, _, anchor = m.group(0).partition("#")
            why = broken(ROOT / path, anchor or None)
            if why:
                problems.append(f"{f.relative_to(ROOT)}: {m.group(0)}: {why}")
    assert not problems, "\n".join(problems)


def test_cited_module_paths_exist():
    """Module paths such as `w2s/store/db.py` cited anywhere name files that exist (the core was regrouped
    into packages by stage, so an old flat path is stale)."""
    problems = [
        f"{f.relative_to(ROOT)}: {m.group(0)}"
        for f in citing_files()
        for m in MODULE_PATH.finditer(f.read_text(encoding="utf-8"))
        if not (ROOT / m.group(0)).exists()
    ]
    assert not problems, "\n".join(problems)


def test_relative_links_in_docs_resolve():
    problems = []
    for md in sorted((ROOT / "docs").rglob("*.md")):
        for m in MD_LINK.finditer(md.read_text(encoding="utf-8")):
            path, _, anchor = m.group(1).partition("#")
            target = (md.parent / path).resolve() if path else md
            why = broken(target, anchor or None)
            if why:
                problems.append(f"{md.relative_to(ROOT)}: {m.group(1)}: {why}")
    assert not problems, "\n".join(problems)


def test_code_cites_the_design_in_the_repository():
    stale = [
        f"{f.relative_to(ROOT)}" for f in citing_files() if f.suffix == ".py" and "DESIGN.md" in f.read_text()
    ]
    assert not stale, f"cite docs/design.md, not the reference DESIGN.md outside the repository: {stale}"


RESULTS = sorted(p for p in (ROOT / "docs" / "results").glob("*.md") if p.name != "README.md")


@pytest.mark.parametrize("md", RESULTS, ids=lambda p: p.name)
def test_results_put_the_current_table_first(md):
    sections = headings(md, "##")
    current = [i for i, h in enumerate(sections) if h.startswith("Current")]
    dated = [i for i, h in enumerate(sections) if h.startswith("Dated runs")]
    assert current and dated and current[0] < dated[0], f"{md.name}: ## Current … before ## Dated runs"
    assert "|---" in md.read_text(encoding="utf-8").split("## Dated runs")[0], f"{md.name}: no current table"
