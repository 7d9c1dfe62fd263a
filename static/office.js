// The office: live list of open encounters and a live encounter page, by polling every 2 s.
(function () {
  "use strict";
  var body = document.body;

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
    setInterval(function () {
      getJSON(listUrl + "?since=" + encodeURIComponent(cursor) + "&minute=" + encodeURIComponent(minute))
        .then(function (data) {
          if (!data) { return; }
          cursor = String(data.cursor);
          minute = data.minute || "";
          if (data.changed) { draw(data.encounters); }
        })
        .catch(function () { /* next poll */ });
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
    setInterval(function () {
      getJSON(eventsUrl + "?since=" + seq).then(function (data) {
        if (!data) { return; }
        var s = data.summary;
        setField("status", s.status);
        setField("acknowledged", s.acknowledged ? s.acknowledged.by + " at " + s.acknowledged.at : "Not yet");
        setField("level", String(s.level));
        setField("exigency", s.exigency ? "Yes" : "No");
        if (!data.events.length) { return; }
        data.events.forEach(function (e) {
          var li = document.createElement("li");
          var time = document.createElement("time");
          time.textContent = e.at;
          li.appendChild(time);
          li.appendChild(document.createTextNode(" " + e.text + " (" + e.actor + ")"));
          timeline.appendChild(li);
        });
        seq = data.seq;
        // The server renders and escapes the recorded details; only our own page is fetched.
        fetch(recordUrl, { credentials: "same-origin", cache: "no-store" })
          .then(function (response) { return response.ok ? response.text() : null; })
          .then(function (html) { if (html !== null) { record.innerHTML = html; } });
      }).catch(function () { /* next poll */ });
    }, 2000);
  }
})();
