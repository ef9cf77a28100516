// The dashboard's source list: every configured source and what it sent in the last 30 days.
// Loaded only while its card is open, through the page's request queue (dashboard.js: REISE_QUERY_CONCURRENCY).
(function () {
  "use strict";
  const REFRESH_MS = 60000;
  const details = document.getElementById("sources-details");
  let timer = null;

  async function load() {
    let sources;
    try {
      ({ sources } = await window.reiseDashboard.api("/dashboard/api/sources"));
    } catch (error) {
      timer = setTimeout(load, REFRESH_MS);
      return;
    }
    const body = document.querySelector("#sources-table tbody");
    body.replaceChildren(...sources.map((s) => {
      const row = document.createElement("tr");
      const seen = s.last_seen ? String(s.last_seen).slice(0, 16).replace("T", " ") : "–";
      for (const [text, numeric] of [[s.source], [s.kinds.join(", ")], [s.endpoints.join(", ")],
                                     [s.touchpoints, true], [s.dead_letters, true], [seen]]) {
        const cell = document.createElement("td");
        cell.textContent = String(text);
        if (numeric) cell.className = "num";
        row.append(cell);
      }
      return row;
    }));
    timer = setTimeout(load, REFRESH_MS);
  }

  details.addEventListener("toggle", () => {
    clearTimeout(timer);
    if (details.open) load();
  });
})();
