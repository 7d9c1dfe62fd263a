// The office: live list of open encounters and a live encounter page, by polling every 2 s.
(function () {
  "use strict";
  var body = document.body;
  var STUCK_MS = 20000;  // a poll still unanswered after this long no longer holds the next back

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; });
  }
  function cell(text, strong) {
    var td = document.createElement("td");
    if (strong) {
      var b = document.createElement("strong");
      b.textContent = text;
      td.appendChild(b);
    } else {
      td.textContent = text;
    }
    return td;
  }

  // Live list.
  var listUrl = body.getAttribute("data-live-list");
  if (listUrl) {
    var cursor = body.getAttribute("data-cursor") || "";
    var minute = "";
    var rows = document.getElementById("open-rows");
    var empty = document.getElementById("no-open");
    var draw = function (items) {
      while (rows.firstChild) { rows.removeChild(rows.firstChild); }
      items.forEach(function (e) {
        var tr = document.createElement("tr");
        tr.setAttribute("data-id", e.id);
        if (!e.acknowledged) { tr.className = "unacknowledged"; }
        tr.appendChild(cell(e.school));
        tr.appendChild(cell(e.started + " (" + e.channel + ")"));
        tr.appendChild(cell(e.minutes + " min"));
        tr.appendChild(e.acknowledged ? cell(e.acknowledged.by + " at " + e.acknowledged.at) : cell("Not yet", true));
        tr.appendChild(cell(String(e.level)));
        var recorded = (e.exigency ? "Emergency declared. " : "") + (e.request || "Request not recorded");
        if (e.document) { recorded += "; " + e.document + (e.document_confirmed ? " (confirmed)" : ""); }
        recorded += "; agents: " + e.agents + (e.desk_closed ? "; desk closed" : "");
        tr.appendChild(cell(recorded));
        var link = document.createElement("a");
        link.href = e.url;
        link.textContent = "Open record";
        var td = document.createElement("td");
        td.appendChild(link);
        tr.appendChild(td);
        rows.appendChild(tr);
      });
      empty.classList.toggle("hidden", items.length > 0);
    };
    var listing = 0;  // one poll at a time: a slow answer must not overtake a newer one
    setInterval(function () {
      if (Date.now() - listing < STUCK_MS) { return; }
      listing = Date.now();
      getJSON(listUrl + "?since=" + encodeURIComponent(cursor) + "&minute=" + encodeURIComponent(minute))
        .then(function (data) {
          if (!data) { return; }
          cursor = String(data.cursor);
          minute = data.minute || "";
          if (data.changed) { draw(data.encounters); }
        })
        .catch(function () { /* next poll */ })
        .then(function () { listing = 0; });
    }, 2000);
  }

  // Live encounter page.
  var eventsUrl = body.getAttribute("data-events-url");
  if (eventsUrl) {
    var seq = parseInt(body.getAttribute("data-seq") || "0", 10);
    var recordUrl = body.getAttribute("data-record-url");
    var timeline = document.getElementById("timeline");
    var record = document.getElementById("record");
    var setField = function (name, text) {
      var el = document.querySelector('#summary [data-field="' + name + '"]');
      if (el && el.textContent !== text) { el.textContent = text; }
    };
    // One poll at a time: when an answer takes longer than the interval, overlapping polls
    // with the same "since" would each append the same new lines.
    var polling = 0;
    setInterval(function () {
      if (Date.now() - polling < STUCK_MS) { return; }
      polling = Date.now();
      getJSON(eventsUrl + "?since=" + seq).then(function (data) {
        if (!data) { return null; }
        var s = data.summary;
        setField("status", s.status);
        setField("acknowledged", s.acknowledged ? s.acknowledged.by + " at " + s.acknowledged.at : "Not yet");
        setField("level", String(s.level));
        setField("exigency", s.exigency ? "Yes" : "No");
        var fresh = data.events.filter(function (e) { return e.seq > seq; });
        if (!fresh.length) { return null; }
        fresh.forEach(function (e) {
          var li = document.createElement("li");
          var time = document.createElement("time");
          time.textContent = e.at;
          time.setAttribute("datetime", e.iso);
          li.appendChild(time);
          li.appendChild(document.createTextNode(" " + e.text + " (" + e.actor + ")"));
          timeline.appendChild(li);
        });
        seq = Math.max(seq, data.seq);
        // The server renders and escapes the recorded details; only our own page is fetched.
        return fetch(recordUrl, { credentials: "same-origin", cache: "no-store" })
          .then(function (response) { return response.ok ? response.text() : null; })
          .then(function (html) { if (html !== null) { record.innerHTML = html; } });
      }).catch(function () { /* next poll */ })
        .then(function () { polling = 0; });
    }, 2000);
  }
})();
