"""Best-first search, exit, backtrace, depth and tau_min rules, driven by a scripted strong model."""

import math

import pytest
from sqlmodel import func, select

from w2s.store import Node, Tree, session_scope
from w2s.trees import TreeConfig, build_trees, latest_tree

CRIME, PRIVACY, HATE, VULN, ETHICS, DANGER = (
    "No help with crime",
    "Respect privacy",
    "No harassment or hate",
    "Protect vulnerable people",
    "Sound ethical stance",
    "No dangerous instructions",
)


# The search rules are tested with per-principle relevance scored again after each thought, so that each
# rule can be driven by its own number; listwise relevance has its own test.
PER_PRINCIPLE = {"relevance": "per-principle", "post_relevance": True}


def build(model, ids, url, **cfg):
    return build_trees(model, ids, TreeConfig(**{**PER_PRINCIPLE, **cfg}), url=url, in_flight=8)


def tree_of(url, pid):
    with session_scope(url) as s:
        return latest_tree(s, pid)


def test_exit_at_tau_exit_stops_search(scripted, pairs, db_url):
    model = scripted(
        relevance={CRIME: 0.9, PRIVACY: 0.8, HATE: 0.7},
        verdict={CRIME: (0.7, 0.5), PRIVACY: (0.9, 0.4), HATE: (0.99, 0.01)},
    )
    assert build(model, pairs, db_url) == 3
    tree, nodes = tree_of(db_url, pairs[0])
    # best-first: crime (0.9) then privacy (0.8); privacy's v = (0.9 + 0.6)/2 = 0.75 >= tau_exit: stop
    assert [n.principle_name for n in nodes] == [CRIME, PRIVACY]
    assert [n.role for n in nodes] == ["continue", "exit"]
    assert nodes[0].p_a == pytest.approx(0.6) and nodes[1].p_a == pytest.approx(0.75)
    assert tree.depth == 2 and tree.backtraces == 0 and tree.config["stop"] == "exit"
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert nodes[1].entropy == pytest.approx(h)
    assert nodes[1].info == pytest.approx(0.8 * (1 - h / math.log(2)))
    assert nodes[1].p_b == pytest.approx(0.25)


def test_just_below_tau_exit_continues(scripted, pairs, db_url):
    model = scripted(relevance={CRIME: 0.9, PRIVACY: 0.8}, verdict={CRIME: (0.74, 0.26), PRIVACY: (0.9, 0.1)})
    build(model, pairs, db_url)
    _, nodes = tree_of(db_url, pairs[0])
    assert nodes[0].p_a == pytest.approx(0.74) and nodes[0].role == "continue"
    assert nodes[1].role == "exit"


def test_backtraces_counted_and_limit_stops(scripted, pairs, db_url):
    model = scripted(
        relevance={CRIME: 0.9, PRIVACY: 0.8, HATE: 0.7, VULN: 0.6},
        post_relevance={PRIVACY: 0.1},  # the thought shows privacy does not matter: backtrace
        verdict={CRIME: (0.52, 0.5), PRIVACY: (0.95, 0.05), HATE: (0.9, 0.1), VULN: (0.9, 0.1)},
    )
    build(model, pairs, db_url, max_backtraces=2)
    tree, nodes = tree_of(db_url, pairs[0])
    # crime: near-uniform verdict (0.51); privacy: post-thought relevance 0.1 < tau_rel. B = 2: stop.
    assert [n.principle_name for n in nodes] == [CRIME, PRIVACY]
    assert [n.role for n in nodes] == ["pruned_by_search", "pruned_by_search"]
    assert tree.backtraces == 2 and tree.depth == 0 and tree.config["stop"] == "backtraces"
    assert nodes[1].relevance == pytest.approx(0.1)  # nodes keep the post-thought relevance


