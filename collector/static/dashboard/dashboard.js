/* Reise dashboard: fetches the JSON endpoints (same origin, session cookie) and draws Chart.js charts. */
"use strict";

(function () {
  const REFRESH_MS = 15000;
  const STAGES = ["awareness", "consideration", "purchase", "retention", "advocacy"];
  const STAGE_COLORS = { awareness: "#4e79a7", consideration: "#59a14f", purchase: "#f28e2b",
                         retention: "#b07aa1", advocacy: "#e15759", "": "#9aa5b1" };
  const CHANNEL_COLORS = { web: "#4e79a7", ads: "#f28e2b", social: "#e15759", email: "#76b7b2", pos: "#59a14f",
                           app: "#edc948", sms: "#b07aa1", support: "#ff9da7", other: "#9c755f" };
  const charts = {};
  let inFlight = false;
  let analyticsInFlight = false;
  let analyticsData = null;
  const ANALYTICS_MS = 60000;  // the deeper views are heavier than the overview: refreshed every minute

  Chart.defaults.animation = false;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#44505c";
  Chart.defaults.maintainAspectRatio = false;

  const $ = (id) => document.getElementById(id);
  const pct = (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%");
  const num = (v) => Number(v || 0).toLocaleString("en");
  const money = (v) => Number(v || 0).toLocaleString("en", { maximumFractionDigits: 0 });

  async function api(path, params) {
    const query = new URLSearchParams(params || {});
    const response = await fetch(path + (query.toString() ? "?" + query : ""), {
      headers: { "X-Reise-Dashboard": "1" }, credentials: "same-origin", cache: "no-store",
    });
    if (response.status === 401) { window.location.assign("/dashboard/login"); throw new Error("signed out"); }
    const body = await response.json();
    if (!response.ok) { throw new Error(body.error || response.statusText); }
    return body;
  }

  function draw(id, config) {
    if (charts[id]) {
      charts[id].data = config.data;
      charts[id].options = config.options || {};
      charts[id].update("none");
    } else {
      charts[id] = new Chart($(id), config);
    }
  }

  function fillTable(tableId, rows) {
    const body = $(tableId).querySelector("tbody");
    body.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement("tr");
      cells.forEach((cell, i) => {
        const td = document.createElement("td");
        td.textContent = cell;
        if (i > 0) td.className = "num";
        tr.appendChild(td);
      });
      return tr;
    }));
  }

  function filters() {
    const out = {};
    for (const name of ["from", "to", "channel", "campaign"]) {
      const value = $("f-" + name).value;
      if (value) out[name] = value;
    }
    return out;
  }

  function renderOverview(data) {
    const funnel = data.funnel;
    const buyers = funnel[2].customers;
    $("kpi-customers").textContent = num(data.customers);
    $("kpi-buyers").textContent = num(buyers);
    $("kpi-conversion").textContent = data.customers ? pct(buyers / data.customers) : "–";
    $("kpi-median").textContent = data.contacts_before_purchase.median ?? "–";
    $("kpi-within").textContent = pct(data.contacts_before_purchase.within_7_11);
    $("kpi-revenue").textContent = money(data.revenue);

    draw("chart-funnel", {
      type: "bar",
      data: {
        labels: funnel.map((r) => r.stage),
        datasets: [
          { label: "continued", data: funnel.map((r) => r.customers - r.dropped),
            backgroundColor: funnel.map((r) => STAGE_COLORS[r.stage]), stack: "s" },
          { label: "dropped here", data: funnel.map((r) => r.dropped), backgroundColor: "#d5dbe2", stack: "s" },
        ],
      },
      options: { indexAxis: "y", scales: { x: { stacked: true, beginAtZero: true }, y: { stacked: true } },
                 plugins: { legend: { position: "bottom" } } },
    });
    fillTable("funnel-table", funnel.map((r) => [r.stage, num(r.customers), pct(r.conversion),
                                                  `${num(r.dropped)} (${pct(r.drop_share)})`]));

    const cbp = data.contacts_before_purchase;
    draw("chart-contacts", {
      type: "bar",
      data: {
        labels: cbp.histogram.map((h) => String(h.contacts)),
        datasets: [{ label: "buyers", data: cbp.histogram.map((h) => h.customers),
                     backgroundColor: cbp.histogram.map((h) => (h.contacts >= 7 && h.contacts <= 11 ? "#2f6fde" : "#a9bfe6")) }],
      },
      options: { plugins: { legend: { display: false } },
                 scales: { x: { title: { display: true, text: "contacts before the first purchase" } },
                           y: { beginAtZero: true, title: { display: true, text: "buyers" } } } },
    });
    $("contacts-note").textContent = cbp.buyers
      ? `${num(cbp.buyers)} buyers · median ${cbp.median} · p90 ${cbp.p90} · ${pct(cbp.within_7_11)} within 7–11`
      : "No purchases for these filters.";
    fillTable("contacts-table", cbp.by_first_channel.map((r) => [r.first_channel, num(r.buyers), r.median ?? "–",
                                                                  r.p90 ?? "–", pct(r.within_7_11)]));

    const mix = data.channel_mix;
    draw("chart-mix", {
      type: "bar",
      data: {
        labels: mix.stages.map((s) => s.stage),
        datasets: mix.channels.map((c) => ({ label: c, data: mix.stages.map((s) => +(s.shares[c] * 100).toFixed(1)),
                                             backgroundColor: CHANNEL_COLORS[c] || "#999" })),
      },
      options: { scales: { x: { stacked: true }, y: { stacked: true, max: 100, ticks: { callback: (v) => v + "%" } } },
                 plugins: { legend: { position: "bottom" },
                            tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${ctx.parsed.y}%` } } } },
    });

    const entries = data.stage_entries;
    $("entries-note").textContent = `customers first reaching a stage, per ${entries.bucket}` +
      (entries.bucket === "week" ? " (weeks from Monday)" : "");
    draw("chart-entries", {
      type: "line",
      data: {
        labels: entries.days,
        datasets: STAGES.map((s) => ({ label: s, data: entries.series[s], borderColor: STAGE_COLORS[s],
                                       backgroundColor: STAGE_COLORS[s], tension: 0.25, pointRadius: entries.bucket === "week" ? 3 : 0,
                                       borderWidth: 2 })),
      },
      options: { interaction: { mode: "index", intersect: false }, plugins: { legend: { position: "bottom" } },
                 scales: { x: { ticks: { maxTicksLimit: 10 } }, y: { beginAtZero: true } } },
    });

    draw("chart-campaigns", {
      type: "bar",
      data: {
        labels: data.campaigns.map((c) => c.campaign),
        datasets: [{ label: "conversion", data: data.campaigns.map((c) => +(c.conversion * 100).toFixed(1)),
                     backgroundColor: "#2f6fde" }],
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } },
                 scales: { x: { beginAtZero: true, max: 100, ticks: { callback: (v) => v + "%" } } } },
    });
    fillTable("campaign-table", data.campaigns.map((c) => [c.campaign, num(c.customers), num(c.buyers),
                                                            pct(c.conversion), money(c.revenue)]));
  }

  const MODEL_LABELS = { first_touch: "first touch", last_touch: "last touch", last_non_direct: "last non-direct",
                         linear: "linear", position_based: "position based", time_decay: "time decay" };
  const MODEL_COLORS = { first_touch: "#4e79a7", last_touch: "#f28e2b", last_non_direct: "#e15759",
                         linear: "#76b7b2", position_based: "#59a14f", time_decay: "#b07aa1" };
  const hours = (s) => +(s / 3600).toFixed(1);
  const span = (s) => (s >= 86400 ? (s / 86400).toFixed(1) + " d" : s >= 3600 ? (s / 3600).toFixed(1) + " h"
                       : s >= 60 ? (s / 60).toFixed(1) + " min" : Math.round(s) + " s");

  function renderAttribution(attr) {
    const model = $("attr-model").value;
    const channels = attr.channels.map((c) => c.channel);
    $("attr-note").textContent = `${num(Math.round(attr.purchases))} purchases credited`;
    draw("chart-attribution", {
      type: "bar",
      data: { labels: channels, datasets: [{ label: MODEL_LABELS[model],
        data: attr.channels.map((c) => +c[model].purchases.toFixed(2)),
        backgroundColor: channels.map((c) => CHANNEL_COLORS[c] || "#999") }] },
      options: { plugins: { legend: { display: false } },
                 scales: { y: { beginAtZero: true, title: { display: true, text: "credited purchases" } } } },
    });
    fillTable("attr-table", attr.campaigns[model].map((c) => [c.campaign, c.purchases.toFixed(1), money(c.revenue)]));
    draw("chart-attribution-compare", {
      type: "bar",
      data: { labels: channels, datasets: attr.models.map((m) => ({ label: MODEL_LABELS[m],
        data: attr.channels.map((c) => +c[m].purchases.toFixed(2)), backgroundColor: MODEL_COLORS[m] })) },
      options: { plugins: { legend: { position: "bottom" } }, scales: { y: { beginAtZero: true } } },
    });
  }

  // Sankey: step-numbered channel nodes, from the first channel to purchase or no purchase.
  function pathFlows(paths) {
    const flows = new Map();
    const add = (from, to, n) => { if (n > 0) { const k = from + "\u0000" + to; flows.set(k, (flows.get(k) || 0) + n); } };
    for (const p of paths) {
      const nodes = p.path.length ? p.path.map((c, i) => `${i + 1}. ${c}`) : ["no contact before"];
      for (let i = 1; i < nodes.length; i++) add(nodes[i - 1], nodes[i], p.customers);
      const last = nodes[nodes.length - 1];
      add(last, "purchase", p.buyers);
      add(last, "no purchase", p.customers - p.buyers);
    }
    return [...flows].map(([k, flow]) => { const [from, to] = k.split("\u0000"); return { from, to, flow }; });
  }

  function nodeColor(name) {
    if (name === "purchase") return "#f28e2b";
    if (name === "no purchase") return "#c5ccd4";
    return CHANNEL_COLORS[name.replace(/^\d+\. /, "")] || "#9aa5b1";
  }

  function renderPaths(paths) {
    draw("chart-paths", {
      type: "sankey",
      data: { datasets: [{ label: "customers", data: pathFlows(paths.channel),
                           colorFrom: (c) => nodeColor(c.dataset.data[c.dataIndex].from),
                           colorTo: (c) => nodeColor(c.dataset.data[c.dataIndex].to), colorMode: "gradient",
                           borderWidth: 0, nodeWidth: 12, size: "max" }] },
      options: { plugins: { legend: { display: false } } },
    });
  }

  function renderDurations(rows) {
    draw("chart-durations", {
      type: "bar",
      data: { labels: rows.map((r) => `${r.from_stage} → ${r.to_stage}`),
              datasets: [["median", "median_seconds", "#2f6fde"], ["p75", "p75_seconds", "#7ea6ec"],
                         ["p90", "p90_seconds", "#c2d4f6"]].map(([label, key, color]) => ({
                label, data: rows.map((r) => hours(r[key])), backgroundColor: color })) },
      options: { indexAxis: "y", plugins: { legend: { position: "bottom" } },
                 scales: { x: { beginAtZero: true, title: { display: true, text: "hours" } } } },
    });
    fillTable("durations-table", rows.map((r) => [`${r.from_stage} → ${r.to_stage}`, num(r.customers),
                                                  span(r.median_seconds), span(r.p75_seconds), span(r.p90_seconds)]));
  }

  // The cohort heat map, drawn on its canvas: a row per first-seen week, a column per "within n weeks".
  function renderCohorts(cohorts) {
    const canvas = $("chart-cohorts");
    const stage = $("cohort-stage").value;
    const box = canvas.parentElement.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.floor(box.width * ratio));
    canvas.height = Math.max(1, Math.floor(box.height * ratio));
    canvas.style.width = box.width + "px";
    canvas.style.height = box.height + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, box.width, box.height);
    const rows = cohorts.rows;
    canvas.dataset.cells = "0";
    if (!rows.length) return;
    const left = 150, top = 22, cols = cohorts.weeks.length;
    const cellW = (box.width - left - 4) / cols, cellH = Math.min(26, (box.height - top - 4) / rows.length);
    ctx.font = "12px " + getComputedStyle(document.body).fontFamily;
    ctx.textBaseline = "middle";
    ctx.fillStyle = "#44505c";
    ctx.textAlign = "center";
    cohorts.weeks.forEach((w, j) => ctx.fillText(`week ${w}`, left + cellW * (j + 0.5), top / 2));
    let cells = 0;
    rows.forEach((row, i) => {
      const y = top + i * cellH;
      ctx.textAlign = "left";
      ctx.fillStyle = "#44505c";
      ctx.fillText(`${row.week} (${num(row.customers)})`, 4, y + cellH / 2);
      (row.stages[stage] || []).forEach((share, j) => {
        const x = left + j * cellW;
        if (share === null) {
          ctx.fillStyle = "#eef1f4";
        } else {
          const light = Math.round(95 - share * 55);
          ctx.fillStyle = `hsl(217, 72%, ${light}%)`;
          cells++;
        }
        ctx.fillRect(x + 1, y + 1, cellW - 2, cellH - 2);
        ctx.textAlign = "center";
        ctx.fillStyle = share !== null && share > 0.5 ? "#ffffff" : "#1f2933";
        ctx.fillText(share === null ? "–" : pct(share), x + cellW / 2, y + cellH / 2);
      });
    });
    canvas.dataset.cells = String(cells);
  }

  function renderAnalytics(data) {
    analyticsData = data;
    renderAttribution(data.attribution);
    renderPaths(data.paths);
    renderDurations(data.stage_durations);
    renderCohorts(data.cohorts);
  }

  async function refreshAnalytics() {
    if (analyticsInFlight) return;
    analyticsInFlight = true;
    try {
      renderAnalytics(await api("/dashboard/api/analytics", filters()));
      document.body.dataset.analytics = String(Number(document.body.dataset.analytics || 0) + 1);
    } catch (error) {
      $("status").textContent = "analytics update failed: " + error.message;
      $("live-dot").className = "dot failed";
    } finally {
      analyticsInFlight = false;
    }
  }

  function setOptions(select, values) {
    const current = select.value;
    const first = select.options[0];
    select.replaceChildren(first, ...values.map((v) => new Option(v, v)));
    select.value = values.includes(current) ? current : "";
  }

  // The filter choices (a scan of every touchpoint) load with the page and on reset, not on every refresh.
  async function refresh(withOptions = false) {
    if (inFlight) return;
    inFlight = true;
    try {
      const [options, data] = await Promise.all([withOptions ? api("/dashboard/api/filters") : null,
                                                 api("/dashboard/api/overview", filters())]);
      if (options) {
        setOptions($("f-channel"), options.channels);
        setOptions($("f-campaign"), options.campaigns);
      }
      renderOverview(data);
      $("status").textContent = "live · updated " + new Date().toLocaleTimeString();
      $("live-dot").className = "dot live";
      document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
    } catch (error) {
      $("status").textContent = "update failed: " + error.message;
      $("live-dot").className = "dot failed";
    } finally {
      inFlight = false;
    }
  }

  function badge(text, cls) {
    const span = document.createElement("span");
    span.className = "badge " + cls;
    span.textContent = text;
    return span;
  }

  function renderCustomer(doc) {
    const c = doc.customer;
    const summary = $("customer-summary");
    summary.replaceChildren();
    const facts = [["customer", c.customer_id], ["stage now", c.current_stage || "–"],
                   ["furthest", c.furthest_stage || "–"], ["contacts", c.contacts],
                   ["before first purchase", c.contacts_before_first_purchase ?? "–"],
                   ["purchases", c.purchases], ["revenue", money(c.revenue)], ["ids", c.ids.join(", ")]];
    for (const [label, value] of facts) {
      const span = document.createElement("span");
      span.append(label + ": ");
      const b = document.createElement("b");
      b.textContent = String(value);
      span.appendChild(b);
      summary.appendChild(span);
    }

    const points = doc.touchpoints;
    const lanes = [...new Set(points.map((t) => (t.type === "identify" || t.type === "alias" ? "identity" : t.channel)))];
    const datasets = [...STAGES, ""].map((stage) => ({
      label: stage || "no stage",
      data: points.filter((t) => t.type !== "identify" && t.type !== "alias" && (t.stage || "") === stage)
                  .map((t) => ({ x: Date.parse(t.timestamp), y: t.channel, event: t.event, via: t.via_id })),
      backgroundColor: STAGE_COLORS[stage], pointRadius: 6, pointHoverRadius: 8,
    })).filter((d) => d.data.length);
    const idEvents = points.filter((t) => t.type === "identify" || t.type === "alias");
    if (idEvents.length) {
      datasets.push({ label: "identity link", pointStyle: "rectRot", pointRadius: 8, backgroundColor: "#b7791f",
                      data: idEvents.map((t) => ({ x: Date.parse(t.timestamp), y: "identity", event: t.type, via: t.via_id })) });
    }
    // Shown before drawing, so Chart.js sizes the canvas to its box, not to a hidden 0x0 one.
    $("lookup-result").hidden = false;
    draw("chart-timeline", {
      type: "scatter",
      data: { datasets },
      options: {
        scales: {
          x: { type: "linear", ticks: { maxTicksLimit: 8, callback: (v) => new Date(v).toISOString().slice(0, 10) } },
          y: { type: "category", labels: lanes, offset: true },
        },
        plugins: { legend: { position: "bottom" },
                   tooltip: { callbacks: { label: (ctx) => `${new Date(ctx.raw.x).toISOString().slice(0, 16).replace("T", " ")} ` +
                                                          `${ctx.raw.y}: ${ctx.raw.event} (${ctx.raw.via})` } } },
      },
    });

    const list = $("timeline-list");
    list.replaceChildren(...points.map((t) => {
      const li = document.createElement("li");
      li.dataset.event = t.event || t.type;
      li.dataset.channel = t.channel;
      const time = document.createElement("time");
      time.textContent = t.timestamp.slice(0, 16).replace("T", " ");
      li.appendChild(time);
      li.appendChild(badge(t.channel, "channel"));
      li.appendChild(badge(t.type === "identify" || t.type === "alias" ? "identity link" : (t.stage || "no stage"),
                           t.type === "identify" || t.type === "alias" ? "anon" : "stage-" + (t.stage || "none")));
      li.append(" " + (t.event || t.type));
      if (Number(t.revenue)) li.append(` · ${money(t.revenue)} €`);
      if (t.store_id) li.append(` · store ${t.store_id}`);
      if (t.via_id !== c.customer_id) li.appendChild(badge("as " + t.via_id, "anon"));
      return li;
    }));
    $("links-list").replaceChildren(...(doc.links.length ? doc.links.map((l) => {
      const li = document.createElement("li");
      li.textContent = `${l.anonymous_id} → ${l.customer_id} (${l.linked_at.slice(0, 16).replace("T", " ")}, ${l.source})`;
      return li;
    }) : [Object.assign(document.createElement("li"), { textContent: "none: always seen under one id" })]));
  }

  async function lookup(id) {
    $("lookup-error").hidden = true;
    try {
      renderCustomer(await api("/dashboard/api/customer", { id }));
    } catch (error) {
      $("lookup-result").hidden = true;
      $("lookup-error").textContent = error.message;
      $("lookup-error").hidden = false;
    }
  }

  async function suggest() {
    const q = $("lookup-id").value.trim();
    try {
      const { customers } = await api("/dashboard/api/customers", { q });
      $("lookup-suggestions").replaceChildren(...customers.map((c) => new Option(`${c.furthest_stage || "–"}, ${c.contacts} contacts`, c.customer_id)));
    } catch (error) { /* suggestions are a convenience */ }
  }

  $("filters").addEventListener("submit", (event) => { event.preventDefault(); refresh(); refreshAnalytics(); });
  $("f-reset").addEventListener("click", () => { $("filters").reset(); refresh(true); refreshAnalytics(); });
  $("attr-model").addEventListener("change", () => { if (analyticsData) renderAttribution(analyticsData.attribution); });
  $("cohort-stage").addEventListener("change", () => { if (analyticsData) renderCohorts(analyticsData.cohorts); });
  $("lookup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("lookup-id").value.trim();
    if (id) lookup(id);
  });
  let typing = null;  // suggestions wait for a pause in typing, not one query per keystroke
  $("lookup-id").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(suggest, 250); });

  refresh(true);
  refreshAnalytics();
  suggest();
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  setInterval(() => { if (!document.hidden) refreshAnalytics(); }, ANALYTICS_MS);
})();
