// Ferry's dashboard: live pages. A <main data-live="/v1/…/events"> is redrawn from the
// server whenever its event stream reports a change (the session cookie authenticates the
// stream). Without JavaScript the pages work the same, without updating themselves.
(function () {
  "use strict";
  var main = document.querySelector("main[data-live]");
  if (!main || !window.EventSource || !window.fetch) return;
  var busy = false;
  var again = false;
  function redraw() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        if (fresh) main.innerHTML = fresh.innerHTML;
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; redraw(); }
      });
  }
  var types = ["job.created", "job.started", "job.progress", "job.completed", "job.failed",
    "job.cancelled", "job.retrying"];
  var source = new EventSource(main.getAttribute("data-live"));
  types.forEach(function (type) { source.addEventListener(type, redraw); });
})();