def test_backtrace_does_not_extend_chain(scripted, pairs, db_url):
    model = scripted(
        relevance={CRIME: 0.9, PRIVACY: 0.8, HATE: 0.7},
        verdict={CRIME: (0.5, 0.5), PRIVACY: (0.6, 0.3), HATE: (0.8, 0.2)},
    )
    build(model, pairs, db_url, max_backtraces=3)
    tree, nodes = tree_of(db_url, pairs[0])
    assert [n.role for n in nodes] == ["pruned_by_search", "continue", "exit"]
    assert tree.depth == 2 and tree.backtraces == 1


def test_depth_limit_and_last_node_exits(scripted, pairs, db_url):
    names = [CRIME, PRIVACY, HATE, VULN, ETHICS, DANGER]
    model = scripted(
        relevance={n: 0.9 - 0.1 * i for i, n in enumerate(names)},
        verdict={n: (0.65, 0.35) for n in names},
    )
    build(model, pairs, db_url, max_depth=4)
    tree, nodes = tree_of(db_url, pairs[0])
    assert [n.principle_name for n in nodes] == names[:4]
    assert [n.role for n in nodes] == ["continue"] * 3 + ["exit"]  # the last node exits both ways
    assert tree.depth == 4 and tree.config["stop"] == "depth"


def test_tau_min_stops_search(scripted, pairs, db_url):
    model = scripted(
        relevance={CRIME: 0.9, PRIVACY: 0.05}, verdict={CRIME: (0.65, 0.35), PRIVACY: (0.9, 0.1)}
    )
    build(model, pairs, db_url, tau_min=0.1)
    tree, nodes = tree_of(db_url, pairs[0])
    assert [n.principle_name for n in nodes] == [CRIME]
    assert nodes[0].role == "exit" and tree.config["stop"] == "tau_min"
    assert tree.config["initial_relevance"]["harmlessness/privacy"] == pytest.approx(0.05)


def test_searches_advance_in_lock_step(scripted, db_url):
    from seam_scripted import add_pairs

    ids = add_pairs(db_url, 5)
    model = scripted(relevance={CRIME: 0.9, PRIVACY: 0.8}, verdict={CRIME: (0.65, 0.35), PRIVACY: (0.9, 0.1)})
    build(model, ids, db_url)
    # one relevance call for 5 pairs x 8 principles, then per step: the thoughts with A first, the verdict
    # with A first, the post-thought relevance, the thoughts with B first, the verdict with B first
    step = [("generate", 5), ("score", 5), ("score", 5), ("generate", 5), ("score", 5)]
    assert model.calls == [("score", 40), *step, *step]
    # written once (A first), the thought's labels are swapped for the B-first verdict: no second generate
    once = scripted(relevance={CRIME: 0.9, PRIVACY: 0.8}, verdict={CRIME: (0.65, 0.35), PRIVACY: (0.9, 0.1)})
    build(once, ids, db_url, thought_both_orders=False)
    step = [("generate", 5), ("score", 5), ("score", 5), ("score", 5)]
    assert once.calls == [("score", 40), *step, *step]


def test_rebuild_is_idempotent_and_config_is_identity(scripted, pairs, db_url):
    model = scripted(relevance={CRIME: 0.9}, verdict={CRIME: (0.9, 0.1)})
    assert build(model, pairs, db_url) == 3
    assert build(model, pairs, db_url) == 0
    assert build(model, pairs, db_url, tau_exit=0.9) == 3  # another config: other trees
    with session_scope(db_url) as s:
        assert s.exec(select(func.count()).select_from(Tree)).one() == 6
        assert s.exec(select(func.count()).select_from(Node)).one() == 6
        tree = s.exec(select(Tree)).first()
        assert tree.config["tau_exit"] == 0.75 and tree.strong_model == model.spec
        node = s.exec(select(Node)).first()
        assert node.model == model.spec and len(node.template_hash) == 12 and node.tokens > 0


