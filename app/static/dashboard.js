"use strict";
(function () {
  const form = document.getElementById("config-form");
  const status = document.getElementById("config-status");
  const token = document.querySelector('meta[name="csrf-token"]').content;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const change = {
      threshold_percentile: Number(form.threshold_percentile.value),
      dashboard_recent_count: Number(form.dashboard_recent_count.value),
    };
    status.textContent = "Saving…";
    try {
      const response = await fetch("/api/v1/config", {
        method: "PUT",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
        body: JSON.stringify(change),
        credentials: "same-origin",
      });
      const data = await response.json().catch(() => ({}));
      if (response.status === 401) { window.location.href = "/login?next=/dashboard"; return; }
      status.textContent = response.ok
        ? "Saved: threshold at the " + data.threshold_percentile + "th percentile."
        : "Not saved: " + (data.detail || response.status);
    } catch (err) {
      status.textContent = "Not saved: " + err.message;
    }
  });
})();
