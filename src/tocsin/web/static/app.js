// Tocsin's own JavaScript: progressive touches only (the pages work without it). No inline scripts, no eval.
(function () {
  "use strict";

  var relative = typeof Intl !== "undefined" && Intl.RelativeTimeFormat
    ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;

  function ago(date) {
    var seconds = Math.round((date.getTime() - Date.now()) / 1000);
    var abs = Math.abs(seconds);
    if (!relative) return null;
    if (abs < 60) return relative.format(seconds, "second");
    if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
    if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
    if (abs < 86400 * 30) return relative.format(Math.round(seconds / 86400), "day");
    return null;
  }

  // <time data-local>: local time as the title, "5 minutes ago" as the text (within a month).
  function localise(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date)) return;
      el.title = date.toLocaleString();
      el.textContent = ago(date) || date.toLocaleString();
    });
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  // <time data-countdown>: time left until a deadline, every second; "overdue" once it has passed.
  function tick() {
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var due = new Date(el.getAttribute("datetime"));
      if (isNaN(due)) return;
      var left = Math.round((due.getTime() - Date.now()) / 1000);
      var abs = Math.abs(left);
      var text = Math.floor(abs / 3600) + ":" + pad(Math.floor((abs % 3600) / 60)) + ":" + pad(abs % 60);
      el.textContent = left >= 0 ? text + " left" : "overdue by " + text;
      el.classList.toggle("overdue", left < 0);
      el.title = due.toLocaleString();
    });
  }

  // <button data-copy="#id">: copy that input's value to the clipboard.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) {
      var source = document.querySelector(button.getAttribute("data-copy"));
      if (!source) return;
      var text = source.value || source.textContent;
      var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 2000); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done);
      } else {
        source.select && source.select();
        document.execCommand("copy");
        done();
      }
      return;
    }
    var back = event.target.closest("[data-back]");
    if (back) history.back();
  });

  function ready(root) {
    localise(root);
    root.querySelectorAll("[data-back][hidden]").forEach(function (el) {
      if (history.length > 1) el.hidden = false;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    ready(document);
    tick();
    setInterval(tick, 1000);
    setInterval(function () { localise(document); }, 30000);
  });
  document.addEventListener("htmx:load", function (event) { ready(event.target); });
})();
