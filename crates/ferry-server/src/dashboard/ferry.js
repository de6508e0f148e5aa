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

// The recipe builder: the recipe is checked as it is typed (the server's own rules; the
// check changes nothing), its problems shown under it.
(function () {
  "use strict";
  var text = document.querySelector("textarea[data-check]");
  var out = document.getElementById("recipe-problems");
  if (!text || !out || !window.fetch) return;
  var timer = null;
  var asked = 0;
  function show(answer) {
    out.innerHTML = "";
    if (answer.ok) {
      var ok = document.createElement("p");
      ok.className = "ok";
      ok.textContent = "Valid: " + answer.steps + " steps.";
      out.appendChild(ok);
      return;
    }
    var list = document.createElement("ul");
    list.className = "problems";
    (answer.errors || []).forEach(function (e) {
      var li = document.createElement("li");
      var path = document.createElement("code");
      path.textContent = e.field;
      li.appendChild(path);
      li.appendChild(document.createTextNode(": " + e.message));
      list.appendChild(li);
    });
    out.appendChild(list);
  }
  // A check that could not be made (signed out, the server away) leaves no stale verdict.
  function unknown() {
    out.innerHTML = "";
    var p = document.createElement("p");
    p.className = "muted";
    p.textContent = "Could not check the recipe just now; Check does it on the server.";
    out.appendChild(p);
  }
  function check() {
    var n = ++asked;
    fetch(text.getAttribute("data-check"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ recipe: text.value })
    })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) {
        if (n !== asked) return;
        if (answer) show(answer); else unknown();
      })
      .catch(function () { if (n === asked) unknown(); });
  }
  text.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 250);
  });
})();