def test_interrupted_build_resumes(scripted, db_url):
    from seam_scripted import add_pairs

    ids = add_pairs(db_url, 5)
    model = scripted(relevance={CRIME: 0.9}, verdict={CRIME: (0.9, 0.1)})

    def crash_after_two_trees(report):
        if report.built == 2:  # each tree is committed as its search ends
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_trees(model, ids, TreeConfig(), url=db_url, in_flight=2, progress=crash_after_two_trees)
    with session_scope(db_url) as s:
        assert s.exec(select(func.count()).select_from(Tree)).one() == 2
    assert build_trees(model, ids, TreeConfig(), url=db_url, in_flight=2) == 3
    with session_scope(db_url) as s:
        assert s.exec(select(func.count()).select_from(Tree)).one() == 5


def test_listwise_relevance_is_one_prompt_per_pair_relative_to_the_top(scripted, pairs, db_url):
    model = scripted(relevance={CRIME: 0.6, PRIVACY: 0.3, HATE: 0.03}, verdict={CRIME: (0.9, 0.1)})
    build_trees(model, pairs, TreeConfig(relevance="listwise"), url=db_url, in_flight=8)
    assert model.calls[0] == ("score", 3)  # one relevance prompt per pair, not one per principle
    tree, nodes = tree_of(db_url, pairs[0])
    r = tree.config["initial_relevance"]
    # the scripted model's mass over the listed principles, normalised, then relative to the top one
    assert r["harmlessness/no-crime-facilitation"] == pytest.approx(1.0)
    assert r["harmlessness/privacy"] == pytest.approx(0.5)
    assert r["harmlessness/no-harassment"] == pytest.approx(0.05)
    assert [n.principle_name for n in nodes] == [CRIME] and nodes[0].relevance == pytest.approx(1.0)


def test_a_larger_budget_goes_on_from_the_stored_tree(scripted, pairs, db_url):
    """B = 1, D = 1 stops after one node (a tail exit); B = 2, D = 3 extended from it asks the model only
    for the new nodes and stores the tree a fresh build gives."""
    script = dict(
        relevance={CRIME: 0.9, PRIVACY: 0.8, HATE: 0.7, VULN: 0.6},
        verdict={CRIME: (0.65, 0.35), PRIVACY: (0.5, 0.5), HATE: (0.65, 0.35), VULN: (0.9, 0.1)},
    )
    model = scripted(**script)
    small = TreeConfig(**PER_PRINCIPLE, max_backtraces=1, max_depth=1)
    big = TreeConfig(**PER_PRINCIPLE, max_backtraces=2, max_depth=3)
    assert build_trees(model, pairs, small, url=db_url) == 3
    with session_scope(db_url) as s:
        old, old_nodes = latest_tree(s, pairs[0], config_hash=small.hash())
        old_id = old.id
    assert [n.role for n in old_nodes] == ["exit"] and old.config["stop"] == "depth"
    model.calls.clear()
    assert build_trees(model, pairs, big, url=db_url, extend_from=small.hash()) == 3
    step = [("generate", 3), ("score", 3), ("score", 3), ("generate", 3), ("score", 3)]
    assert model.calls == step * 3  # privacy, hate, vulnerable people: no relevance pass, no first node again
    fresh_model = scripted(**script)  # another spec: a fresh build beside the extended one
    build_trees(fresh_model, pairs, big, url=db_url)
    with session_scope(db_url) as s:
        tree, nodes = latest_tree(s, pairs[0], model.spec, big.hash())
        fresh, fresh_nodes = latest_tree(s, pairs[0], fresh_model.spec, big.hash())
    assert [n.principle_name for n in nodes] == [CRIME, PRIVACY, HATE, VULN]
    assert [n.role for n in nodes] == ["continue", "pruned_by_search", "continue", "exit"]  # tail exit undone
    same = ("principle_id", "role", "p_a", "relevance", "thought", "info", "tokens")
    assert [[getattr(n, k) for k in same] for n in nodes] == [
        [getattr(n, k) for k in same] for n in fresh_nodes
    ]
    for key in ("stop", "orders", "initial_relevance"):
        assert tree.config[key] == fresh.config[key]
    assert (tree.depth, tree.backtraces, tree.tokens) == (fresh.depth, fresh.backtraces, fresh.tokens)
    assert tree.config["extended_from"] == {"tree_id": old_id, "config_hash": small.hash()}
    assert build_trees(model, pairs, big, url=db_url, extend_from=small.hash()) == 0  # idempotent


