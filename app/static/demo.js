"use strict";
(function () {
  const form = document.getElementById("upload-form");
  const fileInput = document.getElementById("file");
  const submit = document.getElementById("submit");
  const preview = document.getElementById("preview");
  const previewImg = document.getElementById("preview-img");
  const empty = document.getElementById("result-empty");
  const errorBox = document.getElementById("result-error");
  const body = document.getElementById("result-body");
  const set = (id, text) => { document.getElementById(id).textContent = text; };

  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    if (!file) { preview.hidden = true; return; }
    previewImg.src = URL.createObjectURL(file);
    preview.hidden = false;
  });

  function showError(message) {
    empty.hidden = true;
    body.hidden = true;
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function showResult(r) {
    empty.hidden = true;
    errorBox.hidden = true;
    const verdict = document.getElementById("verdict");
    verdict.textContent = r.is_anomaly
      ? "Unusual for a child of this age"
      : "Typical for a child of this age";
    verdict.className = "verdict " + (r.is_anomaly ? "warn" : "ok");
    const scale = Math.max(r.threshold * 2, r.anomaly_score * 1.1);
    const fill = document.getElementById("meter-fill");
    fill.style.width = Math.min(100, (100 * r.anomaly_score) / scale) + "%";
    fill.className = "meter-fill " + (r.is_anomaly ? "warn" : "ok");
    document.getElementById("meter-mark").style.left = (100 * r.threshold) / scale + "%";
    const reasons = document.getElementById("r-reasons");
    reasons.replaceChildren();
    for (const reason of r.reasons || []) {
      const item = document.createElement("li");
      item.textContent = reason.text;
      reasons.appendChild(item);
    }
    document.getElementById("reasons-box").hidden = !(r.reasons && r.reasons.length);
    set("r-score", r.anomaly_score.toFixed(3));
    set("r-threshold", r.threshold.toFixed(3));
    set("r-normalised", r.normalised_score.toFixed(1));
    set("r-group", r.age_group + " years (age " + r.age_years + ")");
    set("r-time", r.processing_time_ms.toFixed(0) + " ms");
    const link = document.getElementById("r-link");
    link.href = "/api/v1/analyses/" + encodeURIComponent(r.public_id);
    link.textContent = "this result (JSON, only you have the link)";
    body.hidden = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    submit.textContent = "Analysing…";
    try {
      const response = await fetch(form.action, { method: "POST", body: new FormData(form) });
      let data = null;
      try { data = await response.json(); } catch (_) { data = null; }
      if (!response.ok) {
        showError((data && data.detail) || "The server answered " + response.status + ".");
      } else {
        showResult(data);
      }
    } catch (err) {
      showError("The upload failed: " + err.message);
    } finally {
      submit.disabled = false;
      submit.textContent = "Analyse drawing";
    }
  });
})();
