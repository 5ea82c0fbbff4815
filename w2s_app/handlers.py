"""What the app does, as plain methods: the annotator page, the admin dashboard and the HTTP API,
callable (and tested) without a browser. The page and the API are thin views over one labelling service
(`w2s_app.labelling`); `w2s_app/ui.py` lays out the page and wires Gradio's events to these methods; it is
the only module that knows about Gradio.

Every method takes the signed-in user's name, opens its own store transaction and returns a named
result (`PairPage`, `AdminPage`, plain dicts for the API), so nothing submitted lives only in the
server's memory. A refusal meant for the user (not a fault) is raised as `Refused`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
from dataclasses import dataclass, field
from importlib import resources

import pandas as pd
from sqlmodel import Session

from w2s.labels.evidence_first import COLUMNS as RELIANCE_COLUMNS
from w2s.store import QueueItem, Tree, db_url, get_setting, session_scope, set_setting
from w2s_app import labelling as L
from w2s_app import queue as Q
from w2s_app import render, security, stats
from w2s_app.exports import AdminExports, ExportRefused
from w2s_app.labelling import CONF_MAX, CONF_MIN, SERVER_DRAFT_KEYS, Refused


def asset(name: str) -> str:
    return resources.files("w2s_app").joinpath(name).read_text(encoding="utf-8")


def tree_caption(tree: Tree | None) -> str:
    """Says on the page which strong model (and config) built the tree shown."""
    return f"Tree by `{tree.strong_model.replace('`', '')}` (config {tree.config_hash})." if tree else ""


def guidelines(session: Session) -> str:
    return get_setting(session, "guidelines") or asset("guidelines.md")


@dataclass
class PageState:
    """The annotator page's state for the item it shows; kept on the server (Gradio's session state), so
    the page cannot make up what evidence first committed."""

    token: str | None = None
    """What a submit sends back (`queue.make_token`); None: nothing to submit."""
    pair_id: str | None = None
    tree_id: int | None = None
    """The tree served: the page's prunes and initial label name its nodes, whatever is built since."""
    pruned: dict[str, str] = field(default_factory=dict)
    """{node id: prune reason}"""
    hist: int | None = None
    """The item's place in the annotator's history; None for the queue."""
    opened: float = 0.0
    """When the page was shown (epoch seconds): the time a label took."""
    revealed: bool = True
    """The strong model's verdicts are on the page (evidence first holds them back until `initial`)."""
    initial: dict | None = None
    """The label committed before the verdicts were shown (evidence first), or None."""

    def pruned_list(self) -> list[dict]:
        return [{"node_id": int(k), "reason": v} for k, v in self.pruned.items()]


def retree(s: Session, view: PageState) -> str:
    """The page's tree after a prune or restore: the tree it was served (not one built since, whose node
    ids the page's prunes do not name), with the pruned nodes marked, its verdicts shown once revealed."""
    _, nodes = Q.served_tree(s, view.tree_id)
    return tree_for(nodes, view)


def tree_for(nodes, view: PageState) -> str:
    pruned = {int(k): v for k, v in view.pruned.items()}
    return render.tree_html(nodes, pruned, reveal=view.revealed, reasons=Q.PRUNE_REASONS)


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


def refused_input(fn, *args):
    """`fn(*args)` with a bad input (`security.InputError`) refused with its message."""
    try:
        return fn(*args)
    except security.InputError as e:
        raise Refused(str(e)) from None