def test_other_thresholds_replay_the_stored_trees_as_a_fresh_build_would(scripted, pairs, db_url):
    """A lower tau_exit or a smaller depth stops the replayed search sooner: no model call, and the tree a
    fresh build under those thresholds gives; a higher tau_exit goes past the stored exit with new nodes."""
    script = dict(
        relevance={CRIME: 0.9, PRIVACY: 0.8, HATE: 0.7},
        verdict={CRIME: (0.68, 0.32), PRIVACY: (0.9, 0.1), HATE: (0.95, 0.05)},
    )
    model = scripted(**script)
    stored = TreeConfig(**PER_PRINCIPLE, max_backtraces=2, max_depth=3)  # crime 0.68 continues, privacy exits
    build_trees(model, pairs, stored, url=db_url)
    for cfg, roles in (
        (TreeConfig(**PER_PRINCIPLE, max_backtraces=2, max_depth=3, tau_exit=0.65), ["exit"]),
        (TreeConfig(**PER_PRINCIPLE, max_backtraces=2, max_depth=1), ["exit"]),
        (
            TreeConfig(**PER_PRINCIPLE, max_backtraces=2, max_depth=3, tau_exit=0.92),
            ["continue", "continue", "exit"],
        ),
    ):
        model.calls.clear()
        assert build_trees(model, pairs, cfg, url=db_url, extend_from=stored.hash()) == 3
        new_calls = model.calls[:]
        fresh_model = scripted(**script)
        build_trees(fresh_model, pairs, cfg, url=db_url)
        with session_scope(db_url) as s:
            tree, nodes = latest_tree(s, pairs[0], model.spec, cfg.hash())
            fresh, fresh_nodes = latest_tree(s, pairs[0], fresh_model.spec, cfg.hash())
        assert [n.role for n in nodes] == roles
        assert bool(new_calls) == (len(roles) == 3)  # only the higher tau_exit needs a node the store lacks
        same = ("principle_id", "role", "p_a", "relevance", "thought", "info", "tokens")
        assert [[getattr(n, k) for k in same] for n in nodes] == [
            [getattr(n, k) for k in same] for n in fresh_nodes
        ]
        assert (tree.config["stop"], tree.depth, tree.tokens) == (
            fresh.config["stop"],
            fresh.depth,
            fresh.tokens,
        )
        assert tree.config["orders"] == fresh.config["orders"]


def test_a_tree_that_exited_extends_to_itself_and_other_configs_are_refused(scripted, pairs, db_url):
    model = scripted(relevance={CRIME: 0.9, PRIVACY: 0.8}, verdict={CRIME: (0.9, 0.1), PRIVACY: (0.9, 0.1)})
    small = TreeConfig(**PER_PRINCIPLE, max_backtraces=1, max_depth=2)
    build_trees(model, pairs, small, url=db_url)
    model.calls.clear()
    build_trees(
        model,
        pairs,
        TreeConfig(**PER_PRINCIPLE, max_backtraces=3, max_depth=4),
        url=db_url,
        extend_from=small.hash(),
    )
    assert model.calls == []  # the search had stopped on an exit: nothing more to ask
    with pytest.raises(ValueError, match="differs in thought_max_tokens"):  # the nodes would say other things
        build_trees(
            model,
            pairs,
            TreeConfig(**PER_PRINCIPLE, thought_max_tokens=16),
            url=db_url,
            extend_from=small.hash(),
        )
    with session_scope(db_url) as s:  # a tree from before per-order verdicts were stored
        tree, _ = latest_tree(s, pairs[0], config_hash=small.hash())
        tree.config = {**tree.config, "orders": []}
    with pytest.raises(ValueError, match="both orders"):
        build_trees(
            model,
            pairs,
            TreeConfig(**PER_PRINCIPLE, max_backtraces=2, max_depth=2),
            url=db_url,
            extend_from=small.hash(),
        )
