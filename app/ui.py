"""The Gradio application: annotator page, guidelines, admin dashboard, and the HTTP API.

Every handler opens its own store transaction and reads the user from Gradio's login (`request.username`),
so nothing submitted lives only in the server's memory: a killed server loses no label and no draft.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from importlib import resources

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a team server
# Gradio rebuilds a pandas summary of up to 10k past events after every event (cache frequency 1); under
# load that grew to a large share of the server's CPU. Refresh it every 1000 events instead.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")

import gradio as gr
import pandas as pd
from sqlmodel import Session
from starlette.middleware import Middleware

from app import queue as Q
from app import render, security, stats
from app.exports import AdminExports, ExportRefused
from w2s.store import Annotation, Pair, QueueItem, db_url, get_setting, redact, session_scope, set_setting

CONF_MIN, CONF_MAX = 1, 5
HELP_HTML = """<div id="w2s-help" role="dialog" aria-label="Keyboard shortcuts"><b>Keyboard</b><br>
<kbd>1</kbd>/<kbd>A</kbd> A &nbsp; <kbd>2</kbd>/<kbd>B</kbd> B &nbsp; <kbd>0</kbd>/<kbd>T</kbd> tie<br>
<kbd>Enter</kbd> submit &nbsp; <kbd>S</kbd> skip &nbsp; <kbd>D</kbd> save draft &nbsp; <kbd>U</kbd> undo<br>
<kbd>&larr;</kbd>/<kbd>&rarr;</kbd> previous / next in your history &nbsp; <kbd>?</kbd> this help<br>
<i>Keys do nothing while you type in a text field.</i></div>"""


def refuse(message: str) -> gr.Error:
    """A message for the user; not a server fault, so no traceback in the log."""
    return gr.Error(message, print_exception=False)


def _asset(name: str) -> str:
    return resources.files("app").joinpath(name).read_text(encoding="utf-8")


def rating_to_confidence(rating: float) -> float:
    """1..5 on the page -> probability-like confidence 0.5..1.0 in the store (a weak model's scale)."""
    rating = min(max(float(rating), CONF_MIN), CONF_MAX)
    return 0.5 + 0.5 * (rating - CONF_MIN) / (CONF_MAX - CONF_MIN)


def confidence_to_rating(conf: float) -> int:
    return round(CONF_MIN + (min(max(conf, 0.5), 1.0) - 0.5) / 0.5 * (CONF_MAX - CONF_MIN))


def guidelines(session: Session) -> str:
    return get_setting(session, "guidelines") or _asset("guidelines.md")


def build_app(url: str) -> gr.Blocks:
    """The whole application bound to one store URL."""
    # SQLite has one writer at a time and the store opens every transaction with BEGIN IMMEDIATE; taking
    # the turn in-process (a FIFO-ish lock) avoids SQLite's sleeping busy-wait, which made the latency tail.
    lock = threading.Lock() if db_url(url).startswith("sqlite") else contextlib.nullcontext()

    @contextlib.contextmanager
    def tx():
        with lock, session_scope(url) as s:
            yield s

    roles = security.Credentials(tx)  # active users' roles, and what ends a session (see launch)
    admin_exports = AdminExports()

    def whoami(request: gr.Request | None) -> tuple[str, str]:
        name = getattr(request, "username", None)
        if not name:
            raise refuse("Please log in.")
        role = roles.get(name)
        if role is None:
            raise refuse("Unknown or inactive user.")
        return name, role

    def admin_only(request: gr.Request | None) -> str:
        name, role = whoami(request)
        if role != "admin":
            raise refuse("Only admins can do that.")
        return name

    # ------------------------------------------------------------------------------ annotator page

    def show(
        s: Session,
        user: str,
        item: QueueItem | None,
        hist_index: int | None = None,
        note: str = "",
        cfg: Q.QueueConfig | None = None,
    ):
        """Everything the annotator page displays for one item (or the empty queue)."""
        cfg = cfg or Q.load_config(s)
        prog = Q.progress(s, user, cfg)
        progress = render.progress_html(prog["done"], prog["remaining"])
        if item is None:
            view = {
                "token": None,
                "pair_id": None,
                "tree_id": None,
                "pruned": {},
                "hist": None,
                "opened": time.time(),
            }
            msg = note or "Your queue is empty: thank you! Use ← to review your history."
            empty = "<div class='w2s-notree'>Nothing to label.</div>"
            return (
                view,
                msg,
                progress,
                empty,
                "",
                "",
                "",
                gr.update(choices=[], value=None),
                None,
                3,
                "",
            )
        pair = s.get(Pair, item.pair_id)
        tree, nodes = Q.latest_tree(s, pair.id)
        state = Q.load_draft(s, user, pair.id)
        source = "draft"
        if state is None and item.annotation_id:
            ann = s.get(Annotation, item.annotation_id)
            state = {
                "label": ann.label,
                "rating": (ann.meta or {}).get("rating", confidence_to_rating(ann.confidence)),
                "comment": "" if ann.retracted else ann.comment,
                "pruned": {str(p["node_id"]): p["reason"] for p in ann.pruned or []},
            }
            source = "withdrawn label" if ann.retracted else "your label"
        state = state or {}
        pruned = {int(k): v for k, v in (state.get("pruned") or {}).items()}
        view = {
            "token": Q.make_token(item),
            "pair_id": pair.id,
            "tree_id": tree.id if tree else None,
            "pruned": {str(k): v for k, v in pruned.items()},
            "hist": hist_index,
            "opened": time.time(),
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
        choices = [render.node_choice(i, n) for i, n in enumerate(nodes, 1)]
        return (
            view,
            " ".join(parts) or f"Pair `{pair.id[:12]}`",
            progress,
            render.conversation_html(pair.prompt),
            render.response_html("A", pair.response_a),
            render.response_html("B", pair.response_b),
            render.tree_html(nodes, pruned),
            gr.update(choices=choices, value=None),
            state.get("label"),
            state.get("rating", 3),
            state.get("comment", ""),
        )

    def show_queue(user: str, note: str = ""):
        with tx() as s:
            cfg = Q.load_config(s)
            return show(s, user, Q.next_item(s, user, cfg), note=note, cfg=cfg)

    def on_submit(view, label, rating, comment, request: gr.Request):
        user, _ = whoami(request)
        if not view or not view.get("token"):
            raise refuse("Nothing to submit.")
        if label not in ("a", "b", "tie"):
            raise refuse("Choose A, B or tie first (keys 1, 2, 0).")
        try:
            rating = security.check_rating(rating, CONF_MIN, CONF_MAX)
            comment = security.check_comment(comment)
        except security.InputError as e:
            raise refuse(str(e)) from None
        pruned = [{"node_id": int(k), "reason": v} for k, v in (view.get("pruned") or {}).items()]
        with tx() as s:
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
                    seconds=time.time() - float(view.get("opened", time.time())),
                    meta={"rating": int(rating)},
                )
            except Q.QueueError as e:
                raise refuse(str(e)) from None
        return show_queue(user, note=f"Saved {label.upper()}.")

    def on_skip(view, request: gr.Request):
        user, _ = whoami(request)
        if view and view.get("token") and view.get("hist") is None:
            with tx() as s:
                Q.skip(s, user, view["token"])
        return show_queue(user, note="Skipped.")

    def on_draft(view, label, rating, comment, request: gr.Request):
        user, _ = whoami(request)
        if not view or not view.get("pair_id"):
            raise refuse("Nothing to save.")
        try:
            security.check_comment(comment)
        except security.InputError as e:
            raise refuse(str(e)) from None
        with tx() as s:
            Q.save_draft(
                s,
                user,
                view["pair_id"],
                {
                    "label": label,
                    "rating": rating,
                    "comment": comment or "",
                    "pruned": view.get("pruned") or {},
                },
            )
        return "Draft saved."

    def on_undo(request: gr.Request):
        user, _ = whoami(request)
        with tx() as s:
            item = Q.undo_last(s, user)
        return show_queue(user, note="Undone: your last label is withdrawn." if item else "Nothing to undo.")

    def on_history(view, step: int, request: gr.Request):
        user, _ = whoami(request)
        with tx() as s:
            hist = Q.history(s, user)
            cur = view.get("hist") if view else None
            idx = (len(hist) if cur is None else cur) + step
            if idx < 0 or not hist:
                idx = 0 if hist else None
            if idx is None or idx >= len(hist):
                return show(s, user, Q.next_item(s, user))
            return show(s, user, hist[idx], hist_index=idx)

    def on_prev(view, request: gr.Request):
        return on_history(view, -1, request)

    def on_next(view, request: gr.Request):
        return on_history(view, +1, request)

    def on_prune(view, node_id, reason):
        if not view or not view.get("tree_id"):
            raise refuse("This pair has no tree.")
        if node_id is None:
            raise refuse("Choose a node to prune.")
        pruned = dict(view.get("pruned") or {})
        pruned[str(int(node_id))] = reason or "other"
        return _retree({**view, "pruned": pruned})

    def on_restore(view, node_id):
        if not view or node_id is None:
            raise refuse("Choose a node to restore.")
        pruned = dict(view.get("pruned") or {})
        pruned.pop(str(int(node_id)), None)
        return _retree({**view, "pruned": pruned})

    def _retree(view):
        with tx() as s:
            _, nodes = Q.latest_tree(s, view["pair_id"])
        return view, render.tree_html(nodes, {int(k): v for k, v in view["pruned"].items()})

    # ------------------------------------------------------------------------------ admin

    def admin_refresh(request: gr.Request):
        admin_only(request)
        with tx() as s:
            anns = stats.human_annotations(s)
            table = pd.DataFrame(stats.annotator_table(s, anns)).round(3)
            over = stats.overall(s, anns)
            agr = stats.agreement(anns)
            prune = pd.DataFrame(
                stats.pruning_stats(s, anns),
                columns=["principle", "shown", "pruned", "prune_rate", "reasons"],
            ).round(3)
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
            f"routing '{cfg.routing}', blind {'on' if cfg.blind else 'off'}"
        )
        return summary, table, kappa, alpha, prune, gr.update(choices=sets, value=sets[0])

    def admin_load_settings(request: gr.Request):
        admin_only(request)
        with tx() as s:
            c = Q.load_config(s)
        return c.overlap, c.gold_rate, c.gold_split, c.quota, c.routing, c.route_fraction, c.blind

    def admin_save_settings(
        overlap, gold_rate, gold_split, quota, routing, route_fraction, blind, request: gr.Request
    ):
        admin_only(request)
        try:
            cfg = Q.QueueConfig(
                overlap=int(overlap),
                gold_rate=float(gold_rate),
                gold_split=str(gold_split),
                quota=int(quota),
                routing=str(routing),
                route_fraction=float(route_fraction),
                blind=bool(blind),
            )
        except Q.QueueError as e:
            raise refuse(str(e)) from None
        with tx() as s:
            Q.save_config(s, cfg)
            n = Q.sync_pool(s, cfg)
        return f"Saved; pool of {n} pairs re-synced."

    def admin_export(kind: str, fmt: str, label_set: str | None, request: gr.Request):
        admin_only(request)
        try:
            with tx() as s:
                token, path, n = admin_exports.write(s, kind, fmt, label_set)
        except ExportRefused as e:
            raise refuse(str(e)) from None
        link = render.download_link(admin_exports.link(token, path), path.name)
        return link, f"Exported {n} rows to `{path.name}` (the link works for admins for 10 minutes)."

    def exporter(kind: str):
        def export(fmt: str, label_set: str | None, request: gr.Request):
            return admin_export(kind, fmt, label_set, request)

        return export

    def save_guidelines(text: str, request: gr.Request):
        admin_only(request)
        with tx() as s:
            set_setting(s, "guidelines", text)
        return text, "Guidelines saved."

    def on_load(request: gr.Request):
        user, role = whoami(request)
        is_admin = role == "admin"
        with tx() as s:
            text = guidelines(s)
        header = f"**w2s** · signed in as **{user}** ({role}) · press <kbd>?</kbd> for keys"
        return (
            header,
            text,
            gr.update(value=text, visible=is_admin),
            gr.update(visible=is_admin),
            gr.update(visible=is_admin),
            *show_queue(user),
        )

    # ------------------------------------------------------------------------------ API (gradio_client)

    def api_next_pair(request: gr.Request) -> dict:
        """The caller's next pair: token, texts, tree nodes (most informative first), progress."""
        user, _ = whoami(request)
        with tx() as s:
            cfg = Q.load_config(s)  # once per request: each read is a query
            item = Q.next_item(s, user, cfg)
            prog = Q.progress(s, user, cfg)
            if item is None:
                return {"token": None, "progress": prog}
            pair = s.get(Pair, item.pair_id)
            tree, nodes = Q.latest_tree(s, pair.id)
            return {
                "token": Q.make_token(item),
                "pair_id": pair.id,
                "prompt": pair.prompt,
                "response_a": pair.response_a,
                "response_b": pair.response_b,
                "tree_id": tree.id if tree else None,
                "nodes": [
                    {
                        "id": n.id,
                        "principle": n.principle_name,
                        "relevance": n.relevance,
                        "p_a": n.p_a,
                        "info": n.info,
                        "thought": n.thought,
                    }
                    for n in nodes
                ],
                "progress": prog,
            }

    def api_submit(
        token: str,
        label: str,
        confidence: float = 3,
        comment: str = "",
        pruned_json: str = "[]",
        request: gr.Request = None,
    ) -> dict:
        """Store a label (confidence 1-5). Resending the same token stores nothing new."""
        user, _ = whoami(request)
        try:
            rating = security.check_rating(confidence, CONF_MIN, CONF_MAX)
            comment = security.check_comment(comment)
            pruned = security.parse_pruned(pruned_json)
            with tx() as s:
                item = Q.item_for(s, user, token)
                tree, _ = Q.latest_tree(s, item.pair_id)
                ann, created = Q.submit(
                    s,
                    user,
                    token,
                    label,
                    confidence=rating_to_confidence(rating),
                    comment=comment,
                    pruned=pruned,
                    tree_id=tree.id if tree else None,
                    meta={"rating": int(rating) if rating.is_integer() else rating},
                )
                return {"annotation_id": ann.id, "created": created, "pair_id": ann.pair_id}
        except (Q.QueueError, security.InputError) as e:
            raise refuse(str(e)) from None

    def api_save_draft(token: str, state_json: str, request: gr.Request = None) -> str:
        """Save a draft (any JSON object) for the pair named by the token."""
        user, _ = whoami(request)
        try:
            state = security.parse_draft(state_json)
            with tx() as s:
                item = Q.item_for(s, user, token)
                Q.save_draft(s, user, item.pair_id, state)
        except (Q.QueueError, security.InputError) as e:
            raise refuse(str(e)) from None
        return "ok"

    # ------------------------------------------------------------------------------ layout

    with gr.Blocks(title="w2s annotation") as demo:
        view = gr.State({})
        with gr.Row(equal_height=True):
            header = gr.Markdown()
            gr.Button("Log out", link="/logout", size="sm", scale=0, elem_id="w2s-logout")
        with gr.Tabs():
            with gr.Tab("Annotate", id="annotate", elem_id="w2s-annotate"):
                progress = gr.HTML(elem_id="w2s-progress-box")
                status = gr.Markdown(elem_id="w2s-status")
                conv = gr.HTML(elem_id="w2s-conversation")
                with gr.Row(equal_height=True):
                    resp_a = gr.HTML(elem_id="w2s-a")
                    resp_b = gr.HTML(elem_id="w2s-b")
                with gr.Accordion("Principle tree (most informative first)", open=True):
                    tree = gr.HTML(elem_id="w2s-tree")
                    with gr.Row():
                        prune_node = gr.Radio([], label="Node", elem_id="w2s-prune-node", scale=3)
                        prune_reason = gr.Radio(
                            list(Q.PRUNE_REASONS),
                            value="irrelevant",
                            label="Reason",
                            elem_id="w2s-prune-reason",
                            scale=2,
                        )
                        with gr.Column(scale=1, min_width=120):
                            prune_btn = gr.Button("Prune", size="sm", elem_id="w2s-prune")
                            restore_btn = gr.Button("Restore", size="sm", elem_id="w2s-restore")
                with gr.Row():
                    label = gr.Radio(
                        [("A  [1]", "a"), ("B  [2]", "b"), ("Tie  [0]", "tie")],
                        label="Which response is better?",
                        elem_id="w2s-label",
                        scale=2,
                    )
                    rating = gr.Slider(
                        CONF_MIN,
                        CONF_MAX,
                        value=3,
                        step=1,
                        label="Confidence (1 guess – 5 sure)",
                        elem_id="w2s-confidence",
                        scale=1,
                    )
                    comment = gr.Textbox(
                        label="Comment (optional)",
                        lines=1,
                        max_length=security.MAX_COMMENT,
                        elem_id="w2s-comment",
                        scale=2,
                    )
                with gr.Row():
                    prev_btn = gr.Button("← Previous", elem_id="w2s-prev", size="sm")
                    skip_btn = gr.Button("Skip [S]", elem_id="w2s-skip", size="sm")
                    draft_btn = gr.Button("Save draft [D]", elem_id="w2s-draft", size="sm")
                    undo_btn = gr.Button("Undo last [U]", elem_id="w2s-undo", size="sm")
                    submit_btn = gr.Button("Submit [Enter]", variant="primary", elem_id="w2s-submit")
                    next_btn = gr.Button("Next →", elem_id="w2s-next", size="sm")
                gr.HTML(HELP_HTML)
            with gr.Tab("Guidelines", id="guidelines", elem_id="w2s-guidelines"):
                guide_md = gr.Markdown(elem_id="w2s-guidelines-text")
                guide_edit = gr.Textbox(label="Edit guidelines (Markdown)", lines=12, visible=False)
                guide_save = gr.Button("Save guidelines", visible=False, elem_id="w2s-guidelines-save")
                guide_msg = gr.Markdown()
            with gr.Tab("Admin", id="admin", visible=False, elem_id="w2s-admin") as admin_tab:
                refresh_btn = gr.Button("Refresh", elem_id="w2s-admin-refresh", size="sm")
                summary = gr.Markdown(elem_id="w2s-admin-summary")
                gr.Markdown("### Annotators")
                table = gr.Dataframe(elem_id="w2s-admin-annotators", interactive=False)
                gr.Markdown("### Agreement")
                alpha = gr.Markdown(elem_id="w2s-admin-alpha")
                kappa = gr.Dataframe(elem_id="w2s-admin-kappa", interactive=False)
                gr.Markdown("### Node pruning per principle")
                prune_table = gr.Dataframe(elem_id="w2s-admin-pruning", interactive=False)
                gr.Markdown("### Export")
                with gr.Row():
                    exp_format = gr.Radio(
                        ["jsonl", "parquet"], value="jsonl", label="Format", elem_id="w2s-export-format"
                    )
                    exp_set = gr.Dropdown(
                        ["default"],
                        value="default",
                        label="Label set",
                        allow_custom_value=True,
                        elem_id="w2s-export-labelset-name",
                    )
                with gr.Row():
                    exp_labels = gr.Button("Export label set", elem_id="w2s-export-labelset", size="sm")
                    exp_raw = gr.Button("Export all annotations (raw)", elem_id="w2s-export-raw", size="sm")
                    exp_current = gr.Button(
                        "Export current human labels (JSONL)", elem_id="w2s-export-current", size="sm"
                    )
                export_file = gr.HTML(elem_id="w2s-export-file")  # a link served to admins only
                export_msg = gr.Markdown(elem_id="w2s-export-msg")
                gr.Markdown("### Queue settings")
                with gr.Row():
                    s_overlap = gr.Number(label="Overlap k (annotators per pair)", precision=0, minimum=1)
                    s_quota = gr.Number(
                        label="Queue size per annotator (0 = no limit)", precision=0, minimum=0
                    )
                    s_gold_rate = gr.Slider(0, 1, step=0.01, label="Gold / attention rate")
                    s_gold_split = gr.Textbox(label="Gold split")
                with gr.Row():
                    s_routing = gr.Radio(["all", "uncertain"], label="Routing to humans")
                    s_fraction = gr.Slider(0, 1, step=0.01, label="Share routed (least reliable weak labels)")
                    s_blind = gr.Checkbox(label="Blind mode (annotators never see others' labels)")
                settings_btn = gr.Button("Save settings and re-sync queues", elem_id="w2s-settings-save")
                settings_msg = gr.Markdown()

        pair_out = [view, status, progress, conv, resp_a, resp_b, tree, prune_node, label, rating, comment]
        hidden = {"api_visibility": "private"}
        demo.load(on_load, outputs=[header, guide_md, guide_edit, guide_save, admin_tab, *pair_out], **hidden)
        submit_btn.click(on_submit, [view, label, rating, comment], pair_out, **hidden)
        skip_btn.click(on_skip, [view], pair_out, **hidden)
        draft_btn.click(on_draft, [view, label, rating, comment], [status], **hidden)
        undo_btn.click(on_undo, None, pair_out, **hidden)
        prev_btn.click(on_prev, [view], pair_out, **hidden)
        next_btn.click(on_next, [view], pair_out, **hidden)
        prune_btn.click(on_prune, [view, prune_node, prune_reason], [view, tree], **hidden)
        restore_btn.click(on_restore, [view, prune_node], [view, tree], **hidden)
        guide_save.click(save_guidelines, [guide_edit], [guide_md, guide_msg], **hidden)
        admin_outs = [summary, table, kappa, alpha, prune_table, exp_set]
        refresh_btn.click(admin_refresh, None, admin_outs, **hidden)
        admin_tab.select(admin_refresh, None, admin_outs, **hidden).then(
            admin_load_settings,
            None,
            [s_overlap, s_gold_rate, s_gold_split, s_quota, s_routing, s_fraction, s_blind],
            **hidden,
        )
        settings_btn.click(
            admin_save_settings,
            [s_overlap, s_gold_rate, s_gold_split, s_quota, s_routing, s_fraction, s_blind],
            [settings_msg],
            **hidden,
        )
        for button, kind in ((exp_labels, "labelset"), (exp_current, "current"), (exp_raw, "raw")):
            button.click(exporter(kind), [exp_format, exp_set], [export_file, export_msg], **hidden)
        gr.api(api_next_pair, api_name="next_pair")
        gr.api(api_submit, api_name="submit")
        gr.api(api_save_draft, api_name="save_draft")
    demo.w2s_guard = {"credentials": roles, "exports": admin_exports}  # for launch's middleware
    return demo