@dataclass
class PairPage:
    """Everything the annotator page shows for one item (or the empty queue)."""

    view: PageState
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
            msg = note or "Your queue is empty: thank you! Use ← to review your history."
            return PairPage(
                PageState(opened=time.time()),
                msg,
                progress,
                tree="<div class='w2s-notree'>Nothing to label.</div>",
            )
        shown = L.view_item(s, user, item, cfg)
        work = shown.work
        view = PageState(
            token=Q.make_token(item),
            pair_id=shown.pair.id,
            tree_id=shown.tree.id if shown.tree else None,
            pruned={str(int(k)): v for k, v in (work.get("pruned") or {}).items()},
            hist=hist_index,
            opened=time.time(),
            revealed=shown.verdicts,
            initial=work.get("initial"),
        )
        parts = []
        if hist_index is not None:
            parts.append(f"History {hist_index + 1}: submitting stores a correction of your label.")
        elif item.attempt and item.status == "open":
            parts.append("Reopened by undo.")
        if shown.source == "draft" and work:
            parts.append("Draft restored.")
        if not cfg.blind:
            others = Q.others_labels(s, user, shown.pair.id)
            if others:
                parts.append("Others: " + ", ".join(f"{n}={lab.upper()}" for n, lab in others))
        if note:
            parts.append(note)
        if not shown.verdicts:
            parts.append(
                "Evidence first: read the principles and thoughts, choose your label, press Enter; "
                "then the strong model's verdicts appear and you may change your mind."
            )
        pair = shown.pair
        texts = render.pair_html(pair.dataset, pair.meta, pair.prompt, pair.response_a, pair.response_b)
        return PairPage(
            view,
            " ".join(filter(None, [*parts, tree_caption(shown.tree)])) or f"Pair `{pair.id[:12]}`",
            progress,
            texts.conversation,
            texts.response_a,
            texts.response_b,
            texts.diff,
            tree_for(shown.nodes, view),
            work.get("label"),
            work.get("rating", 3),
            work.get("comment", ""),
        )

    def show_queue(self, user: str, note: str = "") -> PairPage:
        with self.tx() as s:
            cfg = Q.load_config(s)
            return self.show(s, user, Q.next_item(s, user, cfg), note=note, cfg=cfg)

    def submit(
        self, user: str, view: PageState | None, label: str | None, rating: float, comment: str
    ) -> PairPage:
        """Store the page's label with its prunes, against the tree the page was served; while evidence first
        holds the verdicts back, commit it as the initial label and show them instead."""
        user, _ = self.whoami(user)
        if view is None or not view.token:
            raise Refused("Nothing to submit.")
        if label is None:
            raise Refused("Choose A, B or tie first (keys 1, 2, 0).")
        if not view.revealed:
            return self.reveal(user, view, label, rating, comment)
        seconds = time.time() - view.opened
        if view.initial:
            seconds += float(view.initial.get("seconds") or 0.0)
        with self.tx() as s:
            L.submit(
                s,
                user,
                view.token,
                label,
                rating,
                tree_id=view.tree_id,
                comment=comment,
                pruned=view.pruned_list(),
                seconds=seconds,
            )
        return self.show_queue(user, note=f"Saved {label.upper()}.")

    def reveal(self, user: str, view: PageState, label: str, rating: float, comment: str) -> PairPage:
        """Evidence first: commit the label chosen before any verdict was shown, then show the same pair
        with the verdicts."""
        seconds = round(time.time() - view.opened, 3)
        with self.tx() as s:
            item, draft = L.reveal(
                s,
                user,
                view.token,
                label,
                rating,
                tree_id=view.tree_id,
                comment=comment,
                pruned=view.pruned,
                seconds=seconds,
            )
            page = self.show(s, user, item, hist_index=view.hist)
        page.status = (
            f"Your first label: {draft['initial']['label'].upper()}. The strong model's verdicts are "
            "shown now: keep your label or change it, then submit [Enter]."
        )
        return page

    def skip(self, user: str, view: PageState | None) -> PairPage:
        user, _ = self.whoami(user)
        if view is not None and view.token and view.hist is None:
            with self.tx() as s:
                L.skip(s, user, view.token)
        return self.show_queue(user, note="Skipped.")

    def save_draft(
        self, user: str, view: PageState | None, label: str | None, rating: float, comment: str
    ) -> str:
        user, _ = self.whoami(user)
        if view is None or not view.pair_id:
            raise Refused("Nothing to save.")
        if label not in ("a", "b", "tie", None):
            raise Refused("A label is A, B or tie.")
        rating = refused_input(security.check_rating, rating, CONF_MIN, CONF_MAX)
        comment = refused_input(security.check_comment, comment)
        draft = {
            "label": label,
            "rating": rating,
            "comment": comment,
            "pruned": view.pruned,
            "initial": view.initial,
            "revealed": view.revealed,
            "tree_id": view.tree_id,
        }
        with self.tx() as s:
            L.save_draft(s, user, view.pair_id, draft)
        return "Draft saved."

    def undo(self, user: str) -> PairPage:
        user, _ = self.whoami(user)
        with self.tx() as s:
            item = L.undo(s, user)
        note = "Undone: your last label is withdrawn." if item else "Nothing to undo."
        return self.show_queue(user, note=note)

    def history(self, user: str, view: PageState | None, step: int) -> PairPage:
        user, _ = self.whoami(user)
        with self.tx() as s:
            hist = Q.history(s, user)
            cur = view.hist if view is not None else None
            idx = (len(hist) if cur is None else cur) + step
            if idx < 0 or not hist:
                idx = 0 if hist else None
            if idx is None or idx >= len(hist):
                return self.show(s, user, Q.next_item(s, user))
            return self.show(s, user, hist[idx], hist_index=idx)

    def prune(self, view: PageState | None, node_id, reason: str | None) -> tuple[PageState, str]:
        if view is None or view.tree_id is None:
            raise Refused("This pair has no tree.")
        if node_id is None:
            raise Refused("Choose a node to prune.")
        reason = reason or "other"
        if reason not in Q.PRUNE_REASONS:
            raise Refused(f"A prune reason is one of: {', '.join(Q.PRUNE_REASONS)}.")
        return self._retree(dataclasses.replace(view, pruned={**view.pruned, str(int(node_id)): reason}))

    def restore(self, view: PageState | None, node_id) -> tuple[PageState, str]:
        if view is None or node_id is None:
            raise Refused("Choose a node to restore.")
        pruned = {k: v for k, v in view.pruned.items() if k != str(int(node_id))}
        return self._retree(dataclasses.replace(view, pruned=pruned))

    def node_action(self, view: PageState | None, action_json: str) -> tuple[PageState, str]:
        """A prune or restore button on a node (or its key): `{"action", "node_id", "reason"}`."""
        action = refused_input(security.parse_node_action, action_json)
        if action["action"] == "restore":
            return self.restore(view, action["node_id"])
        return self.prune(view, action["node_id"], action.get("reason"))

    def _retree(self, view: PageState) -> tuple[PageState, str]:
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
            alpha = "Agreement measures unavailable (`w2s.labels.agreement` not installed)."
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
            shown = L.next_view(s, user, cfg)
            prog = Q.progress(s, user, cfg)
            if shown is None:
                return {"token": None, "progress": prog}
            tree = shown.tree
            return {
                "token": Q.make_token(shown.item),
                "pair_id": shown.pair.id,
                "prompt": shown.pair.prompt,
                "response_a": shown.pair.response_a,
                "response_b": shown.pair.response_b,
                "tree_id": tree.id if tree else None,
                "strong_model": tree.strong_model if tree else None,
                "tree_config": tree.config_hash if tree else None,
                "nodes": api_nodes(shown.nodes, verdicts=shown.verdicts),
                "verdicts_hidden": not shown.verdicts,
                "progress": prog,
            }

    def api_reveal(self, user: str, token: str, initial_label: str, confidence: float = 3) -> dict:
        """Evidence first through the API: keep the caller's initial label (confidence 1-5) for the pair
        named by the token, then hand over the tree's nodes with their verdicts. /submit stores the initial
        label with the final one. A second call keeps the first initial label."""
        user, _ = self.whoami(user)
        with self.tx() as s:
            served, _ = Q.item_tree(s, L.item_for(s, user, token))  # what /next_pair serves
            _, draft = L.reveal(
                s,
                user,
                token,
                initial_label,
                confidence,
                tree_id=served.id if served else None,
                what="initial_label",
            )
            tree, nodes = Q.served_tree(s, draft["tree_id"])  # the tree the first initial label was made on
            return {
                "initial": draft["initial"],
                "tree_id": tree.id if tree else None,
                "nodes": api_nodes(nodes, verdicts=True),
            }

    def api_submit(
        self,
        user: str,
        token: str,
        label: str,
        confidence: float = 3,
        comment: str = "",
        pruned_json: str = "[]",
        tree_id: int | None = None,
    ) -> dict:
        """Store a label (confidence 1-5). Resending the same token stores nothing new. `tree_id` is the
        tree /next_pair served (a tree built since then must not be recorded as the one the label read);
        without it, the tree /next_pair serves now."""
        user, _ = self.whoami(user)
        pruned = refused_input(security.parse_pruned, pruned_json)
        tree_id = refused_input(security.check_tree_id, tree_id)
        with self.tx() as s:
            if tree_id is None:
                tree, _ = Q.item_tree(s, L.item_for(s, user, token))
                tree_id = tree.id if tree else None
            ann, created = L.submit(
                s, user, token, label, confidence, tree_id=tree_id, comment=comment, pruned=pruned
            )
            return {"annotation_id": ann.id, "created": created, "pair_id": ann.pair_id}

    def api_skip(self, user: str, token: str) -> str:
        """Give the pair named by the token back; it never comes back to the caller."""
        user, _ = self.whoami(user)
        with self.tx() as s:
            L.skip(s, user, token)
        return "ok"

    def api_save_draft(self, user: str, token: str, state_json: str) -> str:
        """Save a draft (any JSON object) for the pair named by the token. The evidence-first keys are the
        server's (/reveal writes them): a draft cannot make up, rewrite or drop the initial label, its
        reveal or the tree it was made on, so the over-reliance report reads what annotators committed."""
        user, _ = self.whoami(user)
        state = refused_input(security.parse_draft, state_json)
        with self.tx() as s:
            item = L.item_for(s, user, token)
            L.save_draft(
                s, user, item.pair_id, {k: v for k, v in state.items() if k not in SERVER_DRAFT_KEYS}
            )
        return "ok"
