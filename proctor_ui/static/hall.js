// The hall page, live: applies the `state` and `alarm` events of GET /events to the tiles that the
// server rendered, and counts each running item's time down between updates.
// The server's snapshot is the truth; this only redraws it. Text comes from the page
// (#hall-text, translated there), values are set with textContent (never as HTML).
(function () {
  "use strict";
  const text = JSON.parse(document.getElementById("hall-text").textContent);
  const statusLine = document.getElementById("hall-status");

  function el(tag, cls, content) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (content !== undefined) e.textContent = content;
    return e;
  }

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function fill(list, items, make) {
    list.replaceChildren(...items.map(make));
  }

  // Each tile's picture: the sub-stream's JPEGs over one WebSocket per tile (not multipart MJPEG:
  // six streaming tiles would take every HTTP connection the browser opens to this server). The
  // socket reconnects after a few seconds when it drops; the tile keeps its last picture meanwhile.
  // A station with several cameras (a welding booth and the overview) has a button per camera:
  // the tile then watches that one, still over one socket.
  function livePicture(img) {
    let shown = null;
    let ws = null;
    let retry = null;
    function connect() {
      const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + img.dataset.liveWs;
      const mine = new WebSocket(url);
      ws = mine;
      mine.binaryType = "blob";
      mine.onmessage = (ev) => {
        if (ws !== mine || typeof ev.data === "string") return;
        const next = URL.createObjectURL(ev.data);
        const old = shown;
        shown = next;
        img.src = next;
        if (old) URL.revokeObjectURL(old);
      };
      mine.onclose = () => { if (ws === mine) retry = setTimeout(connect, 3000); };
    }
    img.watch = (path, label) => {
      if (path === img.dataset.liveWs) return;
      img.dataset.liveWs = path;
      img.alt = label;
      clearTimeout(retry);
      const old = ws;
      ws = null;
      if (old) old.close();
      connect();
    };
    connect();
  }
  document.addEventListener("click", (ev) => {
    const button = ev.target.closest(".cam-switch button[data-cam]");
    if (!button) return;
    const tile = button.closest(".tile");
    const img = tile.querySelector("img[data-live-ws]");
    if (!img || !img.watch) return;
    img.watch(button.dataset.liveWs, img.alt.replace(/[^/]*$/, button.dataset.cam));
    tile.querySelectorAll(".cam-switch button").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
  });
  document.querySelectorAll("img[data-live-ws]").forEach(livePicture);

  function apply(snap) {
    const tile = document.getElementById("tile-" + snap.station);
    if (!tile) return;
    const f = (name) => tile.querySelector('[data-f="' + name + '"]');
    f("state").textContent = text.states[snap.state] || snap.state;
    const cand = f("candidate");
    cand.replaceChildren();
    if (snap.candidate) {
      cand.append(snap.candidate.name + " ", el("span", "dim", snap.candidate.id_number));
    } else cand.textContent = "—";
    const left = f("time-left");
    if (snap.item) {
      f("item").textContent = snap.item.code + " " + snap.item.title;
      left.dataset.left = snap.item.time_left_s;
      left.dataset.paused = snap.item.paused ? "1" : "0";
      left.dataset.at = performance.now();
      left.textContent = clock(snap.item.time_left_s) + (snap.item.paused ? " (" + text.paused + ")" : "");
    } else {
      f("item").textContent = "—";
      delete left.dataset.left;
      left.textContent = "—";
    }
    const total = f("total");
    total.textContent = snap.total === null ? "—" : snap.total.toFixed(2) + (snap.vetoed ? " · " + text.veto : "");
    total.classList.toggle("bad", snap.vetoed);
    fill(f("deductions"), snap.deductions, (d) => {
      const li = el("li");
      li.append(el("b", "", d.item), " −" + d.points + " " + d.reason);
      return li;
    });
    const health = [
      ...snap.devices.map((d) => Object.assign(el("li", d.online ? "ok" : d.online === false ? "bad" : "dim",
        "● " + d.name), { title: d.detail })),
      ...snap.cameras.map((c) => Object.assign(el("li", c.ok ? "ok" : "bad", "▣ " + c.id), { title: c.detail })),
    ];
    f("health").replaceChildren(...health);
    fill(f("alarms"), snap.alarms, (a) => {
      const li = el("li", "bad");
      li.append(el("b", "", a.what));
      if (a.todo) li.append(el("br"), el("span", "", text.todo + "：" + a.todo));
      return li;
    });
    fill(f("discipline"), snap.discipline, (i) => el("li", "warn", text.discipline + "：" + i.category + " " + i.note));
    tile.classList.toggle("alarmed", snap.alarms.length > 0);
    if (snap.remote) heard(tile, f("heard"), snap.remote);
  }

  // another box's station (a hall split over boxes): how long ago its box last spoke, counted up here
  function heard(tile, field, remote) {
    tile.classList.toggle("stale", remote.stale);
    if (!field) return;
    if (remote.heard_s === null) {
      delete field.dataset.heard;
      field.textContent = text.never;
      return;
    }
    field.dataset.heard = remote.heard_s;
    field.dataset.at = performance.now();
    field.textContent = Math.floor(remote.heard_s) + " " + text.ago;
  }

  function siteAlarm(a) {
    if (a.station) return; // a station's alarms arrive in its snapshot
    const box = document.getElementById("site-alarms");
    const old = box.querySelector('[data-code="' + CSS.escape(a.code) + '"]');
    if (old) old.remove();
    if (a.cleared) return;
    const div = el("div", "alarm bad");
    div.dataset.code = a.code;
    div.append(el("b", "", a.what));
    if (a.todo) div.append(" — " + text.todo + "：" + a.todo);
    box.append(div);
  }

  // count down between snapshots: each running, unpaused item's clock from its last update
  document.querySelectorAll('[data-f="time-left"][data-left]').forEach((e) => { e.dataset.at = performance.now(); });
  document.querySelectorAll('[data-f="heard"][data-heard]').forEach((e) => { e.dataset.at = performance.now(); });
  setInterval(() => {
    document.querySelectorAll('[data-f="heard"][data-heard]').forEach((e) => {
      const gone = (performance.now() - Number(e.dataset.at)) / 1000;
      e.textContent = Math.floor(Number(e.dataset.heard) + gone) + " " + text.ago;
    });
    document.querySelectorAll('[data-f="time-left"][data-left]').forEach((e) => {
      if (e.dataset.paused === "1") return;
      const gone = (performance.now() - Number(e.dataset.at)) / 1000;
      e.textContent = clock(Number(e.dataset.left) - gone);
    });
  }, 500);

  function connect() {
    const source = new EventSource("/events");
    source.addEventListener("state", (e) => apply(JSON.parse(e.data)));
    source.addEventListener("alarm", (e) => siteAlarm(JSON.parse(e.data)));
    source.addEventListener("open", () => { statusLine.textContent = text.live; statusLine.className = "hall-status ok"; });
    source.addEventListener("error", () => { statusLine.textContent = text.offline; statusLine.className = "hall-status warn"; });
    return source;
  }
  // session.js reopens a stream the browser gave up on (a restart) or says the session ended
  if (window.examstationSession) { window.examstationSession.watchStream(connect); } else { connect(); }
  window.examstationHall = { apply: apply };
})();
