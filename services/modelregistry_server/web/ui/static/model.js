// The model page's own behaviour (model.html): the compare selection, and the move form's
// confirmation text. Everything works without it; it only makes the page easier to use.
"use strict";

(function () {
  const MIN = 2;
  const MAX = 4;
  const picked = new Set();

  // Compare 2 to 4 versions: count the ticks, enable the button only for 2 to 4, and keep the
  // ticks when the live update replaces the table.
  function compare() {
    const button = document.querySelector("[data-compare-button]");
    const count = document.querySelector("[data-compare-count]");
    if (!button || !count) { return; }
    const boxes = document.querySelectorAll("input[form='compare-form'][name='v']");
    const shown = new Set();
    boxes.forEach(function (box) {
      if (picked.has(box.value)) { box.checked = true; }
      if (box.checked) { shown.add(box.value); }
      box.addEventListener("change", function () {
        if (box.checked) { picked.add(box.value); } else { picked.delete(box.value); }
        show();
      });
    });
    picked.clear();  // only ticks the table still shows are sent
    shown.forEach(function (value) { picked.add(value); });
    function show() {
      const n = picked.size;
      button.disabled = n < MIN || n > MAX;
      count.textContent = n === 0 ? "Tick 2 to 4 versions to compare them."
        : n > MAX ? n + " ticked: compare at most " + MAX + "."
        : n + " of at most " + MAX + " ticked.";
    }
    show();
  }

  // The move form asks "Move production to v7?" rather than a generic question.
  function moveConfirmation() {
    const form = document.querySelector("#move form[data-confirm]");
    if (!form) { return; }
    const alias = form.querySelector("[name='alias']");
    const version = form.querySelector("[name='version']");
    function update() {
      const name = alias.value.trim() || "the alias";
      form.setAttribute("data-confirm", "Move " + name + " to v" + version.value + "?");
    }
    alias.addEventListener("input", update);
    version.addEventListener("change", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    compare();
    moveConfirmation();
  });
  document.addEventListener("modelregistry:refreshed", compare);
})();
