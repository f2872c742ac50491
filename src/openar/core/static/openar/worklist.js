/* Keyboard shortcuts of the collector's worklist (progressive enhancement: every action is
   also a plain link or form). j/k move between rows, Enter opens the account, c opens the
   call form, l the letter form, a moves the focus to the row's "Assign to me" button (Enter
   then assigns: a single key never posts anything), x selects the row, ? shows the list of
   shortcuts.

   Keys are left alone with Ctrl/Alt/Meta, while the focus is in a field (input, select,
   textarea, anything editable), and while it is on a control outside the rows (a button,
   a link, a summary, ...): only on a row, or on a control inside a row, do the keys act.
   The row that becomes current is announced in a polite live region. The single-key
   shortcuts can be switched off (WCAG 2.1.4) with a checkbox in the shortcuts' list; the
   choice is remembered in this browser (localStorage). Enter and Esc keep working. */
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-worklist-row]"));
  var help = document.getElementById("worklist-keys");
  if (!rows.length && !help) { return; }
  var current = -1;
  var STORE = "openar.worklist.shortcuts";
  var INTERACTIVE = "input, select, textarea, button, summary, a, [contenteditable]";

  function stored() {
    try { return window.localStorage.getItem(STORE) !== "off"; } catch (e) { return true; }
  }
  var enabled = stored();

  var live = document.createElement("p");
  live.id = "worklist-live";
  live.className = "visually-hidden";
  live.setAttribute("aria-live", "polite");
  live.setAttribute("aria-atomic", "true");
  document.body.appendChild(live);

  function say(text) {
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 30);
  }

  if (help) {
    var field = document.createElement("p");
    field.className = "worklist-keys__switch";
    var box = document.createElement("input");
    box.type = "checkbox";
    box.id = "worklist-keys-on";
    box.checked = enabled;
    var label = document.createElement("label");
    label.htmlFor = box.id;
    label.textContent = " Single-key shortcuts on (remembered in this browser)";
    field.appendChild(box);
    field.appendChild(label);
    help.appendChild(field);
    box.addEventListener("change", function () {
      enabled = box.checked;
      try { window.localStorage.setItem(STORE, enabled ? "on" : "off"); } catch (e) { /* not kept */ }
      say(enabled ? "Single-key shortcuts on." : "Single-key shortcuts off.");
    });
  }

  function typing(target) {
    if (!target || !target.tagName) { return false; }
    var tag = target.tagName.toLowerCase();
    if (tag === "input") {
      var type = (target.getAttribute("type") || "text").toLowerCase();
      return ["checkbox", "radio", "button", "submit", "reset", "image"].indexOf(type) < 0;
    }
    return tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function rowOf(element) {
    for (var i = 0; i < rows.length; i += 1) {
      if (rows[i].contains(element)) { return i; }
    }
    return -1;
  }

  // Keys are ignored on a field anywhere, and on any control outside the rows.
  function ignored(target) {
    if (!target || !target.closest) { return false; }
    if (typing(target)) { return true; }
    if (rowOf(target) >= 0) { return false; }
    return target !== document.body && target.closest(INTERACTIVE) !== null;
  }

  function describe(index) {
    var row = rows[index];
    var name = row.querySelector("[data-open]");
    var facts = row.querySelector(".worklist__facts");
    return "Account " + (index + 1) + " of " + rows.length + ": " +
      (name ? name.textContent.trim() : "") + (facts ? ", " + facts.textContent.trim() : "");
  }

  function mark(index) {
    rows.forEach(function (row, i) { row.classList.toggle("is-current", i === index); });
  }

  function go(index) {
    if (!rows.length) { return; }
    current = Math.max(0, Math.min(rows.length - 1, index));
    mark(current);
    rows[current].focus();
    rows[current].scrollIntoView({ block: "nearest" });
    say(describe(current));
  }

  function open(selector) {
    if (current < 0) { go(0); }
    var details = rows[current] && rows[current].querySelector(selector);
    if (!details) { return; }
    details.open = true;
    var first = details.querySelector("button, input:not([type=hidden]), select, textarea");
    if (first) { first.focus(); }
  }

  document.addEventListener("focusin", function (event) {
    var i = rowOf(event.target);
    if (i >= 0 && i !== current) {
      current = i;
      mark(i);
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.altKey || event.metaKey) { return; }
    if (event.key === "Escape") {
      if (typing(event.target) || rowOf(event.target) >= 0) {
        var details = event.target.closest ? event.target.closest("details") : null;
        if (details) { details.open = false; }
        if (current >= 0) { rows[current].focus(); } else { event.target.blur(); }
      } else if (help && help.open) {
        help.open = false;
      }
      return;
    }
    if (ignored(event.target)) { return; }
    var key = event.key;
    if (key === "Enter") {
      if (current >= 0 && event.target === rows[current]) {
        var link = rows[current].querySelector("[data-open]");
        if (link) { link.click(); event.preventDefault(); }
      }
      return;
    }
    if (!enabled || key.length !== 1) { return; }
    if (key === "?") {
      if (help) {
        help.open = !help.open;
        if (help.open) { help.querySelector("summary").focus(); }
      }
      event.preventDefault();
      return;
    }
    if (!rows.length) { return; }
    if (key === "j") { go(current + 1); event.preventDefault(); return; }
    if (key === "k") { go(current < 0 ? 0 : current - 1); event.preventDefault(); return; }
    if (key === "c") { open("[data-call]"); event.preventDefault(); return; }
    if (key === "l") { open("[data-letter]"); event.preventDefault(); return; }
    if (key === "x" && current >= 0) {
      var box = rows[current].querySelector("input[type=checkbox][form=bulk]");
      if (box) {
        box.checked = !box.checked;
        say((box.checked ? "Selected: " : "Not selected: ") + describe(current));
      }
      event.preventDefault();
      return;
    }
    if (key === "a" && current >= 0) {
      // Never post on a single key: bring the button to the user, who presses Enter to assign.
      var assign = rows[current].querySelector("[data-assign] button[type=submit]");
      if (assign) {
        assign.focus();
        say("Press Enter to assign this account to you: " + describe(current));
      } else {
        say("This account is yours already.");
      }
      event.preventDefault();
    }
  });
})();
