// The device check: time one small request to the server and say how long it took.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-check-url");
  var answer = document.getElementById("server-answer");
  if (!url || !answer || !window.fetch) { return; }
  var started = window.performance ? performance.now() : Date.now();
  fetch(url, { credentials: "same-origin", cache: "no-store" })
    .then(function (response) {
      var took = Math.round((window.performance ? performance.now() : Date.now()) - started);
      if (!response.ok) { throw new Error("status " + response.status); }
      return response.json().then(function (data) {
        if (data.server !== "ok") { throw new Error("server"); }
        answer.textContent = "Yes, the server answered in " + took + " ms.";
        answer.setAttribute("data-ms", String(took));
      });
    })
    .catch(function () {
      answer.textContent = "No answer from the server just now. Check the network connection.";
      answer.className = "check-no";
    });
})();
