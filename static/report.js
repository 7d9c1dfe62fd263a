// The report's Print button: a static file, since the page's policy forbids inline script.
"use strict";
(function () {
  var button = document.getElementById("print-report");
  if (button) {
    button.addEventListener("click", function () { window.print(); });
  }
})();
