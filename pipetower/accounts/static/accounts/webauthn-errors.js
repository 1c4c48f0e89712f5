// Shows why a security key or passkey step failed, next to the button that started it.
// allauth's WebAuthn script reports failures as an "allauth.error" event.
(function () {
  "use strict";
  function explain(error) {
    var name = error && error.name;
    if (name === "NotAllowedError") return "The security key step was cancelled or timed out. Try again.";
    if (name === "InvalidStateError") return "This key is already registered to your account.";
    if (name === "SecurityError") return "Security keys work only over HTTPS (or on localhost).";
    if (!window.PublicKeyCredential) return "This browser does not support security keys or passkeys.";
    return "The security key step did not work. Try again, or use a code instead.";
  }
  document.addEventListener("allauth.error", function (event) {
    var box = document.getElementById("webauthn-error");
    if (!box) return;
    event.preventDefault();
    box.textContent = explain(event.detail && event.detail.exception);
    box.hidden = false;
  });
})();
