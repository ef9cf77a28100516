// The dashboard's source list: every configured source and what it sent in the last 30 days.
(function () {
  "use strict";
  const REFRESH_MS = 15000;

  async function load() {
    const response = await fetch("/dashboard/api/sources", {
      headers: { "X-Reise-Dashboard": "1" }, credentials: "same-origin", cache: "no-store",
    });
    if (!response.ok) return;
    const { sources } = await response.json();
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
  }

  load();
  setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS);
})();
