"""What the app does, as plain methods: the annotator page, the admin dashboard and the HTTP API,
callable (and tested) without a browser. `w2s_app/ui.py` lays out the page and wires Gradio's events to
these methods; it is the only module that knows about Gradio.

Every method takes the signed-in user's name, opens its own store transaction and returns a named
result (`PairPage`, `AdminPage`, plain dicts for the API), so nothing submitted lives only in the
server's memory. A refusal meant for the user (not a fault) is raised as `Refused`.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass
from importlib import resources

import pandas as pd
from sqlmodel import Session

from w2s.reliance import COLUMNS as RELIANCE_COLUMNS
from w2s.store import Annotation, Pair, QueueItem, Tree, db_url, get_setting, session_scope, set_setting
from w2s_app import queue as Q
from w2s_app import render, security, stats
from w2s_app.exports import AdminExports, ExportRefused

CONF_MIN, CONF_MAX = 1, 5
SERVER_DRAFT_KEYS = ("initial", "revealed", "tree_id")  # evidence first: written by /reveal and the page only


class Refused(Exception):
    """A message for the user; not a server fault."""


def asset(name: str) -> str:
    return resources.files("w2s_app").joinpath(name).read_text(encoding="utf-8")


def rating_to_confidence(rating: float) -> float:
    """1..5 on the page -> probability-like confidence 0.5..1.0 in the store (a weak model's scale)."""
    rating = min(max(float(rating), CONF_MIN), CONF_MAX)
    return 0.5 + 0.5 * (rating - CONF_MIN) / (CONF_MAX - CONF_MIN)


def confidence_to_rating(conf: float) -> int:
    return round(CONF_MIN + (min(max(conf, 0.5), 1.0) - 0.5) / 0.5 * (CONF_MAX - CONF_MIN))


def tree_caption(tree: Tree | None) -> str:
    """Says on the page which strong model (and config) built the tree shown."""
    return f"Tree by `{tree.strong_model.replace('`', '')}` (config {tree.config_hash})." if tree else ""


def guidelines(session: Session) -> str:
    return get_setting(session, "guidelines") or asset("guidelines.md")


def retree(s: Session, view: dict) -> str:
    """The page's tree after a prune or restore: the tree it was served (not one built since, whose node
    ids the page's prunes do not name), with the pruned nodes marked, its verdicts shown once revealed."""
    _, nodes = Q.served_tree(s, view.get("tree_id"))
    return tree_for(nodes, view)


def tree_for(nodes, view: dict) -> str:
    pruned = {int(k): v for k, v in (view.get("pruned") or {}).items()}
    return render.tree_html(nodes, pruned, reveal=bool(view.get("revealed", True)), reasons=Q.PRUNE_REASONS)


def keep_committed(s: Session, user: str, pair_id: str, state: dict) -> dict:
    """`state` with what evidence first committed for this pair (the initial label, its reveal, the tree it
    was made on) as stored: a later draft (another tab, the API) never drops or rewrites it."""
    stored = Q.load_draft(s, user, pair_id) or {}
    if not stored.get("initial"):
        return state
    return {**state, **{k: stored[k] for k in SERVER_DRAFT_KEYS if k in stored}}


def initial_of(s: Session, ann: Annotation) -> dict | None:
    """The initial (pre-verdict) label an annotation carried; for an undo's row, the withdrawn label's."""
    if ann.retracted and ann.supersedes_id:
        ann = s.get(Annotation, ann.supersedes_id) or ann
    return (ann.meta or {}).get("initial")


def api_nodes(nodes, *, verdicts: bool) -> list[dict]:
    """The API's view of a tree's nodes; without `verdicts` (evidence first), no P(A) nor what is read off
    it (info), and the most relevant node first, as the page shows them."""
    if not verdicts:
        nodes = render.evidence_order(nodes)
    out = []
    for n in nodes:
        node = {"id": n.id, "principle": n.principle_name, "relevance": n.relevance, "thought": n.thought}
        if verdicts:
            node.update(info=n.info, p_a=n.p_a)
        out.append(node)
    return out


@dataclass
class PairPage:
    """Everything the annotator page shows for one item (or the empty queue)."""

    view: dict
    """The page's state: token, pair_id, tree_id (the tree served), pruned {node_id: reason}, hist, opened,
    revealed (the verdicts are on the page), initial (the label committed before they were; or None)."""
    status: str
    progress: str
    conversation: str = ""
    response_a: str = ""
    response_b: str = ""
    diff: str = ""
    """The difference tools and, for code, the unified diff (render.PairHtml.diff)."""
    tree: str = ""
    label: str | None = None
    rating: int = 3
    comment: str = ""


@dataclass
class AdminPage:
    summary: str
    annotators: pd.DataFrame
    kappa: pd.DataFrame
    alpha: str
    pruning: pd.DataFrame
    reliance: pd.DataFrame
    """Evidence-first on gold pairs: accuracy before/after the verdicts, over- and useful reliance."""
    label_sets: list[str]


@dataclass
class Welcome:
    header: str
    guidelines: str
    is_admin: bool
    page: PairPage


class Handlers:
    """The app bound to one store URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        # SQLite has one writer at a time and the store opens every transaction with BEGIN IMMEDIATE;
        # taking the turn in-process (a FIFO-ish lock) avoids SQLite's sleeping busy-wait, which made the
        # latency tail.
        self.lock = threading.Lock() if db_url(url).startswith("sqlite") else contextlib.nullcontext()
        self.roles = security.Credentials(self.tx)  # active users' roles, and what ends a session (ui.launch)
        self.exports = AdminExports()

    @contextlib.contextmanager
    def tx(self):
        with self.lock, session_scope(self.url) as s:
            yield s

    def whoami(self, name: str | None) -> tuple[str, str]:
        if not name:
            raise Refused("Please log in.")
        role = self.roles.get(name)
        if role is None:
            raise Refused("Unknown or inactive user.")
        return name, role

    def admin_only(self, name: str | None) -> str:
        name, role = self.whoami(name)
        if role != "admin":
            raise Refused("Only admins can do that.")
        return name

    # ------------------------------------------------------------------------------ annotator page

    def show(
        self,
        s: Session,
        user: str,
        item: QueueItem | None,
        hist_index: int | None = None,
        note: str = "",
        cfg: Q.QueueConfig | None = None,
    ) -> PairPage:
        """Everything the annotator page displays for one item (or the empty queue)."""
        cfg = cfg or Q.load_config(s)
        prog = Q.progress(s, user, cfg)
        progress = render.progress_html(prog["done"], prog["remaining"])
        if item is None:
            view = {"token": None, "pair_id": None, "tree_id": None, "pruned": {}, "hist": None,
                    "opened": time.time()}  # fmt: skip
            msg = note or "Your queue is empty: thank you! Use ← to review your history."
            return PairPage(view, msg, progress, tree="<div class='w2s-notree'>Nothing to label.</div>")
        pair = s.get(Pair, item.pair_id)
        state = Q.load_draft(s, user, pair.id)
        source = "draft"
        if state is None and item.annotation_id:
            ann = s.get(Annotation, item.annotation_id)
            state = {
                "label": ann.label,
                "rating": (ann.meta or {}).get("rating", confidence_to_rating(ann.confidence)),
                "comment": "" if ann.retracted else ann.comment,
                "pruned": {str(p["node_id"]): p["reason"] for p in ann.pruned or []},
                "initial": initial_of(s, ann),
                "revealed": True,  # labelled once: the verdicts were seen
            }
            source = "withdrawn label" if ann.retracted else "your label"
        state = state or {}
        # the tree the draft's or label's prunes name, not one built or chosen since (Q.item_tree)
        tree, nodes = Q.item_tree(s, item)
        pruned = {int(k): v for k, v in (state.get("pruned") or {}).items()}
        # evidence first: no verdict reaches the page before the annotator's own label (kept in the draft,
        # so a reload cannot undo the order)
        hold_back = cfg.evidence_first and bool(nodes) and not state.get("revealed") and not state.get("initial")
        view = {
            "token": Q.make_token(item),
            "pair_id": pair.id,
            "tree_id": tree.id if tree else None,
            "pruned": {str(k): v for k, v in pruned.items()},
            "hist": hist_index,
            "opened": time.time(),
            "revealed": not hold_back,
            "initial": state.get("initial"),
        }
        parts = []
        if hist_index is not None:
            parts.append(f"History {hist_index + 1}: submitting stores a correction of your label.")
        elif item.attempt and item.status == "open":
            parts.append("Reopened by undo.")
        if source == "draft" and state:
            parts.append("Draft restored.")
        if not cfg.blind:
            others = Q.others_labels(s, user, pair.id)
            if others:
                parts.append("Others: " + ", ".join(f"{n}={lab.upper()}" for n, lab in others))
        if note:
            parts.append(note)
        if hold_back:
            parts.append("Evidence first: read the principles and thoughts, choose your label, press Enter; "
                         "then the strong model's verdicts appear and you may change your mind.")
        shown = render.pair_html(pair.dataset, pair.meta, pair.prompt, pair.response_a, pair.response_b)
        return PairPage(
            view,
            " ".join(filter(None, [*parts, tree_caption(tree)])) or f"Pair `{pair.id[:12]}`",
            progress,
            shown.conversation,
            shown.response_a,
            shown.response_b,
            shown.diff,
            tree_for(nodes, view),
            state.get("label"),
            state.get("rating", 3),
            state.get("comment", ""),
        )

    def show_queue(self, user: str, note: str = "") -> PairPage:
        with self.tx() as s:
            cfg = Q.load_config(s)
            return self.show(s, user, Q.next_item(s, user, cfg), note=note, cfg=cfg)

    def submit(self, user: str, view: dict, label: str | None, rating: float, comment: str) -> PairPage:
        """Store the page's label with its prunes, against the tree the page was served."""
        user, _ = self.whoami(user)
        if not view or not view.get("token"):
            raise Refused("Nothing to submit.")
        if label not in ("a", "b", "tie"):
            raise Refused("Choose A, B or tie first (keys 1, 2, 0).")
        try:
            rating = security.check_rating(rating, CONF_MIN, CONF_MAX)
            comment = security.check_comment(comment)
        except security.InputError as e:
            raise Refused(str(e)) from None
        if not view.get("revealed", True):
            return self.reveal(user, view, label, rating, comment)
        pruned = [{"node_id": int(k), "reason": v} for k, v in (view.get("pruned") or {}).items()]
        meta = {"rating": int(rating)}
        seconds = time.time() - float(view.get("opened", time.time()))
        if view.get("initial"):
            meta["initial"] = view["initial"]
            seconds += float(view["initial"].get("seconds") or 0.0)
        with self.tx() as s:
            try:
                Q.submit(
                    s,
                    user,
                    view["token"],
                    label,
                    confidence=rating_to_confidence(rating),
                    comment=comment or "",
                    pruned=pruned,
                    tree_id=view.get("tree_id"),
                    seconds=seconds,
                    meta=meta,
                )
            except Q.QueueError as e:
                raise Refused(str(e)) from None
        return self.show_queue(user, note=f"Saved {label.upper()}.")

    def reveal(self, user: str, view: dict, label: str, rating: float, comment: str) -> PairPage:
        """Evidence first: keep the label chosen before any verdict was shown (in the draft, so that it
        survives a reload), then show the same pair with the verdicts."""
        initial = {"label": label, "rating": int(rating),
                   "seconds": round(time.time() - float(view.get("opened", time.time())), 3)}  # fmt: skip
        with self.tx() as s:
            try:
                item = Q.item_for(s, user, view["token"])
            except Q.QueueError as e:
                raise Refused(str(e)) from None
            draft = {"label": label, "rating": rating, "comment": comment or "", "pruned": view.get("pruned") or {},
                     "initial": initial, "revealed": True, "tree_id": view.get("tree_id")}  # fmt: skip
            draft = keep_committed(s, user, item.pair_id, draft)  # revealed in another tab first: that label
            Q.save_draft(s, user, item.pair_id, draft)
            page = self.show(s, user, item, hist_index=view.get("hist"))
        page.status = (f"Your first label: {draft['initial']['label'].upper()}. The strong model's verdicts are "
                       "shown now: keep your label or change it, then submit [Enter].")  # fmt: skip
        return page

    def skip(self, user: str, view: dict) -> PairPage:
        user, _ = self.whoami(user)
        if view and view.get("token") and view.get("hist") is None:
            with self.tx() as s:
                Q.skip(s, user, view["token"])
        return self.show_queue(user, note="Skipped.")

    def save_draft(self, user: str, view: dict, label: str | None, rating: float, comment: str) -> str:
        user, _ = self.whoami(user)
        if not view or not view.get("pair_id"):
            raise Refused("Nothing to save.")
        if label not in ("a", "b", "tie", None):
            raise Refused("A label is A, B or tie.")
        try:
            rating = security.check_rating(rating, CONF_MIN, CONF_MAX)
            security.check_comment(comment)
        except security.InputError as e:
            raise Refused(str(e)) from None
        with self.tx() as s:
            draft = {"label": label, "rating": rating, "comment": comment or "", "pruned": view.get("pruned") or {},
                     "initial": view.get("initial"), "revealed": bool(view.get("revealed", True)),
                     "tree_id": view.get("tree_id")}  # fmt: skip
            Q.save_draft(s, user, view["pair_id"], keep_committed(s, user, view["pair_id"], draft))
        return "Draft saved."

    def undo(self, user: str) -> PairPage:
        user, _ = self.whoami(user)
        with self.tx() as s:
            item = Q.undo_last(s, user)
        note = "Undone: your last label is withdrawn." if item else "Nothing to undo."
        return self.show_queue(user, note=note)

    def history(self, user: str, view: dict, step: int) -> PairPage:
        user, _ = self.whoami(user)
        with self.tx() as s:
            hist = Q.history(s, user)
            cur = view.get("hist") if view else None
            idx = (len(hist) if cur is None else cur) + step
            if idx < 0 or not hist:
                idx = 0 if hist else None
            if idx is None or idx >= len(hist):
                return self.show(s, user, Q.next_item(s, user))
            return self.show(s, user, hist[idx], hist_index=idx)

    def prune(self, view: dict, node_id, reason: str | None) -> tuple[dict, str]:
        if not view or not view.get("tree_id"):
            raise Refused("This pair has no tree.")
        if node_id is None:
            raise Refused("Choose a node to prune.")
        reason = reason or "other"
        if reason not in Q.PRUNE_REASONS:
            raise Refused(f"A prune reason is one of: {', '.join(Q.PRUNE_REASONS)}.")
        pruned = dict(view.get("pruned") or {})
        pruned[str(int(node_id))] = reason
        return self._retree({**view, "pruned": pruned})

    def restore(self, view: dict, node_id) -> tuple[dict, str]:
        if not view or node_id is None:
            raise Refused("Choose a node to restore.")
        pruned = dict(view.get("pruned") or {})
        pruned.pop(str(int(node_id)), None)
        return self._retree({**view, "pruned": pruned})

    def node_action(self, view: dict, action_json: str) -> tuple[dict, str]:
        """A prune or restore button on a node (or its key): `{"action", "node_id", "reason"}`."""
        try:
            action = security.parse_node_action(action_json)
        except security.InputError as e:
            raise Refused(str(e)) from None
        if action["action"] == "restore":
            return self.restore(view, action["node_id"])
        return self.prune(view, action["node_id"], action.get("reason"))

    def _retree(self, view: dict) -> tuple[dict, str]:
        with self.tx() as s:
            return view, retree(s, view)

    def welcome(self, user: str) -> Welcome:
        user, role = self.whoami(user)
        with self.tx() as s:
            text = guidelines(s)
        header = f"**w2s** · signed in as **{user}** ({role}) · press <kbd>?</kbd> for keys"
        return Welcome(header, text, role == "admin", self.show_queue(user))

    # ------------------------------------------------------------------------------ admin

    def admin_page(self, user: str) -> AdminPage:
        self.admin_only(user)
        with self.tx() as s:
            anns = stats.human_annotations(s)
            table = pd.DataFrame(stats.annotator_table(s, anns)).round(3)
            over = stats.overall(s, anns)
            agr = stats.agreement(anns)
            prune = pd.DataFrame(
                stats.pruning_stats(s, anns),
                columns=["principle", "shown", "pruned", "prune_rate", "reasons"],
            ).round(3)
            reliance = pd.DataFrame(stats.reliance_table(s, anns), columns=list(RELIANCE_COLUMNS))
            cfg = Q.load_config(s)
            sets = stats.label_set_names(s) or ["default"]
        kappa = pd.DataFrame(
            [(a, b, round(k, 3)) for (a, b), k in sorted(agr["kappa"].items())],
            columns=["annotator 1", "annotator 2", "Cohen's kappa"],
        )
        if not agr["available"]:
            alpha = "Agreement measures unavailable (`w2s.agreement` not installed)."
        elif agr["alpha"] is None or math.isnan(agr["alpha"]):
            alpha = "Krippendorff's α: undefined so far (too few overlapping labels, or no variation)."
        else:
            alpha = f"Krippendorff's α (all annotators): **{agr['alpha']:.3f}**"
        summary = (
            f"**{over['pairs_labelled']}** pairs labelled by humans ({over['human_labels']} labels, "
            f"{over['pairs_with_2plus']} with ≥2 labels) · {over['pairs_for_humans']} pairs routed to humans · "
            f"{over['gold_pairs']} gold/attention pairs · overlap k={cfg.overlap}, gold rate {cfg.gold_rate:.0%}, "
            f"routing '{cfg.routing}', blind {'on' if cfg.blind else 'off'}, "
            f"evidence first {'on' if cfg.evidence_first else 'off'}"
        )
        return AdminPage(summary, table, kappa, alpha, prune, reliance, sets)

    def queue_settings(self, user: str) -> Q.QueueConfig:
        self.admin_only(user)
        with self.tx() as s:
            return Q.load_config(s)

    def save_queue_settings(self, user: str, **settings) -> str:
        self.admin_only(user)
        try:
            cfg = Q.QueueConfig(
                overlap=int(settings["overlap"]),
                gold_rate=float(settings["gold_rate"]),
                gold_split=str(settings["gold_split"]),
                quota=int(settings["quota"]),
                routing=str(settings["routing"]),
                route_fraction=float(settings["route_fraction"]),
                blind=bool(settings["blind"]),
                evidence_first=bool(settings.get("evidence_first", True)),
            )
        except Q.QueueError as e:
            raise Refused(str(e)) from None
        with self.tx() as s:
            Q.save_config(s, cfg)
            n = Q.sync_pool(s, cfg)
        return f"Saved; pool of {n} pairs re-synced."

    def export(self, user: str, kind: str, fmt: str, label_set: str | None) -> tuple[str, str]:
        """(download link, message): the label set, every raw annotation, or the current human labels,
        written into the admins' private export folder (served by ui.launch's guard)."""
        self.admin_only(user)
        try:
            with self.tx() as s:
                token, path, n = self.exports.write(s, kind, fmt, label_set)
        except ExportRefused as e:
            raise Refused(str(e)) from None
        link = render.download_link(self.exports.link(token, path), path.name)
        return link, f"Exported {n} rows to `{path.name}` (the link works for admins for 10 minutes)."

    def save_guidelines(self, user: str, text: str) -> tuple[str, str]:
        self.admin_only(user)
        with self.tx() as s:
            set_setting(s, "guidelines", text)
        return text, "Guidelines saved."

    # ------------------------------------------------------------------------------ API (gradio_client)

    def api_next_pair(self, user: str) -> dict:
        """The caller's next pair: token, texts, tree nodes (most informative first), progress. In
        evidence-first mode the nodes come without their verdicts (`verdicts_hidden`) until /reveal."""
        user, _ = self.whoami(user)
        with self.tx() as s:
            cfg = Q.load_config(s)  # once per request: each read is a query
            item = Q.next_item(s, user, cfg)
            prog = Q.progress(s, user, cfg)
            if item is None:
                return {"token": None, "progress": prog}
            pair = s.get(Pair, item.pair_id)
            tree, nodes = Q.item_tree(s, item)
            hidden = cfg.evidence_first and bool(nodes) and not (Q.load_draft(s, user, pair.id) or {}).get("initial")
            return {
                "token": Q.make_token(item),
                "pair_id": pair.id,
                "prompt": pair.prompt,
                "response_a": pair.response_a,
                "response_b": pair.response_b,
                "tree_id": tree.id if tree else None,
                "strong_model": tree.strong_model if tree else None,
                "tree_config": tree.config_hash if tree else None,
                "nodes": api_nodes(nodes, verdicts=not hidden),
                "verdicts_hidden": hidden,
                "progress": prog,
            }

    def api_reveal(self, user: str, token: str, initial_label: str, confidence: float = 3) -> dict:
        """Evidence first through the API: keep the caller's initial label (confidence 1-5) for the pair
        named by the token, then hand over the tree's nodes with their verdicts. /submit stores the initial
        label with the final one. A second call keeps the first initial label."""
        user, _ = self.whoami(user)
        if initial_label not in ("a", "b", "tie"):
            raise Refused("initial_label must be 'a', 'b' or 'tie'")
        try:
            rating = security.check_rating(confidence, CONF_MIN, CONF_MAX)
            with self.tx() as s:
                item = Q.item_for(s, user, token)
                tree, nodes = Q.item_tree(s, item)
                draft = Q.load_draft(s, user, item.pair_id) or {}
                if not draft.get("initial"):
                    initial = {"label": initial_label, "rating": rating, "seconds": None}
                    Q.save_draft(s, user, item.pair_id, {**draft, "label": initial_label, "initial": initial,
                                                         "revealed": True, "tree_id": tree.id if tree else None})  # fmt: skip
                    draft["initial"] = initial
                return {"initial": draft["initial"], "tree_id": tree.id if tree else None,
                        "nodes": api_nodes(nodes, verdicts=True)}  # fmt: skip
        except (Q.QueueError, security.InputError) as e:
            raise Refused(str(e)) from None

    def api_submit(
        self, user: str, token: str, label: str, confidence: float = 3, comment: str = "",
        pruned_json: str = "[]", tree_id: int | None = None,
    ) -> dict:  # fmt: skip
        """Store a label (confidence 1-5). Resending the same token stores nothing new. `tree_id` is the
        tree /next_pair served (a tree built since then must not be recorded as the one the label read);
        without it, the tree /next_pair serves now."""
        user, _ = self.whoami(user)
        try:
            rating = security.check_rating(confidence, CONF_MIN, CONF_MAX)
            comment = security.check_comment(comment)
            pruned = security.parse_pruned(pruned_json)
            tree_id = security.check_tree_id(tree_id)
            with self.tx() as s:
                item = Q.item_for(s, user, token)
                if tree_id is None:
                    tree, _ = Q.item_tree(s, item)
                else:
                    tree = s.get(Tree, tree_id)
                    if tree is None or tree.pair_id != item.pair_id:
                        raise Q.QueueError(f"tree {tree_id} is not a tree of pair {item.pair_id}")
                meta = {"rating": int(rating) if rating.is_integer() else rating}
                initial = (Q.load_draft(s, user, item.pair_id) or {}).get("initial")
                if initial:  # committed through /reveal before the verdicts were handed over
                    meta["initial"] = initial
                ann, created = Q.submit(
                    s,
                    user,
                    token,
                    label,
                    confidence=rating_to_confidence(rating),
                    comment=comment,
                    pruned=pruned,
                    tree_id=tree.id if tree else None,
                    meta=meta,
                )
                return {"annotation_id": ann.id, "created": created, "pair_id": ann.pair_id}
        except (Q.QueueError, security.InputError) as e:
            raise Refused(str(e)) from None

    def api_save_draft(self, user: str, token: str, state_json: str) -> str:
        """Save a draft (any JSON object) for the pair named by the token. The evidence-first keys are the
        server's (/reveal writes them): a draft cannot make up, rewrite or drop the initial label, its
        reveal or the tree it was made on, so the over-reliance report reads what annotators committed."""
        user, _ = self.whoami(user)
        try:
            state = {k: v for k, v in security.parse_draft(state_json).items() if k not in SERVER_DRAFT_KEYS}
            with self.tx() as s:
                item = Q.item_for(s, user, token)
                Q.save_draft(s, user, item.pair_id, keep_committed(s, user, item.pair_id, state))
        except (Q.QueueError, security.InputError) as e:
            raise Refused(str(e)) from None
        return "ok"
