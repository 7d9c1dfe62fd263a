// The kiosk: privacy cover, live alert state and "Now" panel, and gentle word warnings.
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

  // The idle screen asks where our staff member is only beside "reporting from elsewhere".
  var place = document.getElementById("offsite-place");
  if (place) {
    var channels = document.querySelectorAll("input[name='channel']");
    var follow = function () {
      var chosen = document.querySelector("input[name='channel']:checked");
      place.classList.toggle("hidden", !chosen || chosen.value !== "offsite");
    };
    channels.forEach(function (input) { input.addEventListener("change", follow); });
    follow();
  }

  // "Started by mistake" leaves the screen when its window ends.
  var mistake = document.getElementById("mistake");
  if (mistake) {
    var left = parseInt(mistake.getAttribute("data-seconds") || "0", 10);
    setTimeout(function () { mistake.classList.add("hidden"); }, Math.max(0, left) * 1000);
  }

  function show(id, visible) {
    var el = document.getElementById(id);
    if (el) { el.classList.toggle("hidden", !visible); }
    return el;
  }
  function setText(id, text) {
    var el = document.getElementById(id);
    if (el && el.textContent !== text) { el.textContent = text; }
  }
  function fill(list, lines) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    lines.forEach(function (line) {
      var li = document.createElement("li");
      li.textContent = line;
      list.appendChild(li);
    });
  }
  function fillList(id, lines) {
    var list = document.getElementById(id);
    if (list) { fill(list, lines); }
  }
  function element(tag, className, text) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    if (text) { el.textContent = text; }
    return el;
  }
  function linesOf(block) {
    var columns = element("div", "guidance-columns");
    [["Do", "do-lines", block.do], ["Never", "never-lines", block.never]].forEach(function (part) {
      var column = element("div");
      column.appendChild(element("h2", "lines-heading", part[0]));
      var list = element("ul", part[1]);
      fill(list, part[2]);
      column.appendChild(list);
      columns.appendChild(column);
    });
    return columns;
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

  // The "Now" panel: the most urgent situation's lines, the others folded below.
  function drawPanel(panel) {
    var now = document.getElementById("now");
    var say = document.getElementById("say-line");
    if (!now || !say || !panel) { return; }
    var earlier = document.getElementById("earlier");
    var keys = panel.earlier.map(function (b) { return b.situation; }).join(",");
    if (say.getAttribute("data-situation") !== panel.situation) {
      now.setAttribute("data-situation", panel.situation);
      say.setAttribute("data-situation", panel.situation);
      setText("now-label", panel.label);
      say.textContent = panel.say;
      fillList("do-lines", panel.do);
      fillList("never-lines", panel.never);
    }
    if (earlier && earlier.getAttribute("data-keys") !== keys) {
      earlier.setAttribute("data-keys", keys);
      while (earlier.firstChild) { earlier.removeChild(earlier.firstChild); }
      panel.earlier.forEach(function (block) {
        var details = element("details", "earlier-block");
        details.appendChild(element("summary", "", "Also recorded: " + block.label));
        details.appendChild(element("p", "earlier-say", block.say));
        details.appendChild(linesOf(block));
        earlier.appendChild(details);
      });
      earlier.classList.toggle("hidden", panel.earlier.length === 0);
    }
    setText("step-say", panel.step_say || "");
    show("step-say-line", !!panel.step_say);
  }

  // Everything that changes without the desk doing anything: the alert, acknowledgement,
  // messages, escalation, the confirmed document and the words that follow it.
  function update(data) {
    var state = document.getElementById("alert-state");
    if (data.alert && state && state.textContent !== data.alert.text) {
      state.textContent = data.alert.text;
      state.className = "alert-state alert-" + data.alert.state;
    }
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
    // The cover stays neutral, but never hides what the desk must act on.
    var call = data.cover || {};
    show("cover-dot", !!call.message);
    setText("cover-numbers", (call.numbers || []).join(", "));
    show("cover-call", !!(call.numbers && call.numbers.length));
    if (data.document) {
      setText("impression-label", data.document.text);
      if (data.document.meaning) { setText("impression-meaning", data.document.meaning); }
    }
    drawPanel(data.panel);
  }

  // The server sets the pace: quick while the alert goes out or an acknowledgement is
  // awaited, every two seconds otherwise. One request at a time.
  // The page's version goes back with each poll: when nothing changed, the answer is short.
  var statusUrl = body.getAttribute("data-status-url");
  var pace = parseInt(body.getAttribute("data-poll-ms") || "2000", 10);
  var version = body.getAttribute("data-version") || "";
  function poll() {
    var url = statusUrl + (statusUrl.indexOf("?") < 0 ? "?" : "&") + "since=" + encodeURIComponent(version);
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok || response.status === 403 ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        // Closed here, or this device is no longer a kiosk: the page says which.
        if (!data.open) { window.location.assign("/desk/"); return; }
        if (data.poll_ms) { pace = data.poll_ms; }
        if (data.version) { version = data.version; }
        if (!data.unchanged) { update(data); }
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { setTimeout(poll, pace); });
  }
  if (statusUrl && document.getElementById("alert-state")) { setTimeout(poll, pace); }

  // The idle screen checks in about once a minute, so the district can tell a quiet kiosk
  // from one that is off; when the device is no longer set up, or a request was started
  // here, the page reloads to say so.
  var idleUrl = body.getAttribute("data-idle-poll-url");
  var idlePace = parseInt(body.getAttribute("data-idle-poll-ms") || "60000", 10);
  function idlePoll() {
    fetch(idleUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        // 403: this device is no longer (or not) a kiosk; the page says which.
        if (response.status === 403) { window.location.assign("/desk/"); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (data && data.open) { window.location.assign("/desk/"); }
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { setTimeout(idlePoll, idlePace); });
  }
  if (idleUrl && idlePace > 0) { setTimeout(idlePoll, idlePace); }

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
