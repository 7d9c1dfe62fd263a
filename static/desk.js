// The kiosk: privacy cover, alert state without reloading, and gentle word warnings.
(function () {
  "use strict";
  var body = document.body;
  var cover = document.getElementById("cover");
  var coverButton = document.getElementById("cover-button");
  var coverAfter = parseInt(body.getAttribute("data-cover-after") || "60", 10) * 1000;
  var timer = null;

  function showCover() {
    if (!cover) { return; }
    cover.classList.remove("hidden");
    cover.focus();
  }
  function hideCover() {
    if (!cover) { return; }
    cover.classList.add("hidden");
    restart();
  }
  function restart() {
    if (timer) { clearTimeout(timer); }
    if (cover && coverAfter > 0) { timer = setTimeout(showCover, coverAfter); }
  }
  if (cover) {
    ["click", "keydown", "touchstart"].forEach(function (name) {
      cover.addEventListener(name, function (event) {
        event.preventDefault();
        hideCover();
      });
    });
    ["input", "keydown", "pointerdown", "scroll", "touchstart"].forEach(function (name) {
      document.addEventListener(name, function () {
        if (cover.classList.contains("hidden")) { restart(); }
      }, { passive: true });
    });
    restart();
  }
  if (coverButton && cover) {
    coverButton.addEventListener("click", function (event) {
      event.preventDefault();
      showCover();
    });
  }

  // Alert state: poll every two seconds; reload to the start screen once the desk is closed.
  var state = document.getElementById("alert-state");
  var statusUrl = body.getAttribute("data-status-url");
  function poll() {
    if (!statusUrl || !state) { return; }
    fetch(statusUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        if (!data.open) { window.location.assign("/desk/"); return; }
        if (data.alert && state.textContent !== data.alert.text) {
          state.textContent = data.alert.text;
          state.className = "alert-state alert-" + data.alert.state;
        }
        update(data);
      })
      .catch(function () { /* the next poll tries again */ });
  }
  if (state && statusUrl) { setInterval(poll, 2000); }

  function show(id, visible) {
    var el = document.getElementById(id);
    if (el) { el.classList.toggle("hidden", !visible); }
    return el;
  }
  function setText(id, text) {
    var el = document.getElementById(id);
    if (el && el.textContent !== text) { el.textContent = text; }
  }
  function fillList(id, lines) {
    var list = document.getElementById(id);
    if (!list) { return; }
    while (list.firstChild) { list.removeChild(list.firstChild); }
    lines.forEach(function (line) {
      var li = document.createElement("li");
      li.textContent = line;
      list.appendChild(li);
    });
  }
  var countdown = document.getElementById("countdown");
  var secondsLeft = countdown && countdown.getAttribute("data-seconds") !== "" ?
    parseInt(countdown.getAttribute("data-seconds"), 10) : null;
  function drawCountdown() {
    if (!countdown || secondsLeft === null) { return; }
    var s = Math.max(0, secondsLeft);
    countdown.textContent = Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
  }
  setInterval(function () {
    if (secondsLeft !== null && secondsLeft > 0) { secondsLeft -= 1; drawCountdown(); }
  }, 1000);

  // Everything that changes without the desk doing anything: acknowledgement, messages,
  // escalation, the confirmed document and the script that follows it.
  function update(data) {
    if (data.ack) { setText("ack-state", data.ack.text); }
    show("ack-state", !!data.ack);
    show("message-note", data.messages && data.messages.unread > 0);
    var esc = data.escalation || {};
    show("escalation", !!esc.missed);
    if (esc.missed) {
      fillList("escalation-numbers", (esc.numbers || []).map(function (n) { return n.label + ": " + n.number; }));
      show("escalation-next", esc.seconds_to_next !== null && esc.seconds_to_next !== undefined);
      if (esc.seconds_to_next !== null && esc.seconds_to_next !== undefined) {
        secondsLeft = esc.seconds_to_next;
        drawCountdown();
      }
    }
    if (data.document) {
      setText("impression-label", data.document.text);
      var meaning = document.getElementById("impression-meaning");
      if (meaning && data.document.meaning) { setText("impression-meaning", data.document.meaning); }
    }
    var say = document.getElementById("say-line");
    if (data.script && say && say.getAttribute("data-situation") !== data.script.situation) {
      say.setAttribute("data-situation", data.script.situation);
      say.textContent = data.script.say;
      fillList("do-lines", data.script.do);
      fillList("never-lines", data.script.never);
    }
  }

  // A gentle warning, never a block, when words about immigration status appear.
  var words = (body.getAttribute("data-status-words") || "").split("|").filter(Boolean);
  if (words.length) {
    var pattern = new RegExp("\\b(" + words.map(function (w) {
      return w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }).join("|") + ")\\b", "i");
    document.querySelectorAll("[data-watch-for]").forEach(function (note) {
      var field = document.getElementById(note.getAttribute("data-watch-for"));
      if (!field) { return; }
      var check = function () {
        if (pattern.test(field.value)) {
          note.textContent = "Record only what the agent said and did. Do not write down anyone's immigration status.";
          note.classList.remove("hidden");
        } else {
          note.classList.add("hidden");
        }
      };
      field.addEventListener("input", check);
      check();
    });
  }
})();
