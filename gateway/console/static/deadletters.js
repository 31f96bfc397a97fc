// Dead letters on the pipeline page: GET /v1/deadletters and
// POST /v1/deadletters/{id}/replay, both admin. Everything the server sent
// goes in through textContent, never as markup.
(function () {
  "use strict";
  const section = document.querySelector("[data-deadletters]");
  if (!section) return;
  const TOKEN_KEY = "refit-admin-token"; // the key console.js keeps the token under
  const state = section.querySelector("[data-deadletters-state]");
  const table = section.querySelector("[data-deadletters-table]");
  const rows = section.querySelector("[data-deadletters-rows]");

  function headers() {
    const h = { "Content-Type": "application/json" };
    const t = sessionStorage.getItem(TOKEN_KEY) || "";
    if (t) h["Authorization"] = "Bearer " + t;
    return h;
  }
  function say(text, kind) {
    state.textContent = text;
    state.dataset.kind = kind || "";
  }
  async function failed(resp) {
    if (resp.status === 401 || resp.status === 403) return "This needs the admin token: enter it in the header, then try again.";
    try { const b = await resp.json(); if (b && b.error) return b.error; } catch (e) { /* not JSON */ }
    return "HTTP " + resp.status;
  }
  function cell(tr, text) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function render(list) {
    rows.replaceChildren();
    for (const d of list) {
      const tr = document.createElement("tr");
      cell(tr, d.at ? new Date(d.at).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : "—");
      cell(tr, d.topic);
      cell(tr, d.handler);
      cell(tr, d.reason);
      const action = cell(tr, "");
      if (d.replay) {
        action.textContent = "replayed by " + d.replay.actor;
      } else {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = "Replay";
        b.setAttribute("aria-label", "Replay the dead letter on " + d.topic);
        b.addEventListener("click", function () { replay(d.id, b); });
        action.appendChild(b);
      }
      rows.appendChild(tr);
    }
    table.hidden = list.length === 0;
    say(list.length === 0 ? "No dead letters." : list.length + " dead letter(s).");
  }
  async function load() {
    say("Loading…");
    const resp = await fetch("/v1/deadletters", { headers: headers() });
    if (!resp.ok) { say(await failed(resp), "error"); return; }
    const body = await resp.json();
    render(body.dead_letters || []);
  }
  async function replay(id, button) {
    button.disabled = true;
    const resp = await fetch("/v1/deadletters/" + encodeURIComponent(id) + "/replay", { method: "POST", headers: headers() });
    if (!resp.ok) { button.disabled = false; say(await failed(resp), "error"); return; }
    const r = await resp.json();
    await load();
    say(r.already ? "Already replayed, as message " + r.message_id + "." : "Replayed as message " + r.message_id + ".", "ok");
  }
  section.querySelector("[data-deadletters-load]").addEventListener("click", function () {
    load().catch(function (e) { say(String(e), "error"); });
  });
})();
