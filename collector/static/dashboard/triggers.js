/* Reise dashboard, triggers panel: deliveries, failures and latency per trigger; segment sizes over time. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const charts = {};

  function draw(id, config) {
    if (charts[id]) {
      charts[id].data = config.data;
      charts[id].update("none");
    } else {
      charts[id] = new Chart($(id), config);
    }
  }

  function fill(rows) {
    const body = $("trigger-table").querySelector("tbody");
    body.replaceChildren(...rows.map((r) => {
      const tr = document.createElement("tr");
      [r.trigger, r.delivered, r.failed_attempts, r.parked, r.p50_ms, r.p95_ms].forEach((cell, i) => {
        const td = document.createElement("td");
        td.textContent = cell === null || cell === undefined || Number.isNaN(cell) ? "–" : String(cell);
        if (i > 0) td.className = "num";
        tr.appendChild(td);
      });
      return tr;
    }));
  }

  async function refresh() {
    try {
      const data = await window.reiseDashboard.api("/dashboard/api/triggers");
      fill(data.triggers);
      draw("chart-deliveries", {
        type: "bar",
        data: { labels: data.hourly.map((r) => String(r.hour).slice(5, 16)),
                datasets: [{ label: "delivered", data: data.hourly.map((r) => r.delivered) },
                           { label: "failed", data: data.hourly.map((r) => r.failed) }] },
        options: { animation: false, maintainAspectRatio: false, scales: { x: { stacked: true }, y: { stacked: true } } },
      });
      const hours = [...new Set(data.segments.map((r) => String(r.hour)))].sort();
      const names = [...new Set(data.segments.map((r) => r.segment))];
      draw("chart-segments", {
        type: "line",
        data: { labels: hours.map((h) => h.slice(5, 16)), datasets: names.map((name) => {
          let last = 0;
          const sizes = new Map(data.segments.filter((r) => r.segment === name).map((r) => [String(r.hour), r.size]));
          return { label: name, stepped: true, data: hours.map((h) => (last = sizes.has(h) ? sizes.get(h) : last)) };
        }) },
        options: { animation: false, maintainAspectRatio: false },
      });
      $("triggers-error").hidden = true;
    } catch (error) {
      $("triggers-error").textContent = "triggers: " + error.message;
      $("triggers-error").hidden = false;
    }
  }

  // Requests go through the page's own queue (dashboard.js: at most two in flight, the per-key query limit);
  // start after the page's first load, then refresh half-way between its refreshes.
  document.addEventListener("DOMContentLoaded", () => {
    const waiting = setInterval(() => {
      if (!document.body.dataset.loaded) return;
      clearInterval(waiting);
      refresh();
      setTimeout(() => setInterval(refresh, 15000), 7500);
    }, 250);
  });
})();
