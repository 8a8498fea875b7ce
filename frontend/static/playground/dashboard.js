// Staff dashboard: charts from the server's bucketed series (Chart.js), and a live panel
// refreshed every few seconds from /dashboard/live.json. No model output is rendered here.
"use strict";

(function () {
  const series = JSON.parse(document.getElementById("series-data").textContent);
  const dark = window.matchMedia("(prefers-color-scheme: dark)");
  const PALETTE = ["#5b8def", "#e8773a", "#3fb07f", "#c75ad6", "#d6b23f", "#4fc1d9", "#e0566b", "#8f8f9c"];
  const charts = [];

  function themeColours() {
    const style = getComputedStyle(document.documentElement);
    return {
      text: style.getPropertyValue("--fg").trim() || "#1b1b1f",
      muted: style.getPropertyValue("--muted").trim() || "#6b6b76",
      grid: style.getPropertyValue("--line").trim() || "#e2e2e8",
    };
  }

  function applyTheme() {
    const colours = themeColours();
    Chart.defaults.color = colours.muted;
    Chart.defaults.borderColor = colours.grid;
    for (const chart of charts) {
      for (const scale of Object.values(chart.options.scales)) {
        scale.ticks.color = colours.muted;
        scale.grid.color = colours.grid;
        scale.title.color = colours.text;
      }
      chart.options.plugins.legend.labels.color = colours.text;
      chart.update("none");
    }
  }

  const unitLabel = series.unit === "hour" ? `Hour (${series.time_zone})` : `Day (${series.time_zone})`;

  function datasets(byKey, stacked) {
    return Object.keys(byKey).sort().map((key, i) => ({
      label: key,
      data: byKey[key],
      backgroundColor: PALETTE[i % PALETTE.length],
      borderColor: PALETTE[i % PALETTE.length],
      stack: stacked ? "all" : undefined,
    }));
  }

  function percentileSets(byP) {
    const colours = { p50: PALETTE[0], p95: PALETTE[1], p99: PALETTE[6] };
    return ["p50", "p95", "p99"].map((p) => ({
      label: p,
      data: byP[p],
      borderColor: colours[p],
      backgroundColor: colours[p],
      spanGaps: true,
      pointRadius: series.labels.length > 60 ? 0 : 2,
    }));
  }

  // Counts get whole-number ticks; latencies may be fractional.
  function draw(id, type, sets, yTitle, stacked, counts = true) {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    const chart = new Chart(canvas, {
      type,
      data: { labels: series.labels, datasets: sets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: {} } },
        scales: {
          x: { stacked, title: { display: true, text: unitLabel }, ticks: { maxRotation: 0, autoSkip: true }, grid: {} },
          y: { stacked, beginAtZero: true, title: { display: true, text: yTitle }, ticks: counts ? { precision: 0 } : {}, grid: {} },
        },
      },
    });
    charts.push(chart);
  }

  draw("chart-requests", "bar", datasets(series.requests, true), "Requests", true);
  draw("chart-tokens", "bar", datasets(series.tokens, true), "Tokens", true);
  draw("chart-users", "line", [{ label: "active users", data: series.active_users, borderColor: PALETTE[2], backgroundColor: PALETTE[2] }], "Users", false);
  draw("chart-errors", "bar", datasets(series.errors, true), "Failed generations", true);
  draw("chart-ttft", "line", percentileSets(series.ttft_ms), "Milliseconds", false, false);
  draw("chart-tpot", "line", percentileSets(series.tpot_ms), "Milliseconds per token", false, false);
  draw("chart-queue", "line", percentileSets(series.queue_wait_ms), "Milliseconds", false, false);
  applyTheme();
  dark.addEventListener("change", applyTheme);

  // Custom dates: picking a date switches the range selector to "custom".
  const form = document.getElementById("filters");
  for (const input of form.querySelectorAll('input[type="date"]')) {
    input.addEventListener("change", () => { form.elements.range.value = "custom"; });
  }
  form.elements.range.addEventListener("change", () => {
    if (form.elements.range.value !== "custom") form.submit();
  });

  // Live panel.
  const live = document.querySelector(".live");
  const body = document.querySelector("#live-models tbody");
  const workersBody = document.querySelector("#live-workers tbody");
  const updated = document.getElementById("live-updated");

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = String(text);
    row.appendChild(td);
  }

  async function refresh() {
    try {
      const response = await fetch(live.dataset.url, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = await response.json();
      body.replaceChildren();
      for (const model of data.models) {
        const row = document.createElement("tr");
        row.dataset.model = model.model;
        cell(row, model.model);
        cell(row, model.workers);
        cell(row, model.in_flight);
        cell(row, model.queue_depth);
        body.appendChild(row);
      }
      workersBody.replaceChildren();
      for (const worker of data.workers) {
        const row = document.createElement("tr");
        cell(row, worker.worker_id);
        cell(row, worker.model);
        cell(row, worker.backend);
        cell(row, worker.in_flight);
        cell(row, `${worker.seen_s_ago} s ago`);
        workersBody.appendChild(row);
      }
      updated.textContent = `updated ${new Date(data.at).toLocaleTimeString()}`;
      updated.classList.remove("error");
    } catch (error) {
      updated.textContent = `could not refresh (${error.message}); retrying`;
      updated.classList.add("error");
    }
  }
  refresh();
  setInterval(refresh, 5000);
})();
