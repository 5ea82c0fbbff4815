// Keyboard shortcuts and node buttons of the annotator page. Keys do nothing while the focus is in a text field.
(() => {
  const TEXT_TYPES = ["text", "search", "email", "number", "password", "url", "tel", ""];
  const typing = (el) =>
    !!el && (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
      (el.tagName === "INPUT" && TEXT_TYPES.includes((el.getAttribute("type") || "").toLowerCase())));
  const click = (id) => {
    const el = document.getElementById(id);
    const btn = el && (el.tagName === "BUTTON" ? el : el.querySelector("button"));
    if (btn && !btn.disabled) btn.click();
    return !!btn;
  };
  const choose = (value) => {
    const input = document.querySelector(`#w2s-label input[type="radio"][value="${value}"]`);
    if (input) input.click();
    return !!input;
  };
  const toggleHelp = () => {
    const help = document.getElementById("w2s-help");
    if (help) help.classList.toggle("w2s-help-open");
  };
  // view switches live on the annotate tab's root (Gradio scopes the app's CSS below body), so they hold
  // from pair to pair
  const togglePage = (cls) => document.getElementById("w2s-annotate")?.classList.toggle(cls);
  const onAnnotateTab = () => {
    const root = document.getElementById("w2s-annotate");
    return !!root && root.offsetParent !== null;
  };

  // The tree's nodes: J/K move a marker, P/W/R prune or restore the marked node. A node's buttons and
  // these keys send {action, node_id, reason} through the off-screen button (ui.py reads w2sNodeAction).
  let currentNode = null; // the marked node's id: the tree is re-rendered after every prune
  let sent = 0;
  const nodes = () => Array.from(document.querySelectorAll("#w2s-tree .w2s-node"));
  const markCurrent = () => {
    const all = nodes();
    all.forEach((n) => n.classList.toggle("w2s-node-current", n.dataset.nodeId === currentNode));
    return all.find((n) => n.dataset.nodeId === currentNode) || null;
  };
  const moveNode = (step) => {
    const all = nodes();
    if (!all.length) return;
    const at = all.findIndex((n) => n.dataset.nodeId === currentNode);
    const next = at < 0 ? 0 : Math.min(Math.max(at + step, 0), all.length - 1);
    currentNode = all[next].dataset.nodeId;
    markCurrent()?.scrollIntoView({ block: "nearest" });
  };
  const nodeAction = (action, nodeId, reason) => {
    window.w2sNodeAction = JSON.stringify({ action, node_id: Number(nodeId), reason, n: ++sent });
    click("w2s-node-action-go");
  };
  const onCurrent = (action, reason) => {
    if (!markCurrent()) moveNode(0);
    if (currentNode !== null) nodeAction(action, currentNode, reason);
  };
  new MutationObserver(() => { if (currentNode !== null) markCurrent(); })
    .observe(document.documentElement, { childList: true, subtree: true });

  document.addEventListener("click", (e) => {
    const btn = e.target.closest && e.target.closest(".w2s-node-btn");
    if (btn) {
      currentNode = btn.dataset.nodeId;
      nodeAction(btn.dataset.action, btn.dataset.nodeId, btn.dataset.reason || null);
      return;
    }
    const toggle = e.target.closest && e.target.closest("[data-w2s-toggle]");
    if (toggle) togglePage(toggle.dataset.w2sToggle);
  });

  const actions = {
    "1": () => choose("a"), "a": () => choose("a"),
    "2": () => choose("b"), "b": () => choose("b"),
    "0": () => choose("tie"), "t": () => choose("tie"),
    "Enter": () => click("w2s-submit"),
    "s": () => click("w2s-skip"),
    "d": () => click("w2s-draft"),
    "u": () => click("w2s-undo"),
    "j": () => moveNode(+1),
    "k": () => moveNode(-1),
    "p": () => onCurrent("prune", "irrelevant"),
    "w": () => onCurrent("prune", "wrong reasoning"),
    "r": () => onCurrent("restore", null),
    "v": () => togglePage("w2s-diff-hidden"),
    "g": () => togglePage("w2s-unified-shown"),
    "ArrowLeft": () => click("w2s-prev"),
    "ArrowRight": () => click("w2s-next"),
    "?": toggleHelp,
    "Escape": () => document.getElementById("w2s-help")?.classList.remove("w2s-help-open"),
  };
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    if (typing(e.target) || !onAnnotateTab()) return;
    // Enter submits wherever the focus is: left to a focused button (say Skip, just clicked), Enter would
    // press that button again and the label chosen since would be lost with the skipped pair.
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    const action = actions[key] || actions[e.key];
    if (!action) return;
    e.preventDefault();
    e.stopPropagation();
    action();
  }, true);
})();
