// Progressive enhancement only: every page works without this file.
// 1. "Copy" buttons copy a command or a secret to the clipboard.
// 2. Buttons marked data-confirm ask before a destructive form is sent.
// 3. The SBOM search box filters the component table as one types (the form still searches on the server).
"use strict";
document.addEventListener("click", function (event) {
  var button = event.target.closest("button.copy");
  if (!button || !navigator.clipboard) { return; }
  var source = button.getAttribute("data-copy");
  var text = source ? document.getElementById(source).textContent : button.getAttribute("data-copy-text");
  navigator.clipboard.writeText(text.trim()).then(function () {
    var label = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 1500);
  });
});
document.querySelectorAll("input[data-filter]").forEach(function (input) {
  var table = document.getElementById(input.getAttribute("data-filter"));
  if (!table) { return; }
  input.addEventListener("input", function () {
    var needle = input.value.trim().toLowerCase();
    table.querySelectorAll("tbody tr").forEach(function (row) {
      row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) === -1;
    });
  });
});
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  if (button && button.hasAttribute("data-confirm") && !window.confirm(button.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
});
