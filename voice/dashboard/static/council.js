// Draw the council's charts (reports page) from the JSON the page carries; each is a picture of a table beside it.
(function () {
  const source = document.getElementById("council-data");
  if (!source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const ink = "#1f4e79", soft = "#8fb3d9", warn = "#b03a2e", green = "#3a7d44";
  const versus = (id, chart, horizontal) => {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: [
          { label: "This period", data: chart.this, backgroundColor: ink, maxBarThickness: 28 },
          { label: "Previous period", data: chart.previous, backgroundColor: soft, maxBarThickness: 28 },
        ],
      },
      options: {
        indexAxis: horizontal ? "y" : "x",
        scales: { [horizontal ? "x" : "y"]: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  };
  versus("council-answer-chart", data.answer, true);
  versus("council-sources-chart", data.sources, true);
  versus("council-returned-chart", data.returned, true);
  versus("council-outcomes-chart", data.outcomes, true);
  const areas = document.getElementById("council-areas-chart");
  if (areas) {
    new Chart(areas, {
      type: "bar",
      data: {
        labels: data.areas.labels,
        datasets: [
          { label: "Calls", data: data.areas.this, backgroundColor: ink, maxBarThickness: 28 },
          { label: "Calls, previous period", data: data.areas.previous, backgroundColor: soft, maxBarThickness: 28 },
          { label: "Cases opened", data: data.areas.cases, backgroundColor: green, maxBarThickness: 28 },
        ],
      },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }
  const hours = document.getElementById("council-staffing-chart");
  if (hours) {
    new Chart(hours, {
      data: {
        labels: data.hours.labels,
        datasets: [
          { type: "bar", label: "Calls", data: data.hours.calls, backgroundColor: ink },
          { type: "bar", label: "Missed", data: data.hours.missed, backgroundColor: warn },
          { type: "line", label: "Specialist-hours", data: data.hours.specialist_hours, borderColor: green,
            backgroundColor: green, yAxisID: "hours" },
        ],
      },
      options: {
        scales: {
          y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "Calls" } },
          hours: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
                   title: { display: true, text: "Specialist-hours" } },
        },
      },
    });
  }
})();
