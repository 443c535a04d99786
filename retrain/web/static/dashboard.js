// retrain dashboard: draws the trend chart (uPlot) and refreshes a running run's status. Pages work without it.
(function () {
  "use strict";

  function drawTrend() {
    var holder = document.getElementById("trend");
    var source = document.getElementById("trend-data");
    if (!holder || !source || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.textContent);
    var byVersion = holder.dataset.x === "version";
    var pts = data.points;
    if (!pts.length) { holder.textContent = "No evaluated run yet."; return; }
    var xs = pts.map(function (p) { return byVersion ? p.version : p.t; });
    var promoted = pts.map(function (p) { return p.status === "promoted" ? p.challenger : null; });
    var series = [{ label: byVersion ? "version" : "ended" },
      { label: "challenger " + data.metric, stroke: "#0b5cad", width: 2, points: { show: true, size: 7 } },
      { label: "champion (same hold-out)", stroke: "#8250df", width: 0, points: { show: true, size: 7, fill: "#8250df" }, spanGaps: false },
      { label: "promoted", stroke: "#116329", width: 0, points: { show: true, size: 11, fill: "#116329" } }];
    var cols = [xs, pts.map(function (p) { return p.challenger; }), pts.map(function (p) { return p.champion; }), promoted];
    data.thresholds.forEach(function (th) {
      series.push({ label: th.label, stroke: "#a40e26", dash: [6, 4], width: 1, points: { show: false } });
      cols.push(xs.map(function () { return th.value; }));
    });
    var marks = data.marks.map(function (m) {
      if (!byVersion) return m;
      var at = pts.findIndex(function (p) { return p.run_id === m.to_run; });
      return at < 0 ? null : { t: pts[at].version, kind: m.kind };
    }).filter(Boolean);
    var markPlugin = { hooks: { draw: function (u) {
      var ctx = u.ctx; ctx.save();
      marks.forEach(function (m) {
        var x = u.valToPos(m.t, "x", true);
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
        ctx.strokeStyle = m.kind === "rollback" ? "#bc4c00" : "#116329";
        ctx.setLineDash(m.kind === "rollback" ? [3, 3] : []);
        ctx.lineWidth = 1; ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
      });
      ctx.restore();
    } } };
    var width = Math.max(280, holder.clientWidth || 600);
    var chart = new uPlot({ width: width, height: 300, series: series, plugins: [markPlugin],
      scales: { x: { time: !byVersion } }, axes: [{}, { label: data.metric }] }, cols, holder);
    holder.dataset.points = String(pts.length);
    holder.dataset.drawn = "true";
    window.addEventListener("resize", function () { chart.setSize({ width: Math.max(280, holder.clientWidth), height: 300 }); });
  }

  function refreshRun() {
    var live = document.getElementById("run-live");
    if (!live) return;
    var timer = setInterval(function () {
      var inner = live.querySelector("[data-active]");
      if (!inner || inner.dataset.active !== "true") { clearInterval(timer); return; }
      fetch(live.dataset.live, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          live.innerHTML = html;
          var now = live.querySelector("[data-active]");
          if (now && now.dataset.active !== "true") { clearInterval(timer); window.location.reload(); }
        })
        .catch(function () { /* keep the last view; the next tick tries again */ });
    }, 2000);
  }

  function refreshPage() {
    // Pages other than a run's (which swaps its own fragment) reload while a run is active.
    if (document.body.dataset.refresh === "true" && !document.getElementById("run-live")) {
      setTimeout(function () { window.location.reload(); }, 5000);
    }
  }

  document.addEventListener("DOMContentLoaded", function () { drawTrend(); refreshRun(); refreshPage(); });
})();
