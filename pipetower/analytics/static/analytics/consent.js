// The cookie banner without a page load. Without this script the banner's
// buttons are plain form posts that come back to the same page.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("[data-cookie-consent]")) return;
    var submitter = event.submitter;
    var choice = submitter ? submitter.value : "";
    if (choice !== "accept_all" && choice !== "reject_all") return; // "Choose" opens the cookie page
    event.preventDefault();
    var data = new FormData(form);
    data.set("choice", choice);
    var banner = form.closest("[data-cookie-banner]");
    var status = banner && banner.querySelector("[data-cookie-status]");
    fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      if (!response.ok) throw new Error("refused");
      return response.json();
    }).then(function (answer) {
      if (answer.reload) { window.location.reload(); return; }
      if (status) status.textContent = "Your cookie choices are saved.";
      if (banner) {
        form.remove();
        banner.setAttribute("data-saved", "");
        var main = document.getElementById("main");
        window.setTimeout(function () { banner.remove(); if (main) { main.setAttribute("tabindex", "-1"); main.focus(); } }, 1500);
      }
    }).catch(function () {
      // Fall back to the plain form post, which explains any problem on a page.
      var hidden = document.createElement("input");
      hidden.type = "hidden";
      hidden.name = "choice";
      hidden.value = choice;
      form.appendChild(hidden);
      form.submit();
    });
  });
})();