def make_auth(url: str):
    """Gradio's login check, backed by the users table (hashed passwords, `w2s users add`)."""
    from w2s.auth import authenticate

    def check(name: str, password: str) -> bool:
        return authenticate(name, password, url=url) is not None

    return check


def _watch_new_pairs(url: str, every: float = 60.0) -> None:
    """Pairs imported while the server runs (`w2s import`) join the queues within a minute."""

    def loop() -> None:
        while True:
            time.sleep(every)
            try:
                with session_scope(url) as s:
                    Q.add_new_pairs(s, Q.load_config(s))
            except Exception as e:  # noqa: BLE001 - a failed sync must not stop the next one
                print(f"w2s: syncing new pairs failed: {redact(repr(e), url)}", flush=True)

    threading.Thread(target=loop, name="w2s-new-pairs", daemon=True).start()


def launch(url: str, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> gr.Blocks:
    """Sync the queue pool, then serve the app with login. Blocks unless `block=False`."""
    if not logging.getLogger().handlers:  # failed logins and ended sessions, with their time
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    with session_scope(url) as s:
        Q.sync_pool(s, Q.load_config(s))
    _watch_new_pairs(url)
    demo = build_app(url)
    # SQLite writes one transaction at a time: a few worker threads keep it busy without a GIL convoy.
    demo.queue(default_concurrency_limit=4 if db_url(url).startswith("sqlite") else 16)
    guard = Middleware(security.Guard, throttle=security.Throttle(), **demo.w2s_guard)
    demo.launch(
        app_kwargs={"middleware": [guard]},
        max_file_size="1mb",  # the app takes no uploads; Gradio's upload route would take any size
        server_name=host,
        server_port=port,
        auth=make_auth(url),
        auth_message="w2s annotation: sign in with the account your admin created (`w2s users add`).",
        head=f"<script>{_asset('static/keys.js')}</script>",
        css=_asset("static/style.css"),
        prevent_thread_lock=not block,
        ssr_mode=False,
        enable_monitoring=False,
        quiet=True,
        footer_links=[],
    )
    return demo
