// zosboot farmer portal: the preview and links follow the form as the farmer types, and a
// download shows the image's sha256. Everything here is optional: without this script the
// form submits to the same page, which the server renders with the same preview and links.
(function () {
  "use strict";

  var form = document.getElementById("boot-form");
  if (!form || !window.fetch || !window.URLSearchParams) {
    return;
  }
  var FIELDS = ["network", "farm", "extra"];
  var result = document.getElementById("result");
  var previewStatus = document.getElementById("preview-status");
  var previewScript = document.getElementById("preview-script");
  var imageScript = document.getElementById("image-script");
  var formError = document.getElementById("form-error");
  // A "required" complaint about a field the farmer has not reached yet is noise.
  var touched = new Set();
  var pending = null;
  var timer = null;

  if (FIELDS.some(function (name) { return new URLSearchParams(location.search).has(name); })) {
    FIELDS.forEach(function (name) { touched.add(name); });
  }

  function params() {
    var data = new FormData(form);
    var query = new URLSearchParams();
    FIELDS.forEach(function (name) {
      query.set(name, data.get(name) || "");
    });
    return query;
  }

  function showMessages(answer) {
    FIELDS.forEach(function (name) {
      var line = document.getElementById("msg-" + name);
      var message = answer.field_messages[name];
      var shown = message.kind !== "error" || touched.has(name);
      line.textContent = shown ? message.text : "";
      line.className = "msg " + (shown ? message.kind : "");
      var input = form.elements.namedItem(name);
      if (input && !(input instanceof RadioNodeList)) {
        if (shown && message.kind === "error") {
          input.setAttribute("aria-invalid", "true");
        } else {
          input.removeAttribute("aria-invalid");
        }
      }
    });
    formError.textContent = answer.form_error;
  }

  function update() {
    clearTimeout(timer);
    if (pending) {
      pending.abort();
    }
    var controller = new AbortController();
    pending = controller;
    var query = params();
    form.setAttribute("aria-busy", "true");
    return fetch(form.dataset.previewUrl + "?" + query, {
      signal: controller.signal,
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("the server answered " + response.status);
        }
        return response.json();
      })
      .then(function (answer) {
        showMessages(answer);
        previewStatus.textContent = answer.preview_status;
        previewScript.textContent = answer.script;
        imageScript.textContent = answer.image_script;
        // Keep the farmer's open "GRUB and syslinux entries" and similar sections open.
        var open = Array.prototype.map.call(
          result.querySelectorAll("details[open]"),
          function (details) { return details.closest("[data-format]").dataset.format; }
        );
        result.innerHTML = answer.html;
        open.forEach(function (format) {
          var details = result.querySelector('[data-format="' + format + '"] details');
          if (details) {
            details.open = true;
          }
        });
        history.replaceState(null, "", "?" + query);
      })
      .catch(function (error) {
        if (error.name !== "AbortError") {
          previewStatus.textContent =
            "Could not update the preview (" + error.message + "); use the button of the form.";
        }
      })
      .finally(function () {
        if (pending === controller) {
          pending = null;
          form.removeAttribute("aria-busy");
        }
      });
  }

  form.addEventListener("input", function (event) {
    touched.add(event.target.name);
    clearTimeout(timer);
    timer = setTimeout(update, event.target.type === "radio" ? 0 : 250);
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    FIELDS.forEach(function (name) { touched.add(name); });
    update().then(function () {
      var invalid = form.querySelector("[aria-invalid=true]");
      (invalid || document.getElementById("step-2")).focus({ preventScroll: !!invalid });
    });
  });

  // --- downloads: fetch, show the sha256, then save ---------------------------------------

  function reason(body, status) {
    // Error bodies are iPXE scripts that echo "zosboot error <status>: <reason>".
    var match = /zosboot error \d+: (.*)/.exec(body);
    return match ? match[1] : "the server answered " + status;
  }

  function size(bytes) {
    if (bytes >= 1048576) {
      return (bytes / 1048576).toFixed(1) + " MiB";
    }
    return Math.max(1, Math.round(bytes / 1024)) + " KiB";
  }

  function hex(buffer) {
    return Array.prototype.map
      .call(new Uint8Array(buffer), function (byte) { return byte.toString(16).padStart(2, "0"); })
      .join("");
  }

  function save(blob, filename) {
    var url = URL.createObjectURL(blob);
    var link = document.createElement("a");
    link.href = url;
    link.download = filename;
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
  }

  function verify(blob, expected) {
    // crypto.subtle exists only on https:// and localhost pages; elsewhere trust the header.
    if (!expected || !window.crypto || !window.crypto.subtle) {
      return Promise.resolve(null);
    }
    return blob
      .arrayBuffer()
      .then(function (data) { return window.crypto.subtle.digest("SHA-256", data); })
      .then(function (digest) { return hex(digest) === expected; });
  }

  function report(status, filename, blob, sha256, verified) {
    status.className = "status ok";
    status.textContent =
      "Saved " + filename + " (" + size(blob.size) + "), sha256" +
      (verified ? " checked in your browser:" : ":");
    var code = document.createElement("code");
    code.className = "sha";
    code.textContent = sha256;
    status.appendChild(code);
  }

  result.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-download]");
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey ||
        event.altKey) {
      return;
    }
    event.preventDefault();
    if (link.getAttribute("aria-busy") === "true") {
      return;
    }
    // The status line right after the link (a card may offer a second file, for arm64).
    var next = link.nextElementSibling;
    var status = next && next.matches("[data-status]") ? next :
      link.parentElement.querySelector("[data-status]");
    var filename = link.dataset.filename;
    link.setAttribute("aria-busy", "true");
    status.className = "status";
    status.textContent = "Preparing " + filename + "; a new image takes a few seconds...";
    fetch(link.href)
      .then(function (response) {
        if (!response.ok) {
          return response.text().then(function (body) {
            throw new Error(reason(body, response.status));
          });
        }
        var sha256 = response.headers.get("X-Checksum-Sha256") || "";
        return response.blob().then(function (blob) {
          return verify(blob, sha256).then(function (verified) {
            if (verified === false) {
              throw new Error("the download is damaged (its sha256 does not match); try again");
            }
            save(blob, filename);
            report(status, filename, blob, sha256, verified);
          });
        });
      })
      .catch(function (error) {
        status.className = "status error";
        status.textContent = "Download failed: " + error.message + ".";
      })
      .finally(function () {
        link.removeAttribute("aria-busy");
      });
  });
})();
