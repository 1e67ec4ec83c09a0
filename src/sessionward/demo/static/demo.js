// sessionward demo: the live session countdown and the "stay signed in" warning.
// A static file because the Content-Security-Policy allows no inline script.
(function () {
  "use strict";

  const body = document.body;
  if (body.dataset.authenticated !== "true") {
    return;
  }
  const pollEveryMs = parseFloat(body.dataset.pollInterval || "5") * 1000;
  const warnBeforeS = parseFloat(body.dataset.warnBefore || "60");
  const timer = document.getElementById("session-timer");
  const warning = document.getElementById("expiry-warning");
  const message = document.getElementById("expiry-message");
  const countdown = document.getElementById("expiry-countdown");
  const stay = document.getElementById("stay-signed-in");
  const fields = document.querySelectorAll("[data-status]");

  let status = null; // the last answer of /api/session/status
  let receivedAt = 0; // performance.now() when it arrived
  let pollTimer = null;
  let leaving = false;

  function clock(seconds) {
    const s = Math.max(0, Math.ceil(seconds));
    const m = Math.floor(s / 60);
    return m + ":" + String(s % 60).padStart(2, "0");
  }

  function elapsed() {
    return (performance.now() - receivedAt) / 1000;
  }

  function signedOut(reason) {
    if (leaving) {
      return;
    }
    leaving = true;
    // The reason is only a code; the login page maps known codes to its own messages.
    const query = reason ? "?reason=" + encodeURIComponent(reason) : "";
    window.location.assign("/login" + query);
  }

  function schedule(delayMs) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, Math.max(100, delayMs));
  }

  let inflight = false;

  async function poll() {
    if (inflight || leaving) {
      return;
    }
    inflight = true;
    try {
      await refresh();
    } finally {
      inflight = false;
    }
  }

  async function refresh() {
    let response;
    try {
      response = await fetch("/api/session/status", {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      });
    } catch (error) {
      schedule(pollEveryMs);
      return;
    }
    if (response.status === 401) {
      const answer = await response.json().catch(function () { return {}; });
      signedOut(answer.reason || "unknown");
      return;
    }
    if (!response.ok) {
      schedule(pollEveryMs);
      return;
    }
    const answer = await response.json();
    if (!answer.authenticated) {
      signedOut("");
      return;
    }
    status = answer;
    receivedAt = performance.now();
    render();
    schedule(Math.min(pollEveryMs, remaining() * 1000 + 150));
  }

  function remainingIdle() {
    return status.remaining_idle_s - elapsed();
  }

  function remainingAbsolute() {
    return status.remaining_absolute_s - elapsed();
  }

  function remaining() {
    return Math.min(remainingIdle(), remainingAbsolute());
  }

  function render() {
    if (status === null) {
      return;
    }
    const left = remaining();
    const idleBound = remainingIdle() <= remainingAbsolute();
    if (timer) {
      timer.textContent = clock(left);
      timer.classList.toggle("low", left <= warnBeforeS);
    }
    if (warning) {
      warning.hidden = left > warnBeforeS;
      message.textContent = idleBound
        ? "You will be signed out for inactivity in"
        : "Your session reaches its maximum lifetime in";
      countdown.textContent = clock(left);
      stay.hidden = !idleBound;
    }
    const shift = elapsed();
    fields.forEach(function (field) {
      const name = field.dataset.status;
      const value = status[name];
      if (name === "elevated") {
        field.textContent = value ? "on" : "off";
      } else if (value === null || value === undefined) {
        field.textContent = "off";
      } else {
        const moving = name === "idle_s" || name === "session_age_s" ? value + shift : value - shift;
        field.textContent = Math.max(0, Math.round(moving)) + " s";
      }
    });
    if (left <= 0) {
      schedule(0); // the server decides; it will answer 401 with the reason
    }
  }

  if (stay) {
    stay.addEventListener("click", async function () {
      stay.disabled = true;
      try {
        const response = await fetch("/api/session/touch", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: "{}",
        });
        if (response.status === 401) {
          const answer = await response.json().catch(function () { return {}; });
          signedOut(answer.reason || "unknown");
          return;
        }
      } finally {
        stay.disabled = false;
      }
      poll();
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      poll();
    }
  });

  setInterval(render, 250);
  poll();
})();
