// Server pickers (the run form's targets, the server list's bulk tags): a search
// box, a tag filter, "select all shown" and "select none". Our own code, no
// libraries. Without JavaScript every server is listed with its check box and
// the controls stay hidden, so the form works the same.
(function () {
  "use strict";
  document.querySelectorAll("[data-picker]").forEach(function (picker) {
    var controls = picker.querySelector("[data-picker-controls]");
    var search = picker.querySelector("[data-picker-search]");
    var tag = picker.querySelector("[data-picker-tag]");
    var count = picker.querySelector("[data-picker-count]");
    var rows = Array.prototype.slice.call(picker.querySelectorAll("[data-picker-row]"));
    if (controls) controls.hidden = false;

    function box(row) { return row.querySelector("input[type=checkbox]"); }

    function shown() { return rows.filter(function (row) { return !row.hidden; }); }

    function update() {
      var chosen = rows.filter(function (row) { return box(row).checked; }).length;
      if (count) {
        count.textContent = chosen + " of " + rows.length + " selected" +
          (shown().length < rows.length ? " · " + shown().length + " shown" : "");
      }
    }

    function filter() {
      var words = (search ? search.value : "").toLowerCase().trim().split(/\s+/).filter(Boolean);
      var wanted = tag ? tag.value : "";
      rows.forEach(function (row) {
        var text = row.getAttribute("data-search") || "";
        var tags = (row.getAttribute("data-tags") || "").split(" ");
        var match = words.every(function (w) { return text.indexOf(w) >= 0; }) &&
          (!wanted || tags.indexOf(wanted) >= 0);
        // A ticked server stays visible, so nothing is sent that cannot be seen.
        row.hidden = !match && !box(row).checked;
      });
      update();
    }

    function setAll(value) {
      (value ? shown() : rows).forEach(function (row) { box(row).checked = value; });
      filter();
    }

    if (search) search.addEventListener("input", filter);
    if (tag) tag.addEventListener("change", filter);
    picker.addEventListener("change", function (event) {
      if (event.target.matches("[data-picker-row] input[type=checkbox]")) update();
    });
    picker.querySelectorAll("[data-picker-all]").forEach(function (button) {
      button.addEventListener("click", function () { setAll(true); });
    });
    picker.querySelectorAll("[data-picker-none]").forEach(function (button) {
      button.addEventListener("click", function () { setAll(false); });
    });
    if (search) search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") event.preventDefault(); // filtering, not submitting
    });
    update();
  });
})();
