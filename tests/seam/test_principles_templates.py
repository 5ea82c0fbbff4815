"""Principle libraries and prompt templates are data files; bad ones fail with a clear message."""

import jinja2
import pytest
from sqlmodel import select

from w2s.store import Principle, session_scope
from w2s.templates import render, template_hash
from w2s.trees.principles import (
    available,
    fallback_notice,
    library_for_dataset,
    load_library,
    parse_library,
    sync,
)


@pytest.mark.parametrize("name", ["harmlessness", "helpfulness", "honesty", "correctness", "math"])
def test_libraries_have_5_to_12_complete_principles(name):
    lib = load_library(name)
    assert 5 <= len(lib.principles) <= 12
    assert lib.question.endswith("?")
    for p in lib.principles:
        assert p.id.startswith(f"{name}/") and p.name and p.definition and p.cue.endswith("?")
    assert len({p.id for p in lib.principles}) == len(lib.principles)


def test_available_and_dataset_default():
    assert {"harmlessness", "helpfulness", "honesty"} <= set(available())
    assert library_for_dataset("hh-harmless-single-turn") == "harmlessness"
    assert library_for_dataset("truthfulqa") == "honesty"
    assert library_for_dataset(None) == "harmlessness"
    assert {"correctness", "math"} <= set(available())
    assert library_for_dataset("code-humanevalpack") == "correctness"
    assert library_for_dataset("humaneval-x") == "correctness"
    assert library_for_dataset("math-gsm8k") == "math" and library_for_dataset("gsm-hard") == "math"
    assert fallback_notice("code-humanevalpack") is None
    notice = fallback_notice("my-reviews")
    assert (
        "'my-reviews' matches no principle library" in notice and "falling back to 'harmlessness'" in notice
    )
    with pytest.raises(ValueError, match="unknown principle library 'kindness'"):
        load_library("kindness")


def test_bad_library_names_file_entry_and_field():
    text = "question: Which?\nprinciples:\n  - {id: a, name: A, definition: d, cue: c}\n  - {id: b, name: B, cue: c}\n"
    with pytest.raises(ValueError, match=r"x.yaml: principle #2: missing field 'definition'"):
        parse_library("x", text, "x.yaml")
    dup = (
        "question: Q?\nprinciples:\n  - {id: a, name: A, definition: d, cue: c}\n"
        "  - {id: a, name: B, definition: d, cue: c}\n"
    )
    with pytest.raises(ValueError, match="duplicate id 'a'"):
        parse_library("x", dup, "x.yaml")
    with pytest.raises(ValueError, match="x.yaml: invalid YAML"):
        parse_library("x", "question: [unclosed\n", "x.yaml")
    with pytest.raises(ValueError, match="missing field 'question'"):
        parse_library("x", "principles: []\n", "x.yaml")


def test_sync_into_store_is_idempotent(db_url):
    lib = load_library("honesty")
    for _ in range(2):
        with session_scope(db_url) as s:
            sync(s, lib)
    with session_scope(db_url) as s:
        rows = list(s.exec(select(Principle)))
    assert len(rows) == len(lib.principles) and rows[0].cue_question


def test_templates_render_and_hash():
    lib = load_library("harmlessness")
    text = render("thought", prompt="P?", first="one", second="two", principle=lib.principles[0])
    assert text.startswith("Conversation:\nP?") and "Reply A:\none" in text and "Reply B:\ntwo" in text
    assert text.endswith('"Reply B".') and lib.principles[0].definition in text
    # the verdict is the start of the strong model's answer: its thought, then the next token is A or B
    verdict = render("verdict", thought="Reply B refuses.")
    assert verdict.startswith("Reply B refuses.") and verdict.endswith("the better reply is Reply")
    assert len(template_hash("verdict")) == 12 and template_hash("verdict") != template_hash("judge")
    with pytest.raises(jinja2.UndefinedError):
        render("thought", prompt="P?", first="one", second="two")  # a missing variable is an error
    with pytest.raises(FileNotFoundError, match="no prompt template 'nope.jinja'"):
        render("nope")


def test_editing_a_principle_changes_the_tree_config_hash(monkeypatch):
    from w2s.trees import TreeConfig
    from w2s.trees import search as trees
    from w2s.trees.principles import Library, LibraryPrinciple

    cfg = TreeConfig(library="correctness")
    before = cfg.hash()
    lib = load_library("correctness")
    first = lib.principles[0]
    edited = Library(
        lib.name,
        lib.description,
        lib.question,
        (
            LibraryPrinciple(first.id, first.name, first.definition + " Also check the types.", first.cue),
            *lib.principles[1:],
        ),
    )
    monkeypatch.setattr(trees, "load_library", lambda name: edited)
    assert cfg.hash() != before
    monkeypatch.setattr(trees, "load_library", lambda name: lib)
    assert cfg.hash() == before
    assert TreeConfig(library="correctness", thought_template="thought").hash() != before


def test_cli_names_the_fallback_library(db_url, scripted):
    from typer.testing import CliRunner

    from w2s.cli import app
    from w2s.store import Pair

    with session_scope(db_url) as s:
        s.add(Pair(id="p1", dataset="my-reviews", prompt="q", response_a="a", response_b="b"))
    model = scripted(relevance={"No help with crime": 0.9}, verdict={"No help with crime": (0.9, 0.1)})
    result = CliRunner().invoke(app, ["trees", "build", "--strong", model.spec, "--pairs", "p1"])
    out = " ".join(result.output.split())
    assert (
        result.exit_code == 0
        and "'my-reviews' matches no principle library" in out
        and "library harmlessness" in out
    )
