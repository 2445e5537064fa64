"use strict";
(function () {
  var form = document.getElementById("upload");
  var MAX = Number(form.dataset.maxBytes) || 2 * 1024 * 1024;
  var file = document.getElementById("image");
  var picked = document.getElementById("picked");
  var submit = document.getElementById("submit");
  var result = document.getElementById("result");
  var title = document.getElementById("result-title");
  var message = document.getElementById("result-message");
  var link = document.getElementById("result-url");
  var img = document.getElementById("result-image");

  function size(n) {
    if (n < 1024) return n + " bytes";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1024 / 1024).toFixed(2) + " MiB";
  }

  file.addEventListener("change", function () {
    var f = file.files && file.files[0];
    picked.className = "hint";
    if (!f) { picked.textContent = ""; return; }
    picked.textContent = f.name + " — " + size(f.size);
    if (f.size > MAX) {
      picked.className = "hint warn";
      picked.textContent += " (over " + size(MAX) + ": the server will refuse it)";
    }
  });

  function show(ok, heading, text) {
    result.hidden = false;
    result.className = ok ? "ok" : "error";
    title.textContent = heading;
    message.textContent = text;
    link.textContent = "";
    link.removeAttribute("href");
    img.hidden = true;
    img.removeAttribute("src");
    delete result.dataset.code;
    result.dataset.state = ok ? "ok" : "error";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submit.disabled = true;
    result.dataset.state = "pending";
    delete result.dataset.code;
    fetch(form.getAttribute("action"), { method: "POST", body: new FormData(form) })
      .then(function (response) {
        return response.text().then(function (text) {
          var body = null;
          try { body = JSON.parse(text); } catch (e) { body = null; }
          return { status: response.status, body: body, text: text };
        });
      })
      .then(function (r) {
        if (r.status >= 200 && r.status < 300 && r.body && r.body.url) {
          show(true, "Stored", r.body.width + "×" + r.body.height + " " + r.body.type + ", " + size(r.body.bytes) + ". Served from:");
          link.textContent = r.body.url;
          link.href = r.body.url;
          img.onload = function () { img.hidden = false; result.dataset.state = "loaded"; };
          img.onerror = function () { message.textContent += " (the image could not be loaded from its URL)"; result.dataset.state = "image-error"; };
          img.src = r.body.url;
        } else if (r.status >= 200 && r.status < 300) {
          show(true, "Accepted", "The application answered " + r.status + ".");
        } else if (r.body && r.body.error) {
          show(false, "Refused (" + r.body.error.code + ")", r.body.error.message);
          result.dataset.code = r.body.error.code;
        } else {
          show(false, "Failed (" + r.status + ")", r.text.slice(0, 300));
        }
      })
      .catch(function (e) { show(false, "Failed", "The upload did not reach the server: " + e); })
      .then(function () { submit.disabled = false; });
  });
})();
