// Live player for one camera: the H.264 main stream as fragmented MP4 over a WebSocket, played with
// Media Source Extensions; where the browser cannot (no MSE, or the codec is not supported, as in a
// Chromium built without H.264), the camera's MJPEG main stream in an <img> instead.
//
//   const p = window.examstationPlayer(videoElement, {station: "A01", camera: "overview"});
//   p.mode      -> "mse" | "mjpeg" (what is playing now);  p.close() stops it.
//   videoElement.dataset.player is set to the same mode (tests and CSS read it).
//
// The server sends a text frame with the MIME type before each init segment (a new one after a
// reconnect: the SourceBuffer is made again), binary frames with fMP4 bytes, and "lost: ..." when
// the camera drops (shown over the picture until video flows again).
(function () {
  "use strict";

  function note(container, text) {
    let n = container.querySelector(".player-note");
    if (!n) { n = document.createElement("div"); n.className = "player-note"; container.append(n); }
    n.textContent = text;
    n.hidden = !text;
  }

  function mjpeg(video, opts, why) {
    const img = document.createElement("img");
    img.alt = opts.station + "/" + opts.camera;
    img.src = "/live/" + encodeURIComponent(opts.station) + "/" + encodeURIComponent(opts.camera) + ".mjpeg?stream=main";
    img.className = video.className;
    video.dataset.player = "mjpeg";
    video.hidden = true;
    video.after(img);
    if (why) img.title = why;
    return { mode: "mjpeg", why: why, close: () => { img.src = ""; img.remove(); video.hidden = false; } };
  }

  function mse(video, opts) {
    const container = video.parentElement || document.body;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const url = scheme + location.host + "/live/" + encodeURIComponent(opts.station) + "/" +
      encodeURIComponent(opts.camera) + "/fmp4";
    const player = { mode: "mse", ws: null, closed: false, close: null };
    let media = null, buffer = null, queue = [], fellBack = null;

    function pump() {
      if (!buffer || buffer.updating || !queue.length) return;
      try {
        buffer.appendBuffer(queue.shift());
      } catch (err) { // QuotaExceeded: drop what is behind us and go on
        if (buffer.buffered.length) buffer.remove(0, Math.max(0, video.currentTime - 2));
      }
    }

    function reset(mime) {
      if (!MediaSource.isTypeSupported(mime)) {
        fellBack = mjpeg(video, opts, "codec not supported: " + mime);
        Object.assign(player, fellBack);
        ws.close();
        return;
      }
      queue = [];
      media = new MediaSource();
      video.src = URL.createObjectURL(media);
      media.addEventListener("sourceopen", () => {
        buffer = media.addSourceBuffer(mime);
        buffer.mode = "segments";
        buffer.addEventListener("updateend", () => {
          // stay near the live edge, and keep the buffer short
          const b = buffer.buffered;
          if (b.length && b.end(b.length - 1) - video.currentTime > 3) video.currentTime = b.end(b.length - 1) - 0.5;
          if (b.length && video.currentTime - b.start(0) > 30 && !buffer.updating) {
            buffer.remove(b.start(0), video.currentTime - 10);
            return;
          }
          pump();
        });
        pump();
      }, { once: true });
    }

    const ws = new WebSocket(url);
    player.ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e) => {
      if (typeof e.data === "string") {
        if (e.data.startsWith("lost:")) { note(container, e.data.slice(5).trim()); return; }
        buffer = null;
        reset(e.data);
        return;
      }
      note(container, "");
      queue.push(e.data);
      pump();
      if (video.paused) video.play().catch(() => {});
    };
    ws.onclose = (e) => {
      if (!player.closed && !fellBack && e.code >= 4000) note(container, e.reason || "live view closed");
    };
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.dataset.player = "mse";
    player.close = () => {
      player.closed = true;
      ws.close();
      if (fellBack) fellBack.close();
      if (media && media.readyState === "open") media.endOfStream();
      video.removeAttribute("src");
    };
    return player;
  }

  window.examstationPlayer = function (video, opts) {
    const probe = 'video/mp4; codecs="avc1.42E01E"';
    if (!window.MediaSource || !window.WebSocket) return mjpeg(video, opts, "no Media Source Extensions");
    if (!MediaSource.isTypeSupported(probe)) return mjpeg(video, opts, "no H.264 in this browser");
    return mse(video, opts);
  };
})();
