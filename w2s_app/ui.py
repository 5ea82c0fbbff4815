"""The Gradio application: the layout of the annotator page, guidelines, admin dashboard and the HTTP
API, wired to `w2s_app.handlers` (what each event does, testable without a browser).

Each event reads the user from Gradio's login (`request.username`) and hands it to a handler, which opens
its own store transaction: a killed server loses no label and no draft.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a team server
# Gradio rebuilds a pandas summary of up to 10k past events after every event (cache frequency 1); under
# load that grew to a large share of the server's CPU. Refresh it every 1000 events instead.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")

import gradio as gr
from starlette.middleware import Middleware

from w2s.store import db_url, redact, session_scope
from w2s_app import queue as Q
from w2s_app import render, security
from w2s_app.handlers import Handlers, PageState, PairPage, asset
from w2s_app.labelling import CONF_MAX, CONF_MIN, Refused

HELP_HTML = """<div id="w2s-help" role="dialog" aria-label="Keyboard shortcuts"><b>Keyboard</b><br>
<kbd>1</kbd>/<kbd>A</kbd> A &nbsp; <kbd>2</kbd>/<kbd>B</kbd> B &nbsp; <kbd>0</kbd>/<kbd>T</kbd> tie<br>
<kbd>Enter</kbd> submit (evidence first: the first Enter shows the verdicts) &nbsp; <kbd>S</kbd> skip &nbsp;
<kbd>D</kbd> save draft &nbsp; <kbd>U</kbd> undo<br>
<kbd>J</kbd>/<kbd>K</kbd> next / previous node &nbsp; <kbd>P</kbd> prune it as irrelevant &nbsp;
<kbd>W</kbd> as wrong reasoning &nbsp; <kbd>R</kbd> restore it<br>
<kbd>V</kbd> hide / show the marked differences &nbsp; <kbd>G</kbd> unified diff (code)<br>
<kbd>&larr;</kbd>/<kbd>&rarr;</kbd> previous / next in your history &nbsp; <kbd>?</kbd> this help<br>
<i>Keys do nothing while you type in a text field.</i></div>"""


def refuse(message: str) -> gr.Error:
    """A message for the user; not a server fault, so no traceback in the log."""
    return gr.Error(message, print_exception=False)


def user_of(request: gr.Request | None) -> str | None:
    return getattr(request, "username", None)


def shown_to_user(fn):
    """Gradio shows a handler's `Refused` as a message to the user."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Refused as e:
            raise refuse(str(e)) from None

    return wrapper


def pair_outputs(page: PairPage) -> tuple:
    """A PairPage in the order of the page's `pair_out` components."""
    return (
        page.view,
        page.status,
        page.progress,
        page.conversation,
        page.response_a,
        page.response_b,
        page.diff,
        page.tree,
        page.label,
        page.rating,
        page.comment,
    )


