// Draw the report charts with Chart.js from the JSON the page carries.
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const labels = JSON.parse(document.getElementById("labels").textContent);
  const ink = "#1f4e79", soft = "#8fb3d9";
  const palette = ["#1f4e79", "#3a7d44", "#c0841a", "#b03a2e", "#6c5b7b", "#7f8c8d", "#2e86ab"];
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  const bar = (id, xs, ys, color) => new Chart(document.getElementById(id), {
    type: "bar",
    data: { labels: xs, datasets: [{ data: ys, backgroundColor: color || ink, borderRadius: 3, maxBarThickness: 56 }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  bar("perDay", data.days.map((d) => d.slice(5)), data.per_day);
  bar("perWeek", data.weeks.map((w) => "wk of " + w.slice(5)), data.per_week, soft);
  const handled = Object.entries(data.how_handled);
  new Chart(document.getElementById("handled"), {
    type: "doughnut",
    data: { labels: handled.map((e) => e[0]), datasets: [{ data: handled.map((e) => e[1]), backgroundColor: palette }] },
    options: { plugins: { legend: { position: "right" } } },
  });
  const across = (id, counts, names) => {
    const rows = Object.entries(counts);
    new Chart(document.getElementById(id), {
      type: "bar",
      data: { labels: rows.map((e) => names[e[0]] || e[0]), datasets: [{ data: rows.map((e) => e[1]), backgroundColor: palette, maxBarThickness: 32 }] },
      options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  };
  across("outcome", data.by_outcome, labels.outcome);
  across("category", data.by_category, labels.category);
  across("language", data.by_language, labels.language);
  const cases = JSON.parse(document.getElementById("case-data").textContent);
  across("caseOutcome", cases.by_outcome, labels.caseOutcome);
  const how = Object.entries(cases.closed_how);
  new Chart(document.getElementById("closedHow"), {
    type: "doughnut",
    data: { labels: how.map((e) => labels.closedHow[e[0]]), datasets: [{ data: how.map((e) => e[1]), backgroundColor: palette }] },
    options: { plugins: { legend: { position: "right" } } },
  });
  const team = Object.entries(cases.visits_per_specialist);
  new Chart(document.getElementById("perSpecialist"), {
    type: "bar",
    data: {
      labels: team.map((e) => e[0]),
      datasets: [
        { label: "Done", data: team.map((e) => e[1].done), backgroundColor: ink, maxBarThickness: 32 },
        { label: "Booked", data: team.map((e) => e[1].scheduled), backgroundColor: soft, maxBarThickness: 32 },
      ],
    },
    options: { indexAxis: "y", scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }, y: { stacked: true } } },
  });
})();
