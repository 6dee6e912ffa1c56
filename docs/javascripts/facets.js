// Facet filters for the head index (no dependencies): the <select data-facet="stage|status|model">
// boxes of a .ha-facets block filter the rows of the .ha-index table that follows it. Rows carry
// data-stage, data-status ("|"-separated verdicts, or the no-claim status) and data-verdicts (JSON:
// model -> verdict). With a model chosen, the status filter reads that model's verdict. A row the
// facets hide gets data-ha-facet="0"; table.js's text filter keeps it hidden.
(function () {
  "use strict";

  function rowMatches(row, want) {
    if (want.stage && row.dataset.stage !== want.stage) return false;
    var verdicts = {};
    try { verdicts = JSON.parse(row.dataset.verdicts || "{}"); } catch (e) { verdicts = {}; }
    if (want.model) {
      if (!(want.model in verdicts)) return false;
      if (want.status && verdicts[want.model] !== want.status) return false;
      return true;
    }
    if (want.status) {
      return (row.dataset.status || "").split("|").indexOf(want.status) !== -1;
    }
    return true;
  }

  function enhance(box) {
    if (box.dataset.haReady) return;
    box.dataset.haReady = "1";
    var holder = box.nextElementSibling;
    while (holder && !holder.querySelector("table")) holder = holder.nextElementSibling;
    if (!holder) return;
    var table = holder.querySelector("table");
    var selects = box.querySelectorAll("select[data-facet]");
    function apply() {
      var want = {};
      selects.forEach(function (s) { want[s.dataset.facet] = s.value; });
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.dataset.haFacet = rowMatches(row, want) ? "1" : "0";
      });
      table.dispatchEvent(new CustomEvent("ha-refilter"));
    }
    selects.forEach(function (s) { s.addEventListener("change", apply); });
    apply();
  }

  function init() {
    document.querySelectorAll(".ha-facets").forEach(enhance);
  }

  if (typeof window.document$ !== "undefined" && window.document$.subscribe) {
    window.document$.subscribe(init);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
