// The console's compliance pages (surveillance): the alerts queue (GET /v1/surveillance/alerts,
// filtered and paged), one alert (its summary, its evidence, the market around it from GET
// /v1/surveillance/timeline drawn by chart.js, and the book at a picked time from GET
// /v1/surveillance/book), the cases (opened from alerts, assigned, commented, given files, closed,
// exported as a STOR) and the order-to-trade ratios of the day. Reading needs surveillance.read,
// every change cases.write (its buttons are disabled without it).
"use strict";

(function () {
  const { el, table, time, api, page, flash, guarded, can } = window.Console;
  const { draw, clock } = window.MarketChart;
  const NS = "http://www.w3.org/2000/svg";
  const BASE = "/v1/surveillance";
  const TYPES = ["WASH_TRADE", "SPOOFING", "LAYERING", "OTR_BREACH", "AML_VELOCITY", "AML_STRUCTURING", "AML_IN_OUT", "HOT_WALLET_BAND", "RESERVE_SHORTFALL", "DEPOSIT_REORG"];
  const DISPOSITIONS = ["FALSE_POSITIVE", "MONITORED", "ESCALATED", "REPORTED"];
  // The chart opens a bit before and after the alert's window: half its length, 2 s to 30 s.
  const around = (alert) => Math.min(30_000, Math.max(2_000, Math.round((alert.toTime - alert.fromTime) / 2)));
  const NO_RIGHT = "Your roles do not allow this (cases.write).";

  // The id after the page's own in the address: #/alerts/12 -> 12.
  function subId() {
    const match = /^#\/[\w-]+\/([0-9]+)/.exec(location.hash);
    return match ? Number(match[1]) : null;
  }

  function svgNode(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    node.append(...children);
    return node;
  }

  // A score of 0-100 as a small bar.
  function scoreBar(score) {
    const value = Math.max(0, Math.min(100, Number(score) || 0));
    const colour = value >= 80 ? "#b42318" : value >= 50 ? "#dc6803" : "#1f5fbf";
    return el("span", { class: "score", title: `score ${value}` },
      svgNode("svg", { width: 80, height: 10, viewBox: "0 0 100 10", class: "score-bar", "data-score": value },
        svgNode("rect", { x: 0, y: 0, width: 100, height: 10, fill: "#eef0f3" }),
        svgNode("rect", { x: 0, y: 0, width: value, height: 10, fill: colour })),
      ` ${value.toFixed(0)}`);
  }

  function stateTag(text) {
    return el("span", { class: `state ${text}` }, text);
  }

  function windowText(a) {
    return `${time(a.fromTime)} – ${clock(a.toTime)}`;
  }

  function iso(ms) {
    return new Date(ms).toISOString();
  }

  // A datetime-local value read as UTC, in ms ("" when empty or malformed).
  function utcMs(value) {
    if (!value) return "";
    const ms = Date.parse(`${value}Z`);
    return isNaN(ms) ? "" : String(ms);
  }

  function facts(pairs) {
    return el("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  }

  // Decimal strings added exactly (BigInt over a common scale).
  function addDecimals(texts) {
    const places = Math.max(0, ...texts.map((t) => (String(t).split(".")[1] || "").length));
    let total = 0n;
    for (const text of texts) {
      const [whole, frac = ""] = String(text).split(".");
      total += BigInt(whole + frac.padEnd(places, "0"));
    }
    if (!places) return total.toString();
    const digits = total.toString().padStart(places + 1, "0");
    return `${digits.slice(0, -places)}.${digits.slice(-places)}`;
  }

  // ------------------------------------------------------------------------------ the alerts queue
  const FILTERS = [
    ["type", "Type", "select", ["", ...TYPES]],
    ["symbol", "Symbol", "text"],
    ["account", "Account", "text"],
    ["state", "State", "select", ["", "OPEN", "IN_CASE", "CLOSED"]],
    ["from", "From (UTC)", "datetime-local"],
    ["to", "To (UTC)", "datetime-local"],
  ];

  async function alertsQueue(main) {
    const inputs = {};
    const fields = FILTERS.map(([name, label, type, options]) => {
      inputs[name] = type === "select"
        ? el("select", { id: `alerts-${name}`, name }, options.map((o) => el("option", { value: o }, o || "any")))
        : el("input", { id: `alerts-${name}`, name, type, step: type === "datetime-local" ? 1 : undefined });
      return el("label", {}, label, inputs[name]);
    });
    const form = el("form", { class: "filters", id: "alerts-filters" }, fields, el("button", { type: "submit" }, "Filter"));
    const writable = can("cases.write");
    const title = el("input", { id: "case-title", placeholder: "case title", size: 40 });
    const selected = new Set();
    const openCase = el("button", {
      id: "case-open",
      disabled: true,
      title: writable ? "Open a case holding the OPEN alerts ticked below" : NO_RIGHT,
      onclick: () => guarded(async () => {
        const ids = [...selected];
        const made = await api("POST", `${BASE}/cases`, { alertIds: ids, title: title.value.trim() || `Alerts ${ids.join(", ")}` });
        flash(`Case #${made.caseId} opened.`, "ok");
        location.hash = `#/cases/${made.caseId}`;
      }),
    }, "Open a case from the selected alerts");
    const results = el("div", { id: "alerts-results" });
    const stack = [];
    let here = null;

    function path() {
      const params = new URLSearchParams();
      for (const [name, , type] of FILTERS) {
        const raw = inputs[name].value.trim();
        const value = type === "datetime-local" ? utcMs(raw) : raw;
        if (value) params.set(name, value);
      }
      params.set("limit", "50");
      return `${BASE}/alerts?${params}`;
    }

    let asked = 0; // the newest request: an older answer arriving later is dropped
    async function load(url) {
      const mine = ++asked;
      let answer;
      try {
        answer = await api("GET", url);
      } catch (exc) {
        if (mine === asked) {
          results.replaceChildren(el("p", { class: "error", id: "alerts-error" }, exc.message));
        }
        return;
      }
      if (mine !== asked) return;
      here = url;
      selected.clear();
      openCase.disabled = true;
      const pick = (a) => {
        if (a.state !== "OPEN") return "";
        return el("input", {
          type: "checkbox",
          class: "pick",
          "data-alert": a.alertId,
          disabled: !writable,
          onclick: (event) => event.stopPropagation(),
          onchange: (event) => {
            if (event.target.checked) selected.add(a.alertId);
            else selected.delete(a.alertId);
            openCase.disabled = !writable || !selected.size;
          },
        });
      };
      const grid = table(
        [
          ["", pick],
          ["#", (a) => el("a", { href: `#/alerts/${a.alertId}` }, a.alertId), "num"],
          ["Type", (a) => a.type],
          ["Symbol", (a) => a.symbol || "—"],
          ["Accounts", (a) => a.accounts.join(", ")],
          ["Window (UTC)", windowText],
          ["Score", (a) => scoreBar(a.score)],
          ["Count", (a) => a.count, "num"],
          ["State", (a) => stateTag(a.state)],
          ["Case", (a) => (a.caseId ? el("a", { href: `#/cases/${a.caseId}` }, `#${a.caseId}`) : "")],
          ["Summary", (a) => a.summary, "wrap"],
        ],
        answer.alerts,
        "No alert matches."
      );
      [...grid.tBodies[0].rows].forEach((row, i) => {
        const alert = answer.alerts[i];
        if (!alert) return;
        row.classList.add("clickable");
        row.dataset.alert = alert.alertId;
        row.addEventListener("click", (event) => {
          if (event.target.closest("a, input")) return;
          location.hash = `#/alerts/${alert.alertId}`;
        });
      });
      const older = el("button", { class: "plain", id: "alerts-next", disabled: !answer.next, onclick: () => {
        stack.push(here);
        load(answer.next);
      } }, "Next page");
      const newer = el("button", { class: "plain", id: "alerts-previous", disabled: !stack.length, onclick: () => load(stack.pop()) }, "Previous page");
      results.replaceChildren(grid, el("div", { class: "pager" }, newer, older,
        el("span", { class: "muted" }, `${answer.alerts.length} alert${answer.alerts.length === 1 ? "" : "s"} shown, newest updated first`)));
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      stack.length = 0;
      load(path());
    });
    main.append(form, el("div", { class: "row" }, title, openCase), results);
    await load(path());
  }

  // ------------------------------------------------------------------------------ one alert
  function evidenceView(evidence) {
    const box = el("div", { id: "alert-evidence" });
    const scalars = [];
    for (const [key, value] of Object.entries(evidence || {})) {
      if (Array.isArray(value) && value.length && value.every((v) => v && typeof v === "object" && !Array.isArray(v))) {
        const columns = [...new Set(value.flatMap((v) => Object.keys(v)))];
        box.append(el("h3", {}, `${key} (${value.length})`), table(
          columns.map((c) => [c, (row) => {
            const cell = row[c];
            if (/time$/i.test(c) && typeof cell === "number") return time(cell);
            return cell === null || cell === undefined ? "" : typeof cell === "object" ? JSON.stringify(cell) : cell;
          }, typeof value[0][c] === "number" || /^(price|qty|quantity)$/i.test(c) ? "num" : undefined]),
          value
        ));
      } else {
        scalars.push([key, value === null ? "—" : typeof value === "object" ? JSON.stringify(value) : String(value)]);
      }
    }
    if (scalars.length) box.prepend(facts(scalars));
    if (!box.childNodes.length) box.append(el("p", { class: "muted" }, "No evidence."));
    return box;
  }

  // The book at `at` as a ladder: asks above (highest first), bids below, each order with its
  // account; the alert's accounts highlighted.
  function ladder(book, accounts) {
    const mine = new Set(accounts.map(Number));
    const rows = [
      ...book.asks.slice().reverse().map((level) => ({ side: "ask", level })),
      ...book.bids.map((level) => ({ side: "bid", level })),
    ];
    const orders = (level) => el("span", { class: "ladder-orders" }, level.orders.map((o) =>
      el("span", { class: `ladder-order${mine.has(Number(o.account)) ? " mine" : ""}`, title: `order ${o.orderId}${o.clientOrderId ? ` (${o.clientOrderId})` : ""}` },
        `${o.quantity} · acct ${o.account}`)));
    const grid = table(
      [
        ["Bid orders", (r) => (r.side === "bid" ? orders(r.level) : ""), "num"],
        ["Bid qty", (r) => (r.side === "bid" ? addDecimals(r.level.orders.map((o) => o.quantity)) : ""), "num"],
        ["Price", (r) => el("b", {}, r.level.price), "num"],
        ["Ask qty", (r) => (r.side === "ask" ? addDecimals(r.level.orders.map((o) => o.quantity)) : ""), "num"],
        ["Ask orders", (r) => (r.side === "ask" ? orders(r.level) : "")],
      ],
      rows,
      "The book was empty."
    );
    grid.id = "book-ladder";
    grid.classList.add("ladder");
    [...grid.tBodies[0].rows].forEach((row, i) => rows[i] && row.classList.add(rows[i].side));
    return el("div", {},
      el("p", { class: "muted" }, `${book.symbol} as of seq ${book.seq} (${time(book.ts)} UTC), ${book.state}`),
      grid);
  }

  async function alertPage(main, alertId) {
    const alert = await api("GET", `${BASE}/alerts/${alertId}`);
    document.title = `Alert #${alert.alertId} - Venue console`;
    main.replaceChildren(el("p", {}, el("a", { href: "#/alerts" }, "← Alerts")), el("h1", { id: "alert-title" }, `Alert #${alert.alertId}: ${alert.type}${alert.symbol ? ` on ${alert.symbol}` : ""}`));
    const writable = can("cases.write");
    const title = el("input", { id: "alert-case-title", size: 40, value: `${alert.type} ${alert.symbol} ${alert.accounts.join(", ")}`.trim() });
    const actions = alert.state === "OPEN"
      ? el("div", { class: "row" }, title, el("button", {
        id: "alert-open-case",
        disabled: !writable,
        title: writable ? undefined : NO_RIGHT,
        onclick: () => guarded(async () => {
          const made = await api("POST", `${BASE}/cases`, { alertIds: [alert.alertId], title: title.value.trim() || `Alert ${alert.alertId}` });
          flash(`Case #${made.caseId} opened.`, "ok");
          location.hash = `#/cases/${made.caseId}`;
        }),
      }, "Open a case"))
      : alert.caseId ? el("p", {}, "Held by ", el("a", { href: `#/cases/${alert.caseId}`, id: "alert-case" }, `case #${alert.caseId}`)) : "";
    main.append(
      el("p", { class: "big", id: "alert-summary" }, alert.summary),
      facts([
        ["State", stateTag(alert.state)],
        ["Score", scoreBar(alert.score)],
        ["Raised", `${alert.count} time${alert.count === 1 ? "" : "s"}`],
        ["Accounts", alert.accounts.join(", ") || "—"],
        ["Window (UTC)", `${time(alert.fromTime)} – ${time(alert.toTime)}`],
        ["Journal", `seq ${alert.firstSeq} – ${alert.lastSeq}`],
        ["Created", time(alert.createdAt)],
        ["Updated", time(alert.updatedAt)],
      ]),
      actions
    );
    if (alert.symbol) await marketSection(main, alert);
    main.append(el("h2", {}, "Evidence"), evidenceView(alert.evidence));
  }

  async function marketSection(main, alert) {
    const from = alert.fromTime - around(alert);
    const to = alert.toTime + around(alert);
    const chartBox = el("div", { id: "alert-chart", class: "chart" });
    const at = el("input", { id: "book-at", size: 28, placeholder: "2024-01-02T03:04:05.500Z", value: iso(alert.toTime) });
    const bookBox = el("div", { id: "book-box" });
    const showBook = () => guarded(async () => {
      const params = new URLSearchParams({ symbol: alert.symbol, at: at.value.trim(), depth: "10" });
      bookBox.replaceChildren(el("p", { class: "muted" }, "Replaying…"));
      try {
        bookBox.replaceChildren(ladder(await api("GET", `${BASE}/book?${params}`), alert.accounts));
      } catch (exc) {
        bookBox.replaceChildren(el("p", { class: "error", id: "book-error" }, exc.message));
      }
    });
    const bookForm = el("form", { class: "row", id: "book-form" }, el("label", {}, "Book at (a seq, or an ISO time; click the chart to pick one)", at), el("button", { type: "submit", id: "book-show" }, "Book at"));
    bookForm.addEventListener("submit", (event) => {
      event.preventDefault();
      showBook();
    });
    main.append(el("h2", {}, `Market around the alert (${clock(from)} – ${clock(to)} UTC)`), chartBox, bookForm, bookBox);
    const params = new URLSearchParams({ symbol: alert.symbol, from: iso(from), to: iso(to), levels: "5" });
    if (alert.accounts.length) params.set("accounts", alert.accounts.join(","));
    let timeline;
    try {
      try {
        timeline = await api("GET", `${BASE}/timeline?${params}`);
      } catch (exc) {
        // a view opening before the venue's first command: from its start (seq 0)
        if (exc.status !== 400 || !/before the first command/.test(exc.message)) throw exc;
        params.set("from", "0");
        timeline = await api("GET", `${BASE}/timeline?${params}`);
      }
    } catch (exc) {
      chartBox.replaceChildren(el("p", { class: exc.status === 404 ? "muted" : "error", id: "chart-error" },
        exc.status === 404 ? "This venue does not serve the market timeline (GET /v1/surveillance/timeline)." : exc.message));
      return;
    }
    const chart = draw(timeline, {
      viewFrom: from,
      viewTo: to,
      windowFrom: alert.fromTime,
      windowTo: alert.toTime,
      accounts: alert.accounts,
      onPick: (ms) => {
        at.value = iso(ms);
        showBook();
      },
    });
    chartBox.replaceChildren(chart, el("p", { class: "muted" },
      `seq ${timeline.fromSeq} – ${timeline.toSeq}: ${timeline.samples.length} book changes, ${timeline.trades.length} trade${timeline.trades.length === 1 ? "" : "s"}, ${timeline.orders.length} order event${timeline.orders.length === 1 ? "" : "s"} of account${alert.accounts.length === 1 ? "" : "s"} ${alert.accounts.join(", ")}`));
  }

  page({
    id: "alerts",
    title: "Alerts",
    permission: "surveillance.read",
    order: 55,
    async render(main) {
      const id = subId();
      if (id !== null) return alertPage(main, id);
      main.append(el("p", { class: "muted" }, "What the detectors raised, newest updated first. Click an alert to see its evidence and the market around it."));
      return alertsQueue(main);
    },
  });

  // ------------------------------------------------------------------------------ cases
  async function caseList(main) {
    const state = el("select", { id: "cases-state" }, ["OPEN", "CLOSED", ""].map((s) => el("option", { value: s }, s || "all")));
    const box = el("div", { id: "cases" });
    let asked = 0; // the newest request: an older answer arriving later is dropped
    const load = async () => {
      const mine = ++asked;
      let answer;
      try {
        answer = await api("GET", `${BASE}/cases${state.value ? `?state=${state.value}` : ""}`);
      } catch (exc) {
        if (mine === asked) box.replaceChildren(el("p", { class: "error" }, exc.message));
        return;
      }
      if (mine !== asked) return;
      const grid = table(
        [
          ["#", (c) => el("a", { href: `#/cases/${c.caseId}` }, c.caseId), "num"],
          ["Title", (c) => c.title, "wrap"],
          ["State", (c) => stateTag(c.state)],
          ["Assigned to", (c) => c.operator || "—"],
          ["Disposition", (c) => c.disposition || ""],
          ["Alerts", (c) => c.alertIds.length, "num"],
          ["Opened by", (c) => c.createdBy],
          ["Opened", (c) => time(c.createdAt)],
          ["Updated", (c) => time(c.updatedAt)],
        ],
        answer.cases,
        "No case."
      );
      [...grid.tBodies[0].rows].forEach((row, i) => {
        const item = answer.cases[i];
        if (!item) return;
        row.classList.add("clickable");
        row.addEventListener("click", (event) => {
          if (!event.target.closest("a")) location.hash = `#/cases/${item.caseId}`;
        });
      });
      box.replaceChildren(grid);
    };
    state.addEventListener("change", load);
    main.append(el("p", { class: "muted" }, "A case is opened from alerts on the Alerts page."), el("label", { class: "inline" }, "State ", state), box);
    await load();
  }

  function readBase64(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ""));
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  async function casePage(main, caseId) {
    const item = await api("GET", `${BASE}/cases/${caseId}`);
    const path = `${BASE}/cases/${caseId}`;
    document.title = `Case #${caseId} - Venue console`;
    const open = item.state === "OPEN";
    const writable = can("cases.write") && open;
    const why = open ? NO_RIGHT : "The case is closed.";
    const change = (suffix, body, done) => guarded(async () => {
      await api("POST", `${path}/${suffix}`, body);
      flash(done, "ok");
      await casePage(main, caseId);
    });
    const button = (id, label, onclick, cls) => el("button", { id, class: cls, disabled: !writable, title: writable ? undefined : why, onclick, type: "button" }, label);

    const assignee = el("input", { id: "case-operator", placeholder: "operator", value: item.operator || "" });
    const comment = el("textarea", { id: "case-comment", rows: 3, cols: 60, placeholder: "comment" });
    const file = el("input", { id: "case-file", type: "file" });
    const disposition = el("select", { id: "case-disposition" }, DISPOSITIONS.map((d) => el("option", { value: d }, d)));
    const reason = el("input", { id: "case-reason", size: 50, placeholder: "reason" });
    const auditLinks = ["case.open", "case.assign", "case.comment", "case.attach", "case.close", "case.export"].map((action) => {
      const params = new URLSearchParams({ action, from: String(item.createdAt) });
      return el("a", { href: `#/audit?${params}`, class: "audit-link" }, action);
    });

    main.replaceChildren(
      el("p", {}, el("a", { href: "#/cases" }, "← Cases")),
      el("h1", { id: "case-title" }, `Case #${item.caseId}: ${item.title}`),
      facts([
        ["State", el("span", { id: "case-state" }, stateTag(item.state))],
        ["Assigned to", el("span", { id: "case-assignee" }, item.operator || "—")],
        ["Opened", `${time(item.createdAt)} by ${item.createdBy}`],
        ["Disposition", item.disposition ? `${item.disposition}: ${item.reason}` : "—"],
        ["Closed", item.closedAt ? `${time(item.closedAt)} by ${item.closedBy}` : undefined],
      ]),
      el("p", { class: "actions" }, "Report (STOR): ",
        el("a", { id: "stor-json", href: `${path}/stor.json`, download: "" }, "JSON"), " · ",
        el("a", { id: "stor-html", href: `${path}/stor.html`, target: "_blank", rel: "noopener" }, "printable page")),
      el("h2", {}, "Alerts"),
      table(
        [
          ["#", (a) => el("a", { href: `#/alerts/${a.alertId}` }, a.alertId), "num"],
          ["Type", (a) => a.type],
          ["Symbol", (a) => a.symbol || "—"],
          ["Accounts", (a) => a.accounts.join(", ")],
          ["Window (UTC)", windowText],
          ["Score", (a) => scoreBar(a.score)],
          ["State", (a) => stateTag(a.state)],
          ["Summary", (a) => a.summary, "wrap"],
        ],
        item.alerts
      ),
      el("h2", {}, "Work"),
      el("div", { class: "row" }, el("label", {}, "Assign to", assignee),
        button("case-assign", "Assign", () => change("assign", { operator: assignee.value.trim() }, `Case #${caseId} assigned.`))),
      el("div", { class: "row" }, el("label", {}, "Comment", comment),
        button("case-comment-add", "Add comment", () => change("comments", { text: comment.value }, "Comment added."))),
      el("div", { class: "row" }, el("label", {}, "Attach a file (32 KiB at most)", file),
        button("case-attach", "Attach", () => guarded(async () => {
          const chosen = file.files[0];
          if (!chosen) throw new Error("Choose a file first.");
          const data = await readBase64(chosen);
          await change("attachments", { name: chosen.name, contentType: chosen.type || "application/octet-stream", data }, `${chosen.name} attached.`);
        }))),
      el("div", { class: "row" }, el("label", {}, "Disposition", disposition), el("label", {}, "Reason", reason),
        button("case-close", "Close the case", () => change("close", { disposition: disposition.value, reason: reason.value }, `Case #${caseId} closed.`), "danger")),
      el("h2", {}, "Comments"),
      item.comments.length
        ? el("ul", { id: "case-comments", class: "comments" }, item.comments.map((c) => el("li", {}, el("span", { class: "muted" }, `${time(c.time)} ${c.author}: `), c.text)))
        : el("p", { class: "muted", id: "case-comments" }, "No comment yet."),
      el("h2", {}, "Attachments"),
      el("div", { id: "case-attachments" }, table(
        [
          ["Name", (a) => el("a", { href: `${path}/attachments/${a.attachmentId}`, download: a.name }, a.name)],
          ["Type", (a) => a.contentType],
          ["Size", (a) => a.size, "num"],
          ["SHA-256", (a) => el("span", { class: "hash", title: a.sha256 }, a.sha256.slice(0, 16))],
          ["By", (a) => a.author],
          ["Time", (a) => time(a.time)],
        ],
        item.attachments,
        "No attachment."
      )),
      el("h2", {}, "History"),
      (() => {
        const grid = table(
          [
            ["Time (UTC)", (h) => time(h.time)],
            ["Who", (h) => h.actor],
            ["Action", (h) => h.action],
            ["Detail", (h) => h.detail, "wrap"],
          ],
          item.history
        );
        grid.id = "case-history";
        return grid;
      })(),
      can("audit.read") ? el("p", { class: "actions" }, "In the audit trail: ", auditLinks) : ""
    );
  }

  page({
    id: "cases",
    title: "Cases",
    permission: "surveillance.read",
    order: 56,
    async render(main) {
      const id = subId();
      if (id !== null) return casePage(main, id);
      return caseList(main);
    },
  });

  // ------------------------------------------------------------------------------ order-to-trade ratios
  // From GET /v1/surveillance/otr: the running detector's counts of a UTC day, per instrument and
  // account or owner group (RTS 9, both methods), each ratio as a bar against the instrument's
  // maximum. The detector keeps today's and the day before's; older breaches are in the alerts.
  const otrScope = (r) => ("account" in r ? "account" : "owner");
  const otrId = (r) => ("account" in r ? r.account : r.owner);

  function ratioChart(id, rows, ratioOf, maxOf, label) {
    const rowH = 24;
    const left = 230;
    const width = 900;
    const plotW = width - left - 70;
    const values = rows.map((r) => Number(ratioOf(r)) || 0);
    const maxima = rows.map((r) => Number(maxOf(r)) || 0);
    const scale = Math.max(1, ...values, ...maxima.map((m) => m * 1.25));
    const height = rows.length * rowH + 44;
    const chart = svgNode("svg", { id, class: "otr-chart", viewBox: `0 0 ${width} ${height}`, width: "100%", "font-size": 12, "font-family": "system-ui, sans-serif" });
    const xs = (v) => left + (v / scale) * plotW;
    rows.forEach((r, i) => {
      const yy = 20 + i * rowH;
      const over = values[i] > maxima[i];
      chart.append(
        svgNode("text", { x: left - 8, y: yy + 14, "text-anchor": "end", fill: "#1d2330" }, `${otrScope(r)} ${otrId(r)} · ${r.symbol}`),
        svgNode("rect", { x: left, y: yy + 3, width: Math.max(1, xs(values[i]) - left), height: rowH - 8, fill: over ? "#f04438" : "#1f5fbf", class: `otr-bar${over ? " over" : ""}`, "data-ratio": values[i] },
          svgNode("title", {}, `${label} ${ratioOf(r)} (maximum ${maxOf(r)})`)),
        svgNode("text", { x: xs(values[i]) + 5, y: yy + 14, fill: "#1d2330" }, String(ratioOf(r))),
        svgNode("line", { x1: xs(maxima[i]), x2: xs(maxima[i]), y1: yy, y2: yy + rowH, stroke: "#101828", "stroke-width": 2, "stroke-dasharray": "3 2", class: "otr-max" })
      );
    });
    chart.append(svgNode("text", { x: left, y: height - 6, fill: "#667085" }, `${label}; the dashed line is the venue's maximum`));
    return chart;
  }

  page({
    id: "otr",
    title: "Order-to-trade",
    permission: "surveillance.read",
    order: 57,
    async render(main) {
      const first = await api("GET", `${BASE}/otr`);
      const days = [...new Set([first.day, ...first.days])].sort().reverse();
      const day = el("select", { id: "otr-day" }, days.map((d) => el("option", { value: d }, d)));
      day.value = first.day;
      const box = el("div", { id: "otr" });
      const show = (answer) => {
        const rows = answer.rows;
        if (!rows.length) {
          box.replaceChildren(el("p", { class: "muted", id: "otr-none" }, `No order, modification or cancellation counted on ${answer.day}.`));
          return;
        }
        box.replaceChildren(
          el("h2", {}, "Messages per trade"),
          ratioChart("otr-number", rows, (r) => r.numberRatio, (r) => r.maxNumber, "order messages / trades"),
          el("h2", {}, "Order volume per traded volume"),
          ratioChart("otr-volume", rows, (r) => r.volumeRatio, (r) => r.maxVolume, "order volume / traded volume"),
          table(
            [
              ["Scope", (r) => `${otrScope(r)} ${otrId(r)}`],
              ["Symbol", (r) => r.symbol],
              ["Messages", (r) => r.messages, "num"],
              ["Trades", (r) => r.trades, "num"],
              ["Ratio", (r) => r.numberRatio, "num"],
              ["Max", (r) => r.maxNumber, "num"],
              ["Order volume", (r) => r.orderVolume, "num"],
              ["Traded volume", (r) => r.tradedVolume, "num"],
              ["Volume ratio", (r) => r.volumeRatio, "num"],
              ["Max", (r) => r.maxVolume, "num"],
              ["Breached", (r) => (r.breached ? el("a", { href: "#/alerts", class: "otr-breached" }, "yes") : "no")],
            ],
            rows
          )
        );
      };
      day.addEventListener("change", () => guarded(async () => show(await api("GET", `${BASE}/otr?day=${encodeURIComponent(day.value)}`))));
      main.append(el("p", { class: "muted" },
        "The day's order-to-trade ratios of the accounts and owner groups, per instrument, against the venue's maximum (RTS 9), as the detector counts them: today's and the day before's are kept; older breaches are in the OTR_BREACH alerts."));
      main.append(el("label", { class: "inline" }, "Day (UTC) ", day), box);
      show(first);
    },
  });
})();
