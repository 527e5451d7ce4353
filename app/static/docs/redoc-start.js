// Starts ReDoc on /redoc (kept out of the page so that its CSP needs no inline script).
"use strict";
(function () {
  var root = document.getElementById("redoc");
  Redoc.init(root.dataset.specUrl, { disableSearch: true }, root);
})();
