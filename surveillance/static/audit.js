// The console's audit trail page (surveillance): GET /v1/audit, filtered and paged, and the
// CSV export (GET /v1/audit.csv, recorded in the chain as an export).
"use strict";

(function () {
  const { el, table, time, api, page } = window.Console;
  const FILTERS = [
    ["actor", "Operator / principal", "text"],
    ["account", "Account", "text"],
    ["action", "Action", "text"],
    ["from", "From (UTC)", "datetime-local"],
    ["to", "To (UTC)", "datetime-local"],
  ];

  // A datetime-local value read as UTC, in ms since the epoch ("" when empty or malformed).
  function utcMs(value) {
    if (!value) return "";
    const ms = Date.parse(`${value}Z`);
    return isNaN(ms) ? "" : String(ms);
  }

  // ms since the epoch as a datetime-local value in UTC ("" when malformed).
  function localUtc(ms) {
    const d = new Date(Number(ms));
    return /^[0-9]{1,19}$/.test(ms) && !isNaN(d) ? d.toISOString().slice(0, 19) : "";
  }

  // Filters given in the address (#/audit?action=case.close&from=<ms>), as other pages link here.
  function prefill(inputs) {
    const at = location.hash.indexOf("?");
    if (at < 0) return;
    const given = new URLSearchParams(location.hash.slice(at + 1));
    for (const [name, , type] of FILTERS) {
      const value = given.get(name);
      if (value !== null) inputs[name].value = type === "datetime-local" ? localUtc(value) : value;
    }
  }

  function query(inputs, before) {
    const params = new URLSearchParams();
    for (const [name, , type] of FILTERS) {
      const raw = inputs[name].value.trim();
      const value = type === "datetime-local" ? utcMs(raw) : raw;
      if (value) params.set(name, value);
    }
    if (before) params.set("before", String(before));
    return params;
  }

  page({
    id: "audit",
    title: "Audit trail",
    permission: "audit.read",
    order: 60,
    async render(main) {
      const inputs = {};
      const fields = FILTERS.map(([name, label, type]) => {
        inputs[name] = el("input", { id: `audit-${name}`, name, type, step: type === "datetime-local" ? 1 : undefined });
        return el("label", {}, label, inputs[name]);
      });
      const exportLink = el("a", { id: "audit-export", href: "/v1/audit.csv", download: "" }, "Export CSV");
      const form = el("form", { class: "filters", id: "audit-filters" }, fields, el("button", { type: "submit" }, "Filter"), exportLink);
      const results = el("div", { id: "audit-results" });
      const stack = []; // cursors of the pages before this one
      let cursor = null;

      let asked = 0; // the newest request: an older answer arriving later is dropped
      async function load(before) {
        const mine = ++asked;
        const params = query(inputs, before);
        const exported = query(inputs, null);
        exportLink.href = `/v1/audit.csv${exported.toString() ? `?${exported}` : ""}`;
        let answer;
        try {
          answer = await api("GET", `/v1/audit?${params}`);
        } catch (exc) {
          if (mine === asked) {
            results.replaceChildren(el("p", { class: "error", id: "audit-error" }, exc.message));
          }
          return;
        }
        if (mine !== asked) return;
        cursor = before;
        const rows = answer.entries;
        const older = el("button", { class: "plain", id: "audit-older", disabled: answer.next === null, onclick: () => {
          stack.push(cursor);
          load(answer.next);
        } }, "Older");
        const newer = el("button", { class: "plain", id: "audit-newer", disabled: !stack.length, onclick: () => load(stack.pop()) }, "Newer");
        results.replaceChildren(
          table(
            [
              ["#", (r) => r.n, "num"],
              ["Time (UTC)", (r) => time(r.timeMs)],
              ["Door", (r) => r.door],
              ["Actor", (r) => r.actor],
              ["Action", (r) => r.action],
              ["Subject", (r) => r.subject],
              ["Detail", (r) => (r.detail.length > 80 ? el("span", { title: r.detail }, `${r.detail.slice(0, 79)}…`) : r.detail), "wrap"],
              ["From", (r) => r.ip],
              ["Outcome", (r) => r.outcome],
              ["Seq", (r) => r.seq, "num"],
              ["Hash", (r) => el("span", { class: "hash", title: r.hash }, r.hash.slice(0, 12))],
            ],
            rows,
            "No entry matches."
          ),
          el("div", { class: "pager" }, newer, older, el("span", { class: "muted" }, `${rows.length} ${rows.length === 1 ? "entry" : "entries"} shown, newest first`))
        );
      }

      form.addEventListener("submit", (event) => {
        event.preventDefault();
        stack.length = 0;
        load(null);
      });
      prefill(inputs);
      main.append(form, results);
      await load(null);
    },
  });
})();