def build_app(url: str) -> gr.Blocks:
    """The whole application bound to one store URL."""
    h = Handlers(url)

    @shown_to_user
    def on_load(request: gr.Request):
        w = h.welcome(user_of(request))
        admin = gr.update(visible=w.is_admin)
        return (
            w.header,
            w.guidelines,
            gr.update(value=w.guidelines, visible=w.is_admin),
            admin,
            admin,
            *pair_outputs(w.page),
        )

    @shown_to_user
    def on_submit(view, label, rating, comment, request: gr.Request):
        return pair_outputs(h.submit(user_of(request), view, label, rating, comment))

    @shown_to_user
    def on_skip(view, request: gr.Request):
        return pair_outputs(h.skip(user_of(request), view))

    @shown_to_user
    def on_draft(view, label, rating, comment, request: gr.Request):
        return h.save_draft(user_of(request), view, label, rating, comment)

    @shown_to_user
    def on_undo(request: gr.Request):
        return pair_outputs(h.undo(user_of(request)))

    @shown_to_user
    def on_prev(view, request: gr.Request):
        return pair_outputs(h.history(user_of(request), view, -1))

    @shown_to_user
    def on_next(view, request: gr.Request):
        return pair_outputs(h.history(user_of(request), view, +1))

    on_node_action = shown_to_user(h.node_action)

    @shown_to_user
    def admin_refresh(request: gr.Request):
        a = h.admin_page(user_of(request))
        sets = gr.update(choices=a.label_sets, value=a.label_sets[0])
        return a.summary, a.annotators, a.kappa, a.alpha, a.pruning, a.reliance, sets

    @shown_to_user
    def admin_load_settings(request: gr.Request):
        c = h.queue_settings(user_of(request))
        return (
            c.overlap,
            c.gold_rate,
            c.gold_split,
            c.quota,
            c.routing,
            c.route_fraction,
            c.blind,
            c.evidence_first,
        )

    @shown_to_user
    def admin_save_settings(
        overlap,
        gold_rate,
        gold_split,
        quota,
        routing,
        route_fraction,
        blind,
        evidence_first,
        request: gr.Request,
    ):
        return h.save_queue_settings(
            user_of(request),
            overlap=overlap,
            gold_rate=gold_rate,
            gold_split=gold_split,
            quota=quota,
            routing=routing,
            route_fraction=route_fraction,
            blind=blind,
            evidence_first=evidence_first,
        )

    def exporter(kind: str):
        @shown_to_user
        def export(fmt: str, label_set: str | None, request: gr.Request):
            return h.export(user_of(request), kind, fmt, label_set)

        return export

    @shown_to_user
    def save_guidelines(text: str, request: gr.Request):
        return h.save_guidelines(user_of(request), text)

    # the HTTP API: these signatures are the API's parameters (gradio_client calls them by position)

    @shown_to_user
    def api_next_pair(request: gr.Request) -> dict:
        """The caller's next pair: token, texts, the tree's strong model and config, its nodes (most
        informative first; without p_a in evidence-first mode until /reveal), progress."""
        return h.api_next_pair(user_of(request))

    @shown_to_user
    def api_submit(
        token: str,
        label: str,
        confidence: float = 3,
        comment: str = "",
        pruned_json: str = "[]",
        tree_id: int | None = None,
        request: gr.Request = None,
    ) -> dict:
        """Store a label (confidence 1-5). Resending the same token stores nothing new. `tree_id`: the tree
        /next_pair served [default: the one it serves now]."""
        return h.api_submit(user_of(request), token, label, confidence, comment, pruned_json, tree_id)

    @shown_to_user
    def api_reveal(token: str, initial_label: str, confidence: float = 3, request: gr.Request = None) -> dict:
        """Evidence first: commit your initial label (confidence 1-5) for the pair; get its nodes with their
        verdicts (p_a). /submit then stores the initial label with your final one."""
        return h.api_reveal(user_of(request), token, initial_label, confidence)

    @shown_to_user
    def api_skip(token: str, request: gr.Request = None) -> str:
        """Give the pair named by the token back; it never comes back to you."""
        return h.api_skip(user_of(request), token)

    @shown_to_user
    def api_save_draft(token: str, state_json: str, request: gr.Request = None) -> str:
        """Save a draft (any JSON object) for the pair named by the token."""
        return h.api_save_draft(user_of(request), token, state_json)

    # ------------------------------------------------------------------------------ layout

    with gr.Blocks(title="w2s annotation") as demo:
        view = gr.State(PageState())
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
                diff_tools = gr.HTML(elem_id="w2s-diff-box")
                with gr.Accordion("Principle tree (most informative first)", open=True):
                    tree = gr.HTML(elem_id="w2s-tree")
                    # the prune / restore buttons on the nodes (and their keys) send their request through
                    # these two, kept off screen (keys.js)
                    node_action = gr.Textbox(
                        elem_id="w2s-node-action",
                        elem_classes=["w2s-offscreen"],
                        show_label=False,
                        container=False,
                    )
                    node_action_go = gr.Button(
                        "node action", elem_id="w2s-node-action-go", elem_classes=["w2s-offscreen"]
                    )
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
                gr.Markdown(
                    "### Do trees help? (evidence first, gold pairs)\n"
                    "Accuracy of the label chosen before the verdicts were shown and of the final one; "
                    "how often annotators switched to the strong model's verdict when it was wrong "
                    "(over-reliance) and when it was right (useful reliance), out of the times they had "
                    "first disagreed with it."
                )
                reliance_table = gr.Dataframe(elem_id="w2s-admin-reliance", interactive=False)
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
                    s_evidence = gr.Checkbox(
                        label="Evidence first (verdicts shown only after an initial label)",
                        elem_id="w2s-settings-evidence-first",
                    )
                settings_btn = gr.Button("Save settings and re-sync queues", elem_id="w2s-settings-save")
                settings_msg = gr.Markdown()

        pair_out = [view, status, progress, conv, resp_a, resp_b, diff_tools, tree, label, rating, comment]
        hidden = {"api_visibility": "private"}
        demo.load(on_load, outputs=[header, guide_md, guide_edit, guide_save, admin_tab, *pair_out], **hidden)
        submit_btn.click(on_submit, [view, label, rating, comment], pair_out, **hidden)
        skip_btn.click(on_skip, [view], pair_out, **hidden)
        draft_btn.click(on_draft, [view, label, rating, comment], [status], **hidden)
        undo_btn.click(on_undo, None, pair_out, **hidden)
        prev_btn.click(on_prev, [view], pair_out, **hidden)
        next_btn.click(on_next, [view], pair_out, **hidden)
        node_action_go.click(
            on_node_action,
            [view, node_action],
            [view, tree],
            js="(view, action) => [view, window.w2sNodeAction || action]",
            **hidden,
        )
        guide_save.click(save_guidelines, [guide_edit], [guide_md, guide_msg], **hidden)
        admin_outs = [summary, table, kappa, alpha, prune_table, reliance_table, exp_set]
        refresh_btn.click(admin_refresh, None, admin_outs, **hidden)
        admin_tab.select(admin_refresh, None, admin_outs, **hidden).then(
            admin_load_settings,
            None,
            [s_overlap, s_gold_rate, s_gold_split, s_quota, s_routing, s_fraction, s_blind, s_evidence],
            **hidden,
        )
        settings_btn.click(
            admin_save_settings,
            [s_overlap, s_gold_rate, s_gold_split, s_quota, s_routing, s_fraction, s_blind, s_evidence],
            [settings_msg],
            **hidden,
        )
        for button, kind in ((exp_labels, "labelset"), (exp_current, "current"), (exp_raw, "raw")):
            button.click(exporter(kind), [exp_format, exp_set], [export_file, export_msg], **hidden)
        gr.api(api_next_pair, api_name="next_pair")
        gr.api(api_submit, api_name="submit")
        gr.api(api_reveal, api_name="reveal")
        gr.api(api_skip, api_name="skip")
        gr.api(api_save_draft, api_name="save_draft")
    demo.w2s_guard = {"credentials": h.roles, "exports": h.exports}  # for launch's middleware
    return demo


def make_auth(url: str):
    """Gradio's login check, backed by the users table (hashed passwords, `w2s users add`)."""
    from w2s.store.auth import authenticate

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
        head=f"<script>{asset('static/keys.js')}</script>",
        css=asset("static/style.css") + "\n" + render.code_css(),
        prevent_thread_lock=not block,
        ssr_mode=False,
        enable_monitoring=False,
        quiet=True,
        footer_links=[],
    )
    return demo
