// Expand/collapse all rows and filter example tables. Reads the page only through textContent;
// never writes markup, so nothing from the data can become code.
(function () {
  "use strict";
  function each(selector, fn) { Array.prototype.forEach.call(document.querySelectorAll(selector), fn); }
  var expand = document.getElementById("expand-all");
  var collapse = document.getElementById("collapse-all");
  if (expand) { expand.addEventListener("click", function () { each("details", function (d) { d.open = true; }); }); }
  if (collapse) { collapse.addEventListener("click", function () { each("details", function (d) { d.open = false; }); }); }
  each("input.filter", function (input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    if (!table) { return; }
    input.addEventListener("input", function () {
      var needle = input.value.toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.classList.toggle("hidden", needle !== "" && row.textContent.toLowerCase().indexOf(needle) < 0);
      });
    });
  });
  document.documentElement.setAttribute("data-report-ready", "1");
})();
