// Refit console: progressive enhancement over server-rendered pages. Data
// from the API is only ever written with textContent, never as markup.
(function () {
  "use strict";
  const main = document.getElementById("main");
  const ds = main ? main.dataset.dataset : "";
  const TOKEN_KEY = "refit-admin-token";

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
  function authHeaders(h) {
    const t = token();
    if (t) h["Authorization"] = "Bearer " + t;
    return h;
  }
  function say(el, text, kind) {
    if (!el) return;
    el.textContent = text;
    el.classList.remove("ok", "error");
    if (kind) el.classList.add(kind);
  }
  async function errorText(resp) {
    try { const b = await resp.json(); return b.error || resp.statusText; } catch (e) { return resp.statusText; }
  }
  function needToken(el) {
    say(el, "This needs the admin token: enter it in the header, then try again.", "error");
    const input = document.querySelector("[data-token-input]");
    if (input) input.focus();
  }

  // Admin token: kept for this tab only (sessionStorage), sent as Bearer.
  const tokenForm = document.querySelector("[data-token-form]");
  if (tokenForm) {
    const input = tokenForm.querySelector("[data-token-input]");
    const state = tokenForm.querySelector("[data-token-state]");
    if (token()) say(state, "token kept for this tab");
    tokenForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (input.value) { sessionStorage.setItem(TOKEN_KEY, input.value); say(state, "token kept for this tab", "ok"); }
      else { sessionStorage.removeItem(TOKEN_KEY); say(state, "token forgotten"); }
      input.value = "";
    });
  }

  // Dataset picker: go straight to the dataset's page.
  const pick = document.querySelector("[data-pick-dataset]");
  if (pick) {
    pick.form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      const page = main && main.querySelector("[data-live]") ? "/pipeline" : "";
      window.location.assign("/console/" + encodeURIComponent(pick.value) + page);
    });
  }

  // Predict, then correct by prediction ID.
  const predictForm = document.querySelector("[data-predict-form]");
  let lastPrediction = "";
  if (predictForm) {
    const state = predictForm.querySelector("[data-predict-state]");
    const result = document.querySelector("[data-result]");
    const fields = Array.from(predictForm.querySelectorAll("input[name], textarea[name]"));
    // What is wrong with a field, in words: empty, or outside its rule.
    function problem(el) {
      if (el.validity.valid) return "";
      const v = el.validity;
      let what = el.validationMessage.replace(/\.$/, "");
      if (v.valueMissing) what = "required";
      else if (v.badInput) what = "not a number";
      else if (v.rangeUnderflow || v.rangeOverflow) what = el.value + " is out of range";
      else if (v.stepMismatch) what = el.value + " is not a whole number";
      else if (v.patternMismatch || v.tooLong) what = JSON.stringify(el.value) + " does not fit";
      let msg = el.name + ": " + what + "; want " + el.dataset.rule;
      if (el.dataset.example) msg += " (e.g. " + el.dataset.example + ")";
      return msg;
    }
    function showProblem(el) {
      const out = predictForm.querySelector('[data-field-error="' + el.name + '"]');
      if (!out) return;
      const msg = problem(el);
      out.textContent = msg;
      out.hidden = msg === "";
      el.setAttribute("aria-invalid", msg === "" ? "false" : "true");
    }
    for (const el of fields) {
      el.addEventListener("input", function () { el.classList.add("touched"); showProblem(el); });
      el.addEventListener("blur", function () { if (el.value !== "") { el.classList.add("touched"); showProblem(el); } });
    }
    predictForm.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      // input:invalid, not :invalid: a fieldset holding an invalid input
      // matches :invalid too, and has no labels.
      const bad = fields.filter(function (el) { return !el.validity.valid; });
      if (bad.length > 0) {
        for (const el of fields) { el.classList.add("touched"); showProblem(el); }
        say(state, problem(bad[0]) + (bad.length > 1 ? " (and " + (bad.length - 1) + " more fields)" : ""), "error");
        bad[0].focus();
        return;
      }
      const inst = {};
      for (const el of fields) {
        if (el.value === "") continue;
        inst[el.name] = el.hasAttribute("data-numeric") ? Number(el.value) : el.value;
      }
      say(state, "predicting…");
      const resp = await fetch("/v1/models/" + encodeURIComponent(ds) + ":predict", {
        method: "POST", headers: authHeaders({ "Content-Type": "application/json" }),
        body: JSON.stringify({ instances: [inst] }),
      });
      if (resp.status === 401) { needToken(state); return; }
      if (!resp.ok) { say(state, await errorText(resp), "error"); return; }
      const body = await resp.json();
      lastPrediction = body.prediction_ids[0];
      const set = function (k, v) { result.querySelector('[data-r="' + k + '"]').textContent = v; };
      const pred = body.predictions[0];
      if (typeof pred === "string") {
        // A class, and each class's probability, most likely first; as
        // text: a class name is whatever the definition says.
        set("value", pred);
        const list = result.querySelector("[data-probs]");
        list.replaceChildren();
        const probs = Object.entries(body.probabilities[0]).sort(function (a, b) { return b[1] - a[1]; });
        for (const [cls, p] of probs) {
          const li = document.createElement("li");
          li.textContent = cls + ": " + (100 * p).toFixed(1) + "%";
          if (cls === pred) li.className = "predicted";
          list.append(li);
        }
        const pick = correctForm && correctForm.querySelector("select[name=label]");
        if (pick) pick.value = probs.length > 1 ? probs[1][0] : pred; // the likeliest other class
      } else {
        set("value", pred.toLocaleString(undefined, { maximumFractionDigits: 2 }));
      }
      set("id", lastPrediction);
      set("model", body.model.id + " (" + body.model.spec + ")");
      set("version", "v" + body.model.dataset_version);
      set("promoted", new Date(body.model.promoted_at).toUTCString());
      say(state, "done", "ok");
      say(result.querySelector("[data-correct-state]"), "");
      result.hidden = false;
      result.querySelector("#correct-label").focus();
    });
  }
  const correctForm = document.querySelector("[data-correct-form]");
  if (correctForm) {
    const state = correctForm.querySelector("[data-correct-state]");
    correctForm.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const label = correctForm.querySelector("[name=label]");
      if (!label.checkValidity() || !lastPrediction) { say(state, label.validationMessage || "predict first", "error"); return; }
      const resp = await fetch("/v1/datasets/" + encodeURIComponent(ds) + "/corrections", {
        method: "POST", headers: authHeaders({ "Content-Type": "application/json" }),
        body: JSON.stringify({ prediction_id: lastPrediction, label: label.tagName === "SELECT" ? label.value : Number(label.value) }),
      });
      if (resp.status === 401) { needToken(state); return; }
      if (!resp.ok) { say(state, await errorText(resp), "error"); return; }
      const body = await resp.json();
      say(state, "correction accepted (" + body.id + ")", "ok");
      for (const c of document.querySelectorAll("[data-corrected]")) c.textContent = String(Number(c.textContent) + 1);
    });
  }

  // Sortable tables: reorder the existing row nodes.
  for (const table of document.querySelectorAll("table[data-sortable]")) wireSort(table);
  function wireSort(table) {
    table.querySelectorAll("th button[data-sort]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        const th = btn.closest("th");
        const col = Array.prototype.indexOf.call(th.parentNode.children, th);
        const asc = th.getAttribute("aria-sort") !== "ascending";
        th.parentNode.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        const tbody = table.tBodies[0];
        const rows = Array.from(tbody.rows).filter(function (r) { return r.cells.length > col; });
        const key = function (r) {
          const c = r.cells[col];
          return btn.dataset.sort === "num" ? Number(c.dataset.v !== undefined ? c.dataset.v : c.textContent) : c.textContent;
        };
        rows.sort(function (a, b) {
          const x = key(a), y = key(b);
          const d = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
          return asc ? d : -d;
        });
        rows.forEach(function (r) { tbody.appendChild(r); });
      });
    });
  }

  // Live pipeline: on each event, fetch this page again and swap in its
  // #live part. The markup comes from the server's html/template (escaped
  // there); DOMParser never runs scripts.
  const live = document.querySelector("[data-live]");
  let refreshing = false, again = false;
  async function refresh() {
    if (!live) return;
    if (refreshing) { again = true; return; } // one more pass after this one
    refreshing = true;
    try {
      const resp = await fetch(window.location.pathname + window.location.search, { headers: { Accept: "text/html" } });
      if (!resp.ok) return;
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      const next = doc.querySelector("[data-live]");
      if (next) {
        live.replaceChildren(...Array.from(next.childNodes).map(function (n) { return document.importNode(n, true); }));
        for (const t of live.querySelectorAll("table[data-sortable]")) wireSort(t);
      }
    } finally {
      refreshing = false;
      if (again) { again = false; refresh(); }
    }
  }
  if (live && window.EventSource) {
    const liveState = document.querySelector("[data-live-state]");
    const es = new EventSource("/v1/events?dataset=" + encodeURIComponent(ds));
    es.onopen = function () { say(liveState, "Live updates: on"); };
    es.onerror = function () { say(liveState, "Live updates: reconnecting…"); };
    // The stream names each event (event: <CloudEvents type>), and named
    // events do not reach onmessage.
    let seen = 0;
    ["dev.refit.dataset.versioned.v1", "dev.refit.model.promoted.v1"].forEach(function (t) {
      es.addEventListener(t, function () {
        seen++;
        say(liveState, "Live updates: on (" + seen + (seen === 1 ? " event)" : " events)"));
        refresh();
      });
    });
  }

  // Admin actions on the pipeline page (promote a run, roll back): the
  // buttons are re-rendered by refresh, so listen on the container.
  if (live) {
    live.addEventListener("click", async function (ev) {
      const btn = ev.target.closest("button[data-promote], button[data-rollback]");
      if (!btn) return;
      const state = live.querySelector("[data-admin-state]");
      const reason = window.prompt(btn.hasAttribute("data-rollback") ? "Why roll back?" : "Why promote this run?", "");
      if (reason === null) return;
      const body = btn.hasAttribute("data-rollback") ? { rollback: true, reason: reason, actor: "console" }
        : { run_id: btn.dataset.promote, reason: reason, actor: "console" };
      const resp = await fetch("/v1/datasets/" + encodeURIComponent(ds) + "/promotions", {
        method: "POST", headers: authHeaders({ "Content-Type": "application/json" }), body: JSON.stringify(body),
      });
      if (resp.status === 401) { needToken(state); return; }
      if (!resp.ok) { say(state, await errorText(resp), "error"); return; }
      say(state, "done", "ok");
      refresh();
    });
  }

  // Upload: drag and drop or the file input; XHR for upload progress.
  const input = document.querySelector("[data-upload-input]");
  if (input) {
    const drop = document.querySelector("[data-drop]");
    const bar = document.querySelector("[data-upload-progress]");
    const state = document.querySelector("[data-upload-state]");
    input.addEventListener("change", function () { uploadAll(Array.from(input.files)); input.value = ""; });
    drop.addEventListener("dragover", function (ev) { ev.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", function () { drop.classList.remove("over"); });
    drop.addEventListener("drop", function (ev) {
      ev.preventDefault(); drop.classList.remove("over");
      uploadAll(Array.from(ev.dataTransfer.files));
    });
    async function uploadAll(files) {
      for (const f of files) {
        if (!(await uploadOne(f))) return;
      }
      // Ingests announce no event of their own: look again for a while.
      let n = 0;
      const t = setInterval(function () { refresh(); if (++n >= 15) clearInterval(t); }, 2000);
    }
    function uploadOne(file) {
      return new Promise(function (resolve) {
        const name = file.name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[^A-Za-z0-9]+/, "") || "upload.csv";
        const xhr = new XMLHttpRequest();
        xhr.open("POST", "/v1/datasets/" + encodeURIComponent(ds) + "/uploads?name=" + encodeURIComponent(name));
        xhr.setRequestHeader("Content-Type", "text/csv");
        const t = token();
        if (t) xhr.setRequestHeader("Authorization", "Bearer " + t);
        bar.hidden = false; bar.value = 0;
        xhr.upload.onprogress = function (ev) {
          if (ev.lengthComputable) {
            bar.value = Math.round(100 * ev.loaded / ev.total);
            say(state, file.name + ": " + bar.value + "% of " + ev.total + " bytes");
          }
        };
        xhr.onload = function () {
          if (xhr.status === 401) { needToken(state); resolve(false); return; }
          if (xhr.status >= 300) {
            let msg = xhr.statusText;
            try { msg = JSON.parse(xhr.responseText).error || msg; } catch (e) { /* not JSON */ }
            say(state, file.name + ": " + msg, "error"); resolve(false); return;
          }
          bar.value = 100;
          say(state, file.name + ": uploaded; waiting for the pipeline", "ok");
          refresh();
          resolve(true);
        };
        xhr.onerror = function () { say(state, file.name + ": upload failed (network)", "error"); resolve(false); };
        xhr.send(file);
      });
    }
  }
})();
