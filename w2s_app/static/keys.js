// Keyboard shortcuts of the annotator page. They do nothing while the focus is in a text field.
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
  const onAnnotateTab = () => {
    const root = document.getElementById("w2s-annotate");
    return !!root && root.offsetParent !== null;
  };
  const actions = {
    "1": () => choose("a"), "a": () => choose("a"),
    "2": () => choose("b"), "b": () => choose("b"),
    "0": () => choose("tie"), "t": () => choose("tie"),
    "Enter": () => click("w2s-submit"),
    "s": () => click("w2s-skip"),
    "d": () => click("w2s-draft"),
    "u": () => click("w2s-undo"),
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
