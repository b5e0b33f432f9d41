// The review page: a deduction's "▶ camera" button opens that evidence segment as MP4 and seeks to
// the deduction's offset. Forms are htmx (422/409 answers carry the form with its messages).
(function () {
  "use strict";
  document.body.addEventListener("htmx:beforeSwap", function (e) {
    var status = e.detail.xhr.status;
    if (status === 422 || status === 409) { e.detail.shouldSwap = true; e.detail.isError = false; }
  });

  function showTimes(root) {
    root.querySelectorAll("time[data-utc-ns]").forEach(function (t) {
      var ns = Number(t.dataset.utcNs);
      if (ns) { t.textContent = new Date(ns / 1e6).toLocaleString(); }
    });
  }
  showTimes(document);
  document.body.addEventListener("htmx:afterSwap", function (e) { showTimes(e.target); });

  var video = document.getElementById("review-video");
  var label = document.getElementById("review-video-label");

  function jump(segment, offset, camera) {
    if (!video) { return; }
    var src = "/evidence/" + encodeURIComponent(segment) + ".mp4";
    var seek = function () { video.currentTime = offset; video.play().catch(function () {}); };
    if (video.dataset.segment === segment) {
      seek();
    } else {
      video.dataset.segment = segment;
      video.addEventListener("loadedmetadata", seek, { once: true });
      video.src = src + "#t=" + offset;
    }
    video.dataset.offset = String(offset);
    if (label) { label.textContent = camera + " · " + segment + " · " + offset + " s"; }
    video.scrollIntoView({ behavior: "smooth", block: "nearest" });
  }

  document.body.addEventListener("click", function (e) {
    var b = e.target.closest(".video-jump");
    if (b) { jump(b.dataset.segment, Number(b.dataset.offset), b.dataset.camera); }
  });
})();
