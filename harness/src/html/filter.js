// Filters the finding cards by an edge of the exposure graph. Without
// scripts every card shows; nothing here is needed to read the report.
(function () {
  document.documentElement.classList.add("js");
  var filter = document.getElementById("filter");
  var what = document.getElementById("filter-what");
  function show(edge) {
    document.querySelectorAll(".card").forEach(function (card) {
      var edges = (card.getAttribute("data-edges") || "").split(" ");
      card.hidden = edge !== null && edges.indexOf(edge) < 0;
      card.querySelectorAll("tr[data-e], tr:not([data-e])").forEach(function (row) {
        if (row.parentNode.tagName !== "TBODY") return;
        row.hidden = edge !== null && row.getAttribute("data-e") !== edge;
      });
    });
    document.querySelectorAll("[data-edge]").forEach(function (el) {
      el.classList.toggle("selected", el.getAttribute("data-edge") === edge);
    });
    if (!filter) return;
    filter.hidden = edge === null;
    if (edge !== null) {
      var g = document.querySelector("g[data-edge='" + edge + "']");
      what.textContent = "Showing the " + g.getAttribute("data-kind") + " findings from " +
        g.getAttribute("data-from") + " to " + g.getAttribute("data-to") + ".";
      filter.scrollIntoView({ block: "nearest" });
    }
  }
  function pick(event) {
    var el = event.target.closest("[data-edge]");
    if (el) show(el.getAttribute("data-edge"));
    else if (event.target.closest("#show-all")) show(null);
  }
  document.addEventListener("click", pick);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter") pick(event);
  });
})();
