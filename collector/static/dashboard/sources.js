// The dashboard's source list: every configured source and what it sent in the last 30 days.
// Loaded only while its card is open, so it never takes a query slot from the charts (REISE_QUERY_CONCURRENCY).
(function () {
  "use strict";
  const REFRESH_MS = 60000;
  const details = document.getElementById("sources-details");
  let timer = null;

  async function load() {
    const response = await fetch("/dashboard/api/sources", {
      headers: { "X-Reise-Dashboard": "1" }, credentials: "same-origin", cache: "no-store",
    });
    if (response.status === 429) {  // the key's queries are busy: try again when they are done
      timer = setTimeout(load, 1000 * (Number(response.headers.get("Retry-After")) || 1));
      return;
    }
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
    timer = setTimeout(load, REFRESH_MS);
  }

  details.addEventListener("toggle", () => {
    clearTimeout(timer);
    if (details.open) load();
  });
})();
