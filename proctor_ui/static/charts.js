/* CPR report and welding traces: ECharts drawn from the JSON the page embeds.
 *
 * The page carries the whole report in <script type="application/json" id="report-data"> and one
 * <div class="chart" data-chart="KIND" data-item="I" [data-index="J"]> per chart, with its texts
 * (title, axis names, legend words) already translated by the server in data-* attributes, so this
 * file holds no words of its own. Bands come from the report (the rubric's numbers), drawn as
 * markArea. Animation is off so a screenshot taken right after load shows the finished charts;
 * when every chart is drawn, <body data-charts-ready="N"> is set.
 */
(function () {
  "use strict";

  var OK = "#3fb950", BAD = "#f85149", BAND = "rgba(63, 185, 80, 0.14)", GATE = "rgba(88, 166, 255, 0.08)",
      OUT = "rgba(248, 81, 73, 0.18)", LINE = "#58a6ff", DIM = "#9aa4b1", GRID = "#2c333d";

  function base(el, extra) {
    var text = getComputedStyle(document.body).color || "#e6e9ee";
    var option = {
      animation: false,
      textStyle: { color: text },
      title: { text: el.dataset.title || "", left: 8, top: 4, textStyle: { color: text, fontSize: 14, fontWeight: 500 } },
      grid: { left: 64, right: 24, top: 44, bottom: 44 },
      tooltip: { trigger: "item" },
      legend: { top: 4, right: 8, textStyle: { color: DIM } },
      xAxis: { type: "value", name: el.dataset.x || "", nameLocation: "middle", nameGap: 28, min: 0,
               axisLine: { lineStyle: { color: DIM } }, splitLine: { lineStyle: { color: GRID } } },
      yAxis: { type: "value", name: el.dataset.y || "", scale: true, nameLocation: "middle", nameGap: 40,
               axisLine: { lineStyle: { color: DIM } }, splitLine: { lineStyle: { color: GRID } } }
    };
    return Object.assign(option, extra || {});
  }

  /* A band {low, high} (either may be null) as a markArea over the y range; null without a band. */
  function bandArea(band, label, top) {
    if (!band || (band.low === null && band.high === null)) { return null; }
    var low = band.low === null ? 0 : band.low, high = band.high === null ? top : band.high;
    return { silent: true, itemStyle: { color: BAND }, label: { show: false },
             data: [[{ name: label, yAxis: low }, { yAxis: high }]] };
  }

  /* A round top for the y axis above every value and the band (700 rather than 691). */
  function highest(values, band) {
    var top = Math.max.apply(null, values.concat([0]));
    if (band && band.high !== null) { top = Math.max(top, band.high); }
    if (band && band.low !== null) { top = Math.max(top, band.low); }
    top = top * 1.15 + 1;
    var step = Math.pow(10, Math.floor(Math.log10(top))) / 2;
    return Math.ceil(top / step) * step;
  }

  /* One point per compression/breath, green inside the band and red outside, the band behind. */
  function graded(el, rows, valueKey, okKey, band, duration) {
    var good = [], bad = [], ungraded = [], values = [];
    rows.forEach(function (r) {
      if (r[valueKey] === null || r.t_s === null) { return; }
      values.push(r[valueKey]);
      var point = [r.t_s, r[valueKey], r.n];
      (r[okKey] === true ? good : r[okKey] === false ? bad : ungraded).push(point);
    });
    var top = highest(values, band);
    var series = [
      { name: el.dataset.good, type: "scatter", symbolSize: 7, itemStyle: { color: OK }, data: good,
        markArea: bandArea(band, el.dataset.band, top) },
      { name: el.dataset.bad, type: "scatter", symbolSize: 8, itemStyle: { color: BAD }, data: bad }
    ];
    if (ungraded.length) { series.push({ name: "—", type: "scatter", symbolSize: 6, itemStyle: { color: DIM }, data: ungraded }); }
    var option = base(el, { series: series });
    Object.assign(option.yAxis, { scale: false, min: 0, max: top });
    option.xAxis.max = Math.ceil(duration);  /* the three charts of an item share one time axis */
    return option;
  }

  function cpr(el, item, kind) {
    var d = item.duration_s;
    if (kind === "cpr-depth") { return graded(el, item.compressions, "depth_mm", "depth_ok", item.bands.depth_mm, d); }
    if (kind === "cpr-rate") { return graded(el, item.compressions, "rate_per_min", "rate_ok", item.bands.rate_per_min, d); }
    return graded(el, item.breaths, "volume_ml", "ok", item.bands.volume_ml, d);
  }

  function area(name, color, data) {
    return { name: name, type: "line", data: [], itemStyle: { color: color.replace(/[\d.]+\)$/, "0.6)") },
             markArea: { silent: true, itemStyle: { color: color }, label: { show: false }, data: data } };
  }

  /* A step trace (a device reports on change), the band behind it, arc-on windows shaded, and the
   * stretches outside the band in red along the time axis. */
  function weld(el, item, kind) {
    var p = (kind === "weld-param" ? item.parameters : item.signals)[Number(el.dataset.index)];
    var values = p.trace.map(function (pt) { return pt[1]; }).filter(function (v) { return v !== null; });
    var series = [{ name: el.dataset.title, type: "line", step: "end", showSymbol: false, sampling: "lttb",
                    lineStyle: { color: LINE, width: 2 }, itemStyle: { color: LINE }, data: p.trace }];
    var option = base(el, { tooltip: { trigger: "axis" }, legend: { show: false }, series: series });
    option.xAxis.max = item.duration_s;
    if (kind === "weld-param") {
      var lo = Math.min.apply(null, values.concat([p.band.low])), hi = Math.max.apply(null, values.concat([p.band.high]));
      var pad = Math.max((hi - lo) * 0.15, 0.5);
      option.yAxis = Object.assign(option.yAxis, { scale: false, min: Math.floor(lo - pad), max: Math.ceil(hi + pad) });
      /* one empty series per shaded area, so the legend names the band, the arc-on time and the time outside */
      series.push(area(el.dataset.band, BAND, [[{ yAxis: p.band.low }, { yAxis: p.band.high }]]));
      series.push(area(el.dataset.gate, GATE, p.gate_windows.map(function (w) { return [{ xAxis: w[0] }, { xAxis: w[1] }]; })));
      series.push(area(el.dataset.outside, OUT, p.outside.map(function (w) { return [{ xAxis: w[0] }, { xAxis: w[1] }]; })));
      option.legend = { top: 4, right: 8, icon: "roundRect", textStyle: { color: DIM }, data: [el.dataset.band, el.dataset.gate, el.dataset.outside] };
    }
    return option;
  }

  function draw() {
    var blob = document.getElementById("report-data");
    if (!blob || !window.echarts) { return; }
    var report = JSON.parse(blob.textContent);
    var charts = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var kind = el.dataset.chart, item = report.items[Number(el.dataset.item)];
      if (!item) { return; }
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(kind.indexOf("cpr-") === 0 ? cpr(el, item, kind) : weld(el, item, kind));
      charts.push(chart);
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
    document.body.dataset.chartsReady = String(charts.length);
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
}());
