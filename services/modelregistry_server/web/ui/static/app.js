// modelregistry web UI: the little JavaScript the pages need. No inline scripts (the CSP
// forbids them): behaviour is attached here to elements marked with data-* attributes, and
// data comes from <script type="application/json"> blocks, which are never executed.
"use strict";

(function () {
  function readJson(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  // <form data-confirm="Move production to v3?">: ask before sending.
  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      // Called again after a live update: a form that was not replaced asks only once.
      if (form.hasAttribute("data-confirm-bound")) { return; }
      form.setAttribute("data-confirm-bound", "");
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) {
          event.preventDefault();
        }
      });
    });
  }

  // <select data-autosubmit>: changing it submits its form.
  function autoSubmit() {
    document.querySelectorAll("[data-autosubmit]").forEach(function (field) {
      field.addEventListener("change", function () { field.form.submit(); });
    });
  }

  // <canvas data-chart="id-of-json">: a line chart of {labels, datasets:[{label, data}]}.
  function charts() {
    if (typeof window.Chart === "undefined") { return; }
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const spec = readJson(canvas.getAttribute("data-chart"));
      if (!spec) { return; }
      new window.Chart(canvas, {
        type: spec.type || "line",
        data: { labels: spec.labels, datasets: spec.datasets.map(function (set) {
          return { label: set.label, data: set.data, borderColor: "#0a58ca",
                   backgroundColor: "rgba(10, 88, 202, 0.15)", spanGaps: true, tension: 0.2 };
        }) },
        options: { responsive: true, maintainAspectRatio: false, animation: false,
                   plugins: { legend: { display: spec.datasets.length > 1 } },
                   scales: { x: { title: { display: !!spec.xTitle, text: spec.xTitle } },
                             y: { title: { display: !!spec.yTitle, text: spec.yTitle } } } }
      });
    });
  }

  // <section data-live-events="/v1/events:watch?model=models/x" data-live-refresh="#versions">:
  // when an event arrives, the elements named by data-live-refresh are fetched again from
  // this page's URL and swapped in place; the page is never reloaded.
  function liveUpdates() {
    document.querySelectorAll("[data-live-events]").forEach(function (section) {
      if (typeof window.EventSource === "undefined") { return; }
      const status = section.querySelector(".live");
      const targets = (section.getAttribute("data-live-refresh") || "").split(",").filter(Boolean);
      const source = new EventSource(section.getAttribute("data-live-events"));
      let pending = null;
      source.onopen = function () { if (status) { status.classList.add("on"); status.textContent = "Live"; } };
      source.onerror = function () { if (status) { status.classList.remove("on"); status.textContent = "Reconnecting…"; } };
      source.onmessage = refresh;
      ["MODEL_EVENT_TYPE_VERSION_READY", "MODEL_EVENT_TYPE_ALIAS_MOVED", "MODEL_EVENT_TYPE_ALIAS_DELETED",
       "MODEL_EVENT_TYPE_VERSION_DELETED", "MODEL_EVENT_TYPE_VERSION_SCANNED"].forEach(function (type) {
        source.addEventListener(type, refresh);
      });
      function refresh() {
        if (pending) { return; }
        pending = window.setTimeout(function () {
          pending = null;
          fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
            .then(function (response) { return response.ok ? response.text() : null; })
            .then(function (html) {
              if (!html) { return; }
              const fresh = new DOMParser().parseFromString(html, "text/html");
              targets.forEach(function (selector) {
                const now = document.querySelector(selector);
                const next = fresh.querySelector(selector);
                if (now && next) { now.replaceWith(document.importNode(next, true)); }
              });
              confirmForms();
              document.dispatchEvent(new CustomEvent("modelregistry:refreshed"));
            });
        }, 150);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    confirmForms();
    autoSubmit();
    charts();
    liveUpdates();
  });
})();
