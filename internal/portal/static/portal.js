// Passport's portal: the pages work without this script; it only makes
// them livelier. It sets text, never markup built from values (the one
// fragment it inserts is the server's own escaped template), and it runs
// from this file alone: the pages' Content-Security-Policy allows no
// inline script.
"use strict";

// Time left, counting down each second.
function countdowns() {
  const clocks = document.querySelectorAll("time[data-countdown]");
  if (clocks.length === 0) return;
  const tick = () => {
    for (const el of clocks) {
      const left = Date.parse(el.getAttribute("datetime")) - Date.now();
      el.textContent = left <= 0 ? "ended (reload to see it closed)" : words(left);
    }
  };
  tick();
  setInterval(tick, 1000);
}

function words(ms) {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return (h > 0 ? h + " h " + two(m) + " min " : m + " min ") + two(sec) + " s left";
}

// Policy's answer, asked again as the new request form changes.
function livePreview() {
  const form = document.getElementById("new-request");
  const region = document.getElementById("preview");
  if (!form || !region) return;
  let timer = null, seq = 0;
  const ask = async () => {
    const mine = ++seq;
    const body = new URLSearchParams(new FormData(form));
    let resp;
    try {
      resp = await fetch("/requests/new/preview", {
        method: "POST", body, credentials: "same-origin",
        headers: { "X-Passport-Fragment": "preview" },
      });
    } catch (e) {
      return; // the form still works: "Check with policy" asks again
    }
    if (mine !== seq || !resp.ok) return;
    const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
    region.replaceChildren(...Array.from(doc.body.childNodes, (n) => document.importNode(n, true)));
    windowLabels();
    breakGlass();
  };
  const later = (ev) => {
    if (ev.target && ev.target.id === "public_key") return;
    clearTimeout(timer);
    timer = setTimeout(ask, 400);
  };
  form.addEventListener("input", later);
  form.addEventListener("change", later);
}

// The window choices say policy's answer for each length.
function windowLabels() {
  const select = document.getElementById("duration");
  const answers = document.querySelectorAll("#window-answers li");
  if (!select || answers.length === 0) return;
  const says = {};
  for (const li of answers) {
    const d = li.dataset.decision, n = Number(li.dataset.approvals);
    says[li.dataset.duration] = d === "grant" ? "granted at once"
      : d === "approval" ? "needs " + n + (n === 1 ? " approval" : " approvals") : "denied";
  }
  for (const opt of select.options) {
    if (says[opt.value]) opt.textContent = opt.value + " (" + says[opt.value] + ")";
  }
}

// Break-glass is offered only where policy offers it for what the form
// asks (the answer says so), or once the person has chosen it.
function breakGlass() {
  const field = document.getElementById("break-glass");
  const box = document.getElementById("break_glass");
  if (!field || !box) return;
  const decision = document.getElementById("decision");
  const offered = decision !== null && decision.dataset.breakGlass === "offered";
  field.hidden = !(offered || box.checked);
}

// The recording's player: the page lists what the session printed, line
// by line with each line's time; playing shows the lines again as they
// came, faster or slower, with long silences cut short (as asciinema's
// idle limit does). It only hides and shows the server's own lines.
function player() {
  const pre = document.getElementById("transcript");
  const controls = document.querySelector(".player-controls");
  if (!pre || !controls) return;
  const lines = Array.from(pre.querySelectorAll(".line"));
  const play = document.getElementById("play");
  const pause = document.getElementById("pause");
  const speed = document.getElementById("speed");
  const clock = document.getElementById("player-clock");
  const idle = 2;
  const at = [];
  let prev = 0, shown = 0;
  for (const line of lines) {
    const t = Number(line.dataset.at) || 0;
    shown += Math.min(Math.max(t - prev, 0), idle);
    prev = t;
    at.push(shown);
  }
  let timer = null, pos = 0, next = 0, last = 0;
  const stop = () => { clearInterval(timer); timer = null; };
  const tick = () => {
    const now = performance.now();
    pos += ((now - last) / 1000) * Number(speed.value);
    last = now;
    while (next < lines.length && at[next] <= pos) {
      lines[next].hidden = false;
      next++;
    }
    clock.textContent = pos.toFixed(1) + "s";
    pre.scrollTop = pre.scrollHeight;
    if (next >= lines.length) {
      stop();
      clock.textContent = pos.toFixed(1) + "s, the end";
    }
  };
  play.addEventListener("click", () => {
    if (timer) return;
    if (next >= lines.length || pos === 0) {
      for (const line of lines) line.hidden = true;
      pos = 0;
      next = 0;
    }
    last = performance.now();
    timer = setInterval(tick, 50);
    tick();
  });
  pause.addEventListener("click", stop);
  controls.hidden = false;
}

// Copy buttons for the ssh_config.
function copyButtons() {
  if (!navigator.clipboard) return;
  for (const b of document.querySelectorAll("button[data-copy]")) {
    const from = document.getElementById(b.dataset.copy);
    if (!from) continue;
    b.hidden = false;
    b.addEventListener("click", async () => {
      await navigator.clipboard.writeText(from.textContent);
      b.textContent = "Copied";
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  countdowns();
  livePreview();
  windowLabels();
  copyButtons();
  player();
});
