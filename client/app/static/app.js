/* kok app: progressive enhancement only. Every page works without this file.
   - moves focus to the notice or error summary after an action
   - live updates: "1 new message" in an ARIA live region, a count in the title, and
     (only if the person allowed it) a notification that names neither sender nor subject
   - warns a minute before the idle lock and offers to stay unlocked
   - shows upload progress while a message with attachments is sent
   - follows a device link: the status region says waiting / linked / failed */
(function () {
  "use strict";
  var body = document.body;
  var csrf = (document.querySelector('meta[name="csrf"]') || {}).content || "";

  function focusFirst() {
    var id = body.getAttribute("data-focus-id");
    var target = (id && document.getElementById(id)) || document.querySelector("[data-focus]");
    if (target) {
      if (!target.hasAttribute("tabindex")) { target.setAttribute("tabindex", "-1"); }
      target.focus();
    }
  }

  function post(url) {
    return fetch(url, { method: "POST", credentials: "same-origin",
                        headers: { "X-CSRF-Token": csrf } });
  }

  // --- live updates -----------------------------------------------------------------
  var baseTitle = document.title;
  function announce(count) {
    var live = document.getElementById("live");
    if (!live) { return; }
    var text = count === 1 ? live.getAttribute("data-one")
                           : live.getAttribute("data-other").replace("{n}", String(count));
    live.textContent = text;
    document.title = "(" + count + ") " + baseTitle;
    var badge = document.querySelector("[data-unseen]");
    if (badge) { badge.textContent = "(" + text + ")"; badge.hidden = false; }
    var hint = document.getElementById("new-hint");
    if (hint) { hint.hidden = false; }
    if ("Notification" in window && Notification.permission === "granted") {
      // Deliberately no sender and no subject: a notification can be read over a shoulder.
      try { new Notification("kok", { body: text, tag: "kok-new" }); } catch (e) { /* ignore */ }
    }
  }

  function listen() {
    if (body.getAttribute("data-unlocked") !== "yes" || !("EventSource" in window)) { return; }
    var source = new EventSource("/events");
    source.addEventListener("message", function (event) {
      try { announce(JSON.parse(event.data).unseen); } catch (e) { /* ignore */ }
    });
  }

  // --- idle lock warning -----------------------------------------------------------
  function idleWarning() {
    var seconds = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
    var box = document.getElementById("idle-warning");
    var button = document.getElementById("idle-extend");
    if (!seconds || !box || !button) { return; }
    var warnTimer, lockTimer, before = null;
    function schedule(left) {
      // a minute before the lock; with a very short lock, halfway (at least 20 s ahead)
      var ahead = Math.min(60, Math.max(20, left / 2));
      clearTimeout(warnTimer); clearTimeout(lockTimer);
      warnTimer = setTimeout(function () {
        before = document.activeElement;
        box.hidden = false;
        box.focus();
      }, Math.max(0, (left - ahead)) * 1000);
      lockTimer = setTimeout(function () { window.location.assign("/unlock"); },
                             (left + 2) * 1000);
    }
    button.addEventListener("click", function () {
      post("/keepalive").then(function (r) { return r.json(); }).then(function (data) {
        box.hidden = true;
        if (before && before.focus) { before.focus(); }
        schedule(data.seconds_left);
      });
    });
    schedule(seconds);
  }

  // --- notifications permission (settings page) --------------------------------------
  function notificationButton() {
    var button = document.getElementById("notify-allow");
    var state = document.getElementById("notify-state");
    if (!button || !state || !("Notification" in window)) { return; }
    function show() {
      if (Notification.permission === "granted") {
        state.textContent = button.getAttribute("data-granted"); state.hidden = false;
        button.hidden = true;
      } else if (Notification.permission === "denied") {
        state.textContent = button.getAttribute("data-denied"); state.hidden = false;
        button.hidden = true;
      } else { button.hidden = false; }
    }
    button.addEventListener("click", function () {
      Notification.requestPermission().then(function () { show(); state.focus(); });
    });
    state.setAttribute("tabindex", "-1");
    show();
  }

  // --- upload progress -----------------------------------------------------------------
  function uploadProgress() {
    var form = document.getElementById("compose-form");
    var files = document.getElementById("files");
    var box = document.getElementById("upload-progress");
    if (!form || !files || !box || !window.FormData || !window.XMLHttpRequest) { return; }
    form.addEventListener("submit", function (event) {
      if (!files.files || files.files.length === 0) { return; }  // a plain submit is fine
      event.preventDefault();
      var bar = document.getElementById("upload-bar");
      var text = document.getElementById("upload-text");
      var send = document.getElementById("send");
      box.hidden = false;
      send.disabled = true;
      var xhr = new XMLHttpRequest();
      var lastSaid = -1;
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) { return; }
        var percent = Math.floor(100 * e.loaded / e.total);
        bar.value = percent;
        if (percent >= lastSaid + 25 || percent === 100) {  // not every tick: screen readers
          lastSaid = percent; text.textContent = percent + " %";
        }
      });
      xhr.addEventListener("load", function () {
        document.open(); document.write(xhr.responseText); document.close();
        if (xhr.responseURL) { history.replaceState(null, "", xhr.responseURL); }
      });
      xhr.addEventListener("error", function () { send.disabled = false; form.submit(); });
      xhr.open("POST", form.action);
      xhr.send(new FormData(form));
    });
  }

  // --- device link status ---------------------------------------------------------------
  function linkStatus() {
    var box = document.getElementById("link-status");
    var text = document.getElementById("link-status-text");
    if (!box || !text || box.getAttribute("data-state") !== "waiting" || !window.fetch) { return; }
    var kinds = { waiting: "info", linked: "success", failed: "danger" };
    function check() {
      fetch(box.getAttribute("data-poll"), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (data.state === "waiting") { setTimeout(check, 2000); return; }
          if (!kinds[data.state]) { return; }
          box.setAttribute("data-state", data.state);
          box.className = box.className.replace(/kern-alert--\w+/, "kern-alert--" + kinds[data.state]);
          var icon = box.querySelector(".kern-icon");
          if (icon) { icon.className = "kern-icon kern-icon--" + kinds[data.state]; }
          text.textContent = data.text;
          var done = document.getElementById("link-done");
          if (done) { done.hidden = false; }
          var again = document.getElementById("link-check");
          if (again) { again.hidden = true; }
          var parts = document.querySelectorAll("[data-link-waiting]");
          for (var i = 0; i < parts.length; i++) { parts[i].hidden = true; }
          box.focus();
        })
        .catch(function () { setTimeout(check, 5000); });
    }
    setTimeout(check, 2000);
  }

  focusFirst();
  linkStatus();
  listen();
  idleWarning();
  notificationButton();
  uploadProgress();
})();
