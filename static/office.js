// The office: live list of open encounters and a live encounter page, by polling every 2 s.
(function () {
  "use strict";
  var body = document.body;
  var STUCK_MS = 20000;  // a poll still unanswered after this long no longer holds the next back

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; });
  }
  function cell(text, strong, label) {
    var td = document.createElement("td");
    if (label) { td.setAttribute("data-label", label); }
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
        if (e.stood_down) {
          tr.className = "stood-down";
        } else if (!e.acknowledged) {
          tr.className = "unacknowledged";
        }
        var school = cell(e.school);
        if (e.stood_down) {
          var tag = document.createElement("strong");
          tag.className = "tag tag-stood-down";
          tag.textContent = "Stood down";
          school.appendChild(document.createTextNode(" "));
          school.appendChild(tag);
        }
        if (e.burst) {
          var burst = document.createElement("strong");
          burst.className = "tag tag-burst";
          burst.textContent = e.burst;
          school.appendChild(document.createTextNode(" "));
          school.appendChild(burst);
        }
        tr.appendChild(school);
        tr.appendChild(cell(e.started + " (" + e.channel + ")", false, "Started"));
        tr.appendChild(cell(e.minutes + " min", false, "Since alert"));
        if (e.acknowledged) {
          tr.appendChild(cell(e.acknowledged.by + " at " + e.acknowledged.at, false, "Acknowledged"));
        } else {
          tr.appendChild(cell(e.stood_down ? "No (stood down)" : "Not yet", !e.stood_down, "Acknowledged"));
        }
        tr.appendChild(cell(String(e.level), false, "Level"));
        var recorded = (e.exigency ? "Emergency declared. " : "") + (e.request || "Request not recorded");
        if (e.document) { recorded += "; " + e.document + (e.document_confirmed ? " (confirmed)" : ""); }
        recorded += "; agents: " + e.agents + (e.desk_closed ? "; desk closed" : "");
        tr.appendChild(cell(recorded, false, "Recorded so far"));
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

  // Live encounter page: the moment at the top, the actions it calls for, the record and the
  // timeline follow what the desk and others record, without a reload.
  var eventsUrl = body.getAttribute("data-events-url");
  if (eventsUrl) {
    var seq = parseInt(body.getAttribute("data-seq") || "0", 10);
    var status = body.getAttribute("data-status") || "";
    var recordUrl = body.getAttribute("data-record-url");
    var photosUrl = body.getAttribute("data-photos-url");
    var timeline = document.getElementById("timeline");
    var record = document.getElementById("record");
    var photosSlot = document.getElementById("photos-slot");
    var field = function (name) {
      return document.querySelector('#summary [data-field="' + name + '"]');
    };
    var setText = function (el, text) {
      if (el && el.textContent !== text) { el.textContent = text; }
    };
    var drawLastDesk = function (last) {
      var el = field("last_desk");
      if (!el) { return; }
      while (el.firstChild) { el.removeChild(el.firstChild); }
      if (!last) {
        el.textContent = "none yet";
        return;
      }
      var time = document.createElement("time");
      time.setAttribute("datetime", last.iso);
      time.textContent = last.at;
      el.appendChild(time);
      el.appendChild(document.createTextNode(" " + last.text));
    };
    var drawPhoto = function (photo) {
      var figure = document.getElementById("moment-photo");
      if (!figure || !photo || figure.getAttribute("data-photo") === photo.public_id) { return; }
      while (figure.firstChild) { figure.removeChild(figure.firstChild); }
      var link = document.createElement("a");
      link.href = photo.url;
      var img = document.createElement("img");
      img.src = photo.url;
      img.alt = photo.alt;
      img.width = photo.width;
      img.height = photo.height;
      link.appendChild(img);
      figure.appendChild(link);
      var caption = document.createElement("figcaption");
      caption.className = "hint";
      caption.textContent = "Tap to open it full size. Each view is recorded in the audit log.";
      figure.appendChild(caption);
      figure.setAttribute("data-photo", photo.public_id);
      figure.hidden = false;
    };
    var drawMoment = function (m) {
      var state = document.getElementById("moment-state");
      if (state) {
        setText(state, m.state);
        state.hidden = !m.state;
      }
      setText(document.getElementById("moment-say"), m.say);
      setText(field("situation"), m.situation);
      setText(field("also"), m.also);
      var also = document.querySelector('#summary [data-row="also"]');
      if (also) { also.hidden = !m.also; }
      setText(field("document"), m.document);
      setText(field("acknowledged"), m.acknowledged);
      setText(field("escalation"), m.escalation);
      drawLastDesk(m.last_desk);
      drawPhoto(m.photo);
      var note = document.getElementById("moment-photo-note");
      if (note) { note.hidden = !m.photo_hidden; }
      // Show or hide the actions the moment calls for; the server checks each one anyway.
      Array.prototype.forEach.call(document.querySelectorAll("[data-offer]"), function (el) {
        var key = el.getAttribute("data-offer");
        if (Object.prototype.hasOwnProperty.call(m.offers, key)) { el.hidden = !m.offers[key]; }
      });
      if (m.status !== status) {
        // Stood down, reopened or resolved elsewhere: other actions fit now.
        var box = document.getElementById("status-note");
        setText(document.getElementById("status-note-text"),
          "This encounter is now " + m.status.replace(/_/g, " ") + ".");
        if (box) { box.hidden = false; }
      }
    };
    var reload = document.getElementById("status-note-reload");
    if (reload) {
      reload.addEventListener("click", function () { window.location.reload(); });
    }
    var refreshPhotos = function (count) {
      if (!photosSlot || String(count) === photosSlot.getAttribute("data-count")) { return null; }
      return fetch(photosUrl, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html === null) { return; }
          photosSlot.innerHTML = html;
          photosSlot.setAttribute("data-count", String(count));
        });
    };
    // One poll at a time: when an answer takes longer than the interval, overlapping polls
    // with the same "since" would each append the same new lines.
    var polling = 0;
    setInterval(function () {
      if (Date.now() - polling < STUCK_MS) { return; }
      polling = Date.now();
      getJSON(eventsUrl + "?since=" + seq).then(function (data) {
        if (!data) { return null; }
        var fresh = data.events.filter(function (e) { return e.seq > seq; });
        if (!fresh.length) { return null; }
        if (data.moment) { drawMoment(data.moment); }
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
        return Promise.all([
          fetch(recordUrl, { credentials: "same-origin", cache: "no-store" })
            .then(function (response) { return response.ok ? response.text() : null; })
            .then(function (html) { if (html !== null) { record.innerHTML = html; } }),
          data.moment ? refreshPhotos(data.moment.photos) : null
        ]);
      }).catch(function () { /* next poll */ })
        .then(function () { polling = 0; });
    }, 2000);

    // A form that came back with a problem: bring it into view, its first field focused.
    var problem = document.querySelector("#main .has-error");
    if (problem) {
      problem.scrollIntoView({ block: "center" });
      var input = problem.querySelector("input, select, textarea");
      if (input) { input.focus({ preventScroll: true }); }
    }
  }
})();
