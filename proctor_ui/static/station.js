// The station page: live video, the live score sheet and timeline from the station's SSE stream,
// and the panel reloaded when the attempt's state changes. Forms are htmx; this file only listens.
(function () {
  "use strict";
  var page = document.getElementById("station-page");
  if (!page) { return; }
  var station = page.dataset.station;

  // htmx 2 does not swap 4xx answers by default: ours carry the form with its field messages.
  document.body.addEventListener("htmx:beforeSwap", function (e) {
    var status = e.detail.xhr.status;
    if (status === 422 || status === 409) { e.detail.shouldSwap = true; e.detail.isError = false; }
  });

  function showTimes(root) {
    root.querySelectorAll("time[data-utc-ns]").forEach(function (t) {
      var ns = Number(t.dataset.utcNs);
      if (ns) { t.textContent = new Date(ns / 1e6).toLocaleTimeString(); }
    });
  }
  showTimes(document);
  document.body.addEventListener("htmx:afterSwap", function (e) { showTimes(e.target); });

  // Live view: the player (static/player.js) plays the camera's main stream; buttons switch camera.
  var video = document.getElementById("live-video");
  var handle = null;
  function play(camera) {
    if (!video || !window.examstationPlayer) { return; }
    if (handle && typeof handle.close === "function") { handle.close(); }
    video.dataset.camera = camera;
    handle = window.examstationPlayer(video, { station: station, camera: camera });
  }
  document.querySelectorAll(".camera-switch button").forEach(function (b) {
    b.addEventListener("click", function () {
      document.querySelectorAll(".camera-switch button").forEach(function (x) { x.classList.remove("active"); });
      b.classList.add("active");
      play(b.dataset.camera);
    });
  });
  if (video) { window.addEventListener("load", function () { play(video.dataset.camera); }); }

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (cls) { el.className = cls; }
    return el;
  }
  function reload(url, target) {
    if (window.htmx) { window.htmx.ajax("GET", url, { target: target, swap: "innerHTML" }); }
  }

  function onState(s) {
    var total = document.getElementById("live-total");
    if (total) { total.textContent = s.total === null || s.total === undefined ? "—" : String(s.total); }
    var item = document.getElementById("live-item");
    if (item) { item.textContent = s.item ? s.item.code + " " + s.item.title + (s.item.paused ? " (暂停)" : "") : ""; }
    var clock = document.getElementById("live-clock");
    if (clock) {
      var left = s.item ? Math.max(0, Math.round(s.item.time_left_s)) : null;
      clock.textContent = left === null ? "" : Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    }
    var veto = document.getElementById("live-veto");
    if (veto) { veto.hidden = !s.vetoed; }
    var body = document.getElementById("live-deductions");
    if (body) {
      body.replaceChildren();
      (s.deductions || []).forEach(function (d) {
        var tr = document.createElement("tr");
        tr.append(text("td", d.item), text("td", d.row), text("td", "-" + d.points, "bad"), text("td", d.reason));
        body.append(tr);
      });
    }
    var panel = document.getElementById("panel");
    if (panel && (panel.dataset.attempt !== (s.attempt_id || "") || panel.dataset.state !== s.state)) {
      panel.dataset.state = s.state;  // once per change, not once per event
      reload("/station/" + station + "/panel", "#station-panel");
    }
  }

  function onTimeline(t) {
    var list = document.getElementById("timeline");
    if (list) {
      var li = text("li", new Date(t.t_utc_ns / 1e6).toLocaleTimeString() + " " + t.kind + " " + (t.item || "") +
                    " " + (t.detail || ""), "timeline-" + t.kind);
      list.prepend(li);
      while (list.children.length > 200) { list.lastChild.remove(); }
    }
    if (t.kind === "discipline") { reload("/station/" + station + "/discipline", "#discipline"); }
  }

  function onSample(s) {
    if (s.signal !== "idcard.read" || !s.value) { return; }
    var live = document.getElementById("idcard-live");
    if (live) { live.textContent = (s.value.name || "") + " " + (s.value.id_number || ""); }
    var input = document.getElementById("id-number");
    if (input && !input.value) { input.value = s.value.id_number || ""; }
  }

  function connect() {
    var source = new EventSource("/events?station=" + encodeURIComponent(station) + "&samples=1");
    function on(name, fn) {
      source.addEventListener(name, function (e) {
        try { fn(JSON.parse(e.data)); } catch (err) { console.error("station.js", name, err); }
      });
    }
    on("state", function (s) { if (s.station === station) { onState(s); } });
    on("timeline", function (t) { if (t.station === station) { onTimeline(t); } });
    on("sample", function (s) { if (s.station === station) { onSample(s); } });
    return source;
  }
  if (window.EventSource) {
    // session.js reopens a stream the browser gave up on (a restart) or says the session ended
    var live = window.examstationSession ? window.examstationSession.watchStream(connect) : connect();
    window.addEventListener("beforeunload", function () { live.close(); });
  }
})();
