// conveyor console: live sections and confirmations. Written for conveyor; no library.
// A section with data-live="URL" is fetched again every few seconds and its content swapped in place.
// The pages work without this script: it only refreshes numbers and asks before destructive actions.
"use strict";

(function () {
  var body = document.body;
  var every = parseInt(body.getAttribute("data-live-interval-ms") || "3000", 10);
  var state = document.querySelector(".live-state");
  var busy = false;

  function say(text, bad) {
    if (!state) return;
    state.textContent = text;
    state.classList.toggle("bad", !!bad);
  }

  function checkedIn(root) {
    var boxes = root.querySelectorAll("input[type=checkbox]:checked");
    var keys = [];
    for (var i = 0; i < boxes.length; i++) keys.push(boxes[i].name + "=" + boxes[i].value);
    return keys;
  }

  function recheck(root, keys) {
    var boxes = root.querySelectorAll("input[type=checkbox]");
    for (var i = 0; i < boxes.length; i++) {
      if (keys.indexOf(boxes[i].name + "=" + boxes[i].value) >= 0) boxes[i].checked = true;
    }
  }

  function refresh(section) {
    var url = section.getAttribute("data-live");
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "conveyor-console" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        if (html === section.getAttribute("data-html")) return;
        var keys = checkedIn(section);
        var focused = section.contains(document.activeElement);
        if (focused) return; // never swap what someone is typing in
        section.innerHTML = html;
        section.setAttribute("data-html", html);
        recheck(section, keys);
      });
  }

  function tick() {
    if (busy || document.hidden) return;
    var sections = document.querySelectorAll("[data-live]");
    if (!sections.length) {
      say("");
      return;
    }
    busy = true;
    var all = [];
    for (var i = 0; i < sections.length; i++) all.push(refresh(sections[i]));
    Promise.all(all)
      .then(function () {
        say("live · updated " + new Date().toLocaleTimeString());
        body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function (error) {
        say("live updates paused: " + error.message + " (is the environment still running?)", true);
      })
      .then(function () {
        busy = false;
      });
  }

  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) || event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var all = event.target.closest && event.target.closest("[data-select-all]");
    if (!all) return;
    var boxes = all.closest("form").querySelectorAll("input[type=checkbox][name=id]");
    for (var i = 0; i < boxes.length; i++) boxes[i].checked = all.checked;
  });

  // A choice that reshapes the page (the send form's queue) is submitted at once; without the script, a button does.
  document.addEventListener("change", function (event) {
    var select = event.target.closest && event.target.closest("select[data-autosubmit]");
    if (select && select.form) select.form.submit();
  });

  if (document.querySelector("[data-live]")) {
    say("live");
    setInterval(tick, every);
  } else {
    say("");
  }
})();
