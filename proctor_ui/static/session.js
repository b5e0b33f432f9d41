// Every page: what a button gets when its answer is not one the page swaps in.
// htmx swaps no 4xx/5xx answer and shows nothing on a network error, so a button whose session had
// ended (8 h unused, a controller restart, signed out elsewhere) simply did nothing. This shows one
// message at the top of the page saying what happened and what to do:
// - 401, the session ended: the message and a link to the login page that leads back here. The
//   server names that page (HX-Redirect); htmx would go there at once, even from a background
//   refresh, and the person would not know why. The message stays: the session does not come back.
// - 403: the server's reason (a rule, or a page older than the session: reload it).
// - another error: its status and the server's reason; a network error: the controller cannot be
//   reached. Both clear at the next answer that succeeds.
// The texts come from the page (#session-alert's data-*), in its language (Babel catalogs).
(function () {
  "use strict";
  var box = document.getElementById("session-alert");
  if (!box) { return; }
  var text = box.querySelector(".session-alert-text");
  var link = box.querySelector(".session-alert-login");
  var ended = false;

  function show(message, login) {
    text.textContent = message;
    link.hidden = !login;
    if (login) { link.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); }
    box.hidden = false;
  }

  function reason(xhr) {
    var body = (xhr.responseText || "").trim();
    var type = xhr.getResponseHeader("content-type") || "";
    if (type.indexOf("application/json") === 0) {
      try {
        var detail = JSON.parse(body).detail;
        return typeof detail === "string" ? detail : JSON.stringify(detail);
      } catch (err) { return ""; }
    }
    return type.indexOf("text/plain") === 0 ? body.slice(0, 500) : "";
  }

  function sessionEnded() {
    ended = true;
    show(box.dataset.expired, true);
  }

  document.body.addEventListener("htmx:beforeOnLoad", function (e) {
    if (e.detail.xhr.status === 401) { e.preventDefault(); sessionEnded(); }
  });
  document.body.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    if (xhr.status === 401) { sessionEnded(); return; }
    if (ended) { return; }
    var why = reason(xhr);
    var head = xhr.status === 403 ? box.dataset.refused : box.dataset.failed + " (HTTP " + xhr.status + ")";
    show(why ? head + (document.body.dataset.lang === "en" ? ": " : "：") + why : head, false);
  });
  function unreachable() { if (!ended) { show(box.dataset.unreachable, false); } }
  document.body.addEventListener("htmx:sendError", unreachable);
  document.body.addEventListener("htmx:timeout", unreachable);
  document.body.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.successful && !ended) { box.hidden = true; }
  });
  box.querySelector(".session-alert-close").addEventListener("click", function () { box.hidden = true; });

  // Live streams (the hall's and a station's /events). A browser's EventSource reconnects by itself
  // after a network break, but not after an HTTP error: once the controller restarted (sessions
  // end with it) or the session expired, the stream's reconnect got 401 and the page stayed
  // "reconnecting" for ever. `watchStream(open)` calls `open()` for a new EventSource (with its
  // listeners) and, when one is closed for good, asks the page's own address why: the session
  // ended (a redirect to the login page, or 401) -> the message with the login link; the controller
  // unreachable -> that message; otherwise (a restart) the stream is opened again. Retried every
  // RETRY_MS until the session is known to have ended.
  var RETRY_MS = 5000;
  function probe() {
    return fetch(location.pathname + location.search, {credentials: "same-origin", redirect: "manual",
                                                       cache: "no-store"})
      .then(function (r) { return r.type === "opaqueredirect" || r.status === 401 ? "ended" : "up"; },
            function () { return "unreachable"; });
  }
  window.examstationSession = {
    watchStream: function (open) {
      function start() {
        var source = open();
        source.addEventListener("error", function () {
          if (source.readyState !== EventSource.CLOSED) { return; }  // the browser reconnects itself
          probe().then(function (state) {
            if (state === "ended") { sessionEnded(); return; }
            if (state === "unreachable") { unreachable(); }
            setTimeout(start, RETRY_MS);
          });
        });
        source.addEventListener("open", function () {
          if (!ended && text.textContent === box.dataset.unreachable) { box.hidden = true; }
        });
        return source;
      }
      return start();
    }
  };
})();
