// The staff console: pages drawn from the admin API's JSON, fetched from this origin with the
// session cookie. No library: `el` builds elements (text is always set as text, never as HTML),
// `Console.page` registers a page, `Console.api` calls the API and throws the API's message.
"use strict";

(function () {
  const pages = [];
  const state = {
    session: null, // {operator, roles, expiresAt}; roles null: the API asks for no login
    permissions: {}, // role -> [permission], from /console/roles.json
    started: false,
  };

  // -- elements ------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "class") node.className = value;
      else if (value === true) node.setAttribute(key, "");
      else node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // A table whose columns line up: `columns` are [title, row => cell, class?] (class "num"
  // right-aligns); an empty `rows` shows `empty`.
  function table(columns, rows, empty) {
    const head = el("tr", {}, columns.map(([title, , cls]) => el("th", { class: cls }, title)));
    const body = rows.length
      ? rows.map((row) =>
          el("tr", {}, columns.map(([, cell, cls]) => el("td", { class: cls }, cell(row))))
        )
      : [el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, empty || "None."))];
    return el("table", { class: "grid" }, el("thead", {}, head), el("tbody", {}, body));
  }

  function time(ms) {
    if (ms === null || ms === undefined) return "";
    const d = new Date(ms);
    return isNaN(d) ? String(ms) : d.toISOString().replace("T", " ").replace("Z", "");
  }

  // -- messages ------------------------------------------------------------------------------
  let flashTimer = null;
  let flashPage = null; // a message stays with the page it was shown on
  function flash(text, kind) {
    flashPage = current();
    const box = document.getElementById("flash");
    box.textContent = text;
    box.className = kind || "info";
    box.hidden = false;
    clearTimeout(flashTimer);
    if (kind !== "error") flashTimer = setTimeout(() => (box.hidden = true), 8000);
  }

  // -- the API ------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, msg) {
      super(msg);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    // never the browser's cache: it would also hold a request back until an earlier one to the
    // same address is answered
    const options = { method, credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (exc) {
      throw new ApiError(0, null, `The venue cannot be reached (${exc.message}).`);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (exc) {
      data = null;
    }
    if (!response.ok) {
      const msg = data && typeof data.msg === "string" ? data.msg : `${response.status} ${response.statusText}`;
      const error = new ApiError(response.status, data ? data.code : null, msg);
      if (response.status === 401 && path !== "/v1/session") {
        state.session = null;
        showLogin("Your session has ended: sign in again.");
      }
      throw error;
    }
    return data;
  }

  // What a command's answer says: the rejection's reason if an event refused it.
  function outcome(answer, done) {
    if (answer && answer.approvalId !== undefined && answer.status === "PENDING") {
      flash(`Held for approval #${answer.approvalId}: ${answer.summary}. An approver confirms it on the Approvals page.`, "info");
      return false;
    }
    const refused = (answer.events || []).find((e) => /Rejected$/.test(e.type));
    if (refused) {
      flash(`Refused: ${refused.reason || refused.type}${refused.text ? ` (${refused.text})` : ""}`, "error");
      return false;
    }
    flash(`${done} (seq ${answer.seq}).`, "ok");
    return true;
  }

  // Run `fn`, showing an API error as a message rather than throwing.
  async function guarded(fn) {
    try {
      return await fn();
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 401) return undefined;
      flash(exc instanceof ApiError ? `${exc.message}${exc.code ? ` (code ${exc.code})` : ""}` : String(exc), "error");
      return undefined;
    }
  }

  // -- permissions -----------------------------------------------------------------------------
  function can(permission) {
    if (!permission) return true;
    const session = state.session;
    if (!session) return false;
    if (session.roles === null) return true; // no login on this venue
    return session.roles.some((role) => (state.permissions[role] || []).includes(permission));
  }

  // -- pages -------------------------------------------------------------------------------------
  // A page: {id, title, permission (what its data needs), order, render(main) (may be async)}.
  function page(definition) {
    pages.push(definition);
    pages.sort((a, b) => (a.order || 100) - (b.order || 100));
    if (state.started && state.session) {
      drawNav();
      if (current() === definition.id) route();
    }
  }

  function current() {
    const match = /^#\/([\w-]+)/.exec(location.hash);
    return match ? match[1] : "";
  }

  function drawNav() {
    const nav = document.getElementById("nav");
    const here = current();
    nav.replaceChildren(
      ...pages
        .filter((p) => can(p.permission))
        .map((p) => el("a", { href: `#/${p.id}`, class: p.id === here ? "here" : undefined }, p.title))
    );
    const who = document.getElementById("who");
    const session = state.session;
    if (!session) {
      who.replaceChildren();
      return;
    }
    const roles = session.roles === null ? "no login required" : session.roles.join(", ");
    who.replaceChildren(
      el("span", { id: "operator" }, session.operator),
      el("span", { class: "muted" }, ` (${roles}) `),
      session.roles === null ? "" : el("button", { id: "logout", onclick: logout }, "Sign out")
    );
  }

  async function route() {
    const main = document.getElementById("main");
    if (flashPage !== current()) document.getElementById("flash").hidden = true;
    if (!state.session) return showLogin();
    const visible = pages.filter((p) => can(p.permission));
    let target = visible.find((p) => p.id === current());
    if (!target) {
      if (visible.length && current() !== visible[0].id) {
        location.hash = `#/${visible[0].id}`; // route() runs again on hashchange
        return;
      }
      main.replaceChildren(el("p", {}, "No page here for your roles."));
      drawNav();
      return;
    }
    drawNav();
    document.title = `${target.title} - Venue console`;
    main.replaceChildren(el("h1", {}, target.title));
    try {
      await target.render(main);
    } catch (exc) {
      if (!(exc instanceof ApiError && exc.status === 401)) {
        main.append(el("p", { class: "error" }, exc.message || String(exc)));
      }
    }
  }

  // -- login ---------------------------------------------------------------------------------------
  function showLogin(message) {
    drawNav();
    document.title = "Sign in - Venue console";
    const main = document.getElementById("main");
    const note = el("p", { class: "error", id: "login-error" }, message || "");
    const name = el("input", { id: "login-name", name: "name", autocomplete: "username", required: true });
    const password = el("input", {
      id: "login-password",
      name: "password",
      type: "password",
      autocomplete: "current-password",
      required: true,
    });
    const code = el("input", {
      id: "login-code",
      name: "code",
      inputmode: "numeric",
      autocomplete: "one-time-code",
      pattern: "[0-9]{6}",
      maxlength: 6,
      required: true,
    });
    const first = el(
      "form",
      { id: "login-form", class: "card" },
      el("label", {}, "Operator", name),
      el("label", {}, "Password", password),
      el("button", { type: "submit" }, "Next")
    );
    const second = el(
      "form",
      { id: "code-form", class: "card", hidden: true },
      el("p", {}, "The 6-digit code your authenticator app shows now:"),
      el("label", {}, "Code", code),
      el("button", { type: "submit" }, "Sign in"),
      el("button", { type: "button", class: "plain", onclick: () => {
        second.hidden = true;
        first.hidden = false;
        code.value = "";
      } }, "Back")
    );
    first.addEventListener("submit", (event) => {
      event.preventDefault();
      first.hidden = true;
      second.hidden = false;
      note.textContent = "";
      code.focus();
    });
    second.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        state.session = await api("POST", "/v1/session", {
          name: name.value,
          password: password.value,
          code: code.value,
        });
      } catch (exc) {
        password.value = "";
        code.value = "";
        second.hidden = true;
        first.hidden = false;
        note.textContent = exc.message || "Login failed.";
        return;
      }
      password.value = "";
      document.getElementById("flash").hidden = true;
      route();
    });
    main.replaceChildren(el("h1", {}, "Sign in"), note, first, second);
    name.focus();
  }

  async function logout() {
    await guarded(() => api("DELETE", "/v1/session"));
    state.session = null;
    flash("Signed out.", "info");
    showLogin();
  }

  async function start() {
    try {
      const roles = await fetch("/console/roles.json", { credentials: "same-origin" });
      if (roles.ok) state.permissions = await roles.json();
    } catch (exc) {
      state.permissions = {};
    }
    try {
      state.session = await api("GET", "/v1/session");
    } catch (exc) {
      if (exc.status === 404) state.session = { operator: "operator", roles: null, expiresAt: null };
      else state.session = null;
    }
    state.started = true;
    window.addEventListener("hashchange", route);
    route();
  }

  // -- the console's own pages ---------------------------------------------------------------------
  const INSTRUMENT_STATES = [
    ["OPEN", "Resume", "Trading resumed"],
    ["CANCEL_ONLY", "Cancel only", "Cancel only"],
    ["HALTED", "Halt", "Halted"],
  ];

  page({
    id: "instruments",
    title: "Instruments",
    permission: "read",
    order: 10,
    async render(main) {
      const status = await api("GET", "/v1/status");
      const writable = can("instruments.write");
      const rows = Object.entries(status.instruments || {}).map(([symbol, st]) => ({ symbol, state: st }));
      const setState = (symbol, next, done) =>
        guarded(async () => {
          const answer = await api("POST", `/v1/instruments/${encodeURIComponent(symbol)}/state`, { state: next });
          if (outcome(answer, `${symbol}: ${done}`)) route();
        });
      main.append(
        el("p", { class: "muted" }, `Venue ${status.state}, last seq ${status.lastSeq}, ${status.restingOrders} resting orders` +
          (status.killSwitch ? "; the kill switch is ON" : "")),
        table(
          [
            ["Symbol", (r) => r.symbol],
            ["State", (r) => el("span", { class: `state ${r.state}`, "data-symbol": r.symbol }, r.state)],
            ["", (r) =>
              el("span", { class: "actions" }, INSTRUMENT_STATES.map(([s, label, done]) =>
                el("button", {
                  "data-action": `${s}:${r.symbol}`,
                  class: s === "HALTED" ? "danger" : undefined,
                  disabled: !writable || s === r.state,
                  title: writable ? undefined : "Your roles do not allow this (instruments.write).",
                  onclick: () => setState(r.symbol, s, done),
                }, label)
              )),
            ],
          ],
          rows,
          "No instruments."
        )
      );
    },
  });

  page({
    id: "kill-switch",
    title: "Kill switch",
    permission: "read",
    order: 20,
    async render(main) {
      const status = await api("GET", "/v1/status");
      const writable = can("killswitch.write");
      const on = Boolean(status.killSwitch);
      const cancel = el("input", { type: "checkbox", id: "kill-cancel", checked: true });
      const confirmRow = el("p", { hidden: true, class: "confirm" });
      const send = (active) =>
        guarded(async () => {
          const answer = await api("POST", "/v1/kill-switch", { active, cancelOrders: cancel.checked });
          if (outcome(answer, active ? "Kill switch ON: new orders are refused" : "Kill switch off")) route();
        });
      confirmRow.append(
        on ? "Release the kill switch and accept orders again?" : "Refuse every new order on every instrument?",
        " ",
        el("button", { class: on ? undefined : "danger", id: "kill-confirm", onclick: () => send(!on) }, "Yes"),
        " ",
        el("button", { class: "plain", onclick: () => (confirmRow.hidden = true) }, "No")
      );
      main.append(
        el("p", { class: on ? "big danger-text" : "big" }, on ? "ON: new orders and replaces are refused." : "Off: the venue accepts orders."),
        on ? "" : el("label", { class: "inline" }, cancel, " also cancel every open order"),
        el("p", {}, el("button", {
          id: "kill-toggle",
          class: on ? undefined : "danger",
          disabled: !writable,
          title: writable ? undefined : "Your roles do not allow this (killswitch.write).",
          onclick: () => (confirmRow.hidden = false),
        }, on ? "Release the kill switch" : "Activate the kill switch")),
        confirmRow
      );
    },
  });

  function accountForm(onLookup, value) {
    const input = el("input", { id: "account-id", name: "account", inputmode: "numeric", value: value || "", placeholder: "account number" });
    const form = el("form", { class: "row" }, el("label", {}, "Account ", input), el("button", { type: "submit" }, "Show"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      onLookup(input.value.trim());
    });
    return form;
  }

  page({
    id: "accounts",
    title: "Accounts",
    permission: "read",
    order: 30,
    async render(main) {
      const shown = el("div", { id: "account" });
      const lookup = (account) => {
        if (!/^[0-9]{1,20}$/.test(account)) {
          flash("An account is a number.", "error");
          return;
        }
        history.replaceState(null, "", `#/accounts/${account}`);
        showAccount(shown, account);
      };
      const match = /^#\/accounts\/([0-9]+)/.exec(location.hash);
      main.append(accountForm(lookup, match ? match[1] : ""), shown);
      if (match) await showAccount(shown, match[1]);
    },
  });

  async function showAccount(box, account) {
    const path = `/v1/accounts/${account}`;
    box.replaceChildren(el("h2", {}, `Account ${account}`));
    const accountsWrite = can("accounts.write");
    const keysWrite = can("apikeys.write");
    const noRight = (what) => `Your roles do not allow this (${what}).`;
    const refresh = () => showAccount(box, account);

    // state, KYC tier, balances (a venue that keeps balances only)
    let balances = null;
    try {
      balances = await api("GET", `${path}/balances`);
    } catch (exc) {
      if (exc.status !== 404) box.append(el("p", { class: "error" }, exc.message));
    }
    if (balances) {
      box.append(
        el("dl", { class: "facts" },
          el("dt", {}, "State"), el("dd", { id: "account-state" }, balances.state),
          balances.kycTier !== undefined ? [el("dt", {}, "KYC tier"), el("dd", { id: "account-kyc" }, String(balances.kycTier))] : []
        ),
        table(
          [
            ["Asset", (r) => r.asset],
            ["Total", (r) => r.total, "num"],
            ["Locked", (r) => r.locked, "num"],
            ["Free", (r) => r.free, "num"],
          ],
          balances.balances,
          "No balance."
        )
      );
      const stateSelect = el("select", { name: "state" }, ["ACTIVE", "FROZEN", "CLOSED"].map((s) => el("option", { value: s, selected: s === balances.state }, s)));
      const stateForm = el("form", { class: "row" }, el("label", {}, "State ", stateSelect),
        el("button", { type: "submit", disabled: !accountsWrite, title: accountsWrite ? undefined : noRight("accounts.write") }, "Set state"));
      stateForm.addEventListener("submit", (event) => {
        event.preventDefault();
        guarded(async () => {
          if (outcome(await api("POST", `${path}/state`, { state: stateSelect.value }), `Account ${account}: ${stateSelect.value}`)) refresh();
        });
      });
      const schedule = el("input", { name: "schedule", placeholder: "default" });
      const feeForm = el("form", { class: "row" }, el("label", {}, "Fee schedule ", schedule),
        el("button", { type: "submit", disabled: !accountsWrite, title: accountsWrite ? undefined : noRight("accounts.write") }, "Set schedule"));
      feeForm.addEventListener("submit", (event) => {
        event.preventDefault();
        guarded(async () => {
          outcome(await api("POST", `${path}/fee-schedule`, { schedule: schedule.value.trim() }), `Account ${account}: fee schedule ${schedule.value.trim() || "default"}`);
        });
      });
      box.append(stateForm, feeForm);
      if (balances.kycTier !== undefined) {
        const tier = el("select", { name: "tier", id: "kyc-tier" }, ["0", "1", "2", "3", "INSTITUTIONAL"].map((t) => el("option", { value: t, selected: t === String(balances.kycTier) }, t)));
        const kycForm = el("form", { class: "row" }, el("label", {}, "KYC tier ", tier),
          el("button", { type: "submit", id: "kyc-set", disabled: !accountsWrite, title: accountsWrite ? undefined : noRight("accounts.write") }, "Set tier"));
        kycForm.addEventListener("submit", (event) => {
          event.preventDefault();
          guarded(async () => {
            if (outcome(await api("POST", `${path}/kyc`, { tier: tier.value }), `Account ${account}: KYC tier ${tier.value}`)) refresh();
          });
        });
        box.append(kycForm);
      }
    }

    // owner group (self-trade prevention)
    const owner = el("input", { name: "owner", inputmode: "numeric", placeholder: account });
    const ownerForm = el("form", { class: "row" }, el("label", {}, "Owner group ", owner),
      el("button", { type: "submit", disabled: !accountsWrite, title: accountsWrite ? undefined : noRight("accounts.write") }, "Set owner"));
    ownerForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = owner.value.trim() || account;
      guarded(async () => {
        outcome(await api("POST", path, { owner: value }), `Account ${account}: owner group ${value}`);
      });
    });
    box.append(ownerForm);

    // open orders
    const orders = await guarded(() => api("GET", `${path}/orders`));
    if (orders) {
      box.append(
        el("h3", {}, "Open orders"),
        table(
          [
            ["Order", (r) => r.orderId, "num"],
            ["Symbol", (r) => r.symbol],
            ["Side", (r) => r.side],
            ["Type", (r) => r.type],
            ["Price", (r) => r.price, "num"],
            ["Quantity", (r) => r.origQty, "num"],
            ["Filled", (r) => r.executedQty, "num"],
            ["Status", (r) => r.status],
          ],
          orders.orders,
          "No open order."
        )
      );
    }

    // API keys
    const keys = await guarded(() => api("GET", `${path}/api-keys`));
    if (keys) {
      const list = keys.keys || keys.apiKeys || (Array.isArray(keys) ? keys : []);
      const revoke = (key) =>
        guarded(async () => {
          await api("DELETE", `${path}/api-keys/${encodeURIComponent(key.apiKey)}`);
          flash(`Key ${key.apiKey.slice(0, 12)}... revoked.`, "ok");
          refresh();
        });
      box.append(
        el("h3", {}, "API keys"),
        table(
          [
            ["Key", (r) => el("code", {}, r.apiKey)],
            ["Type", (r) => r.type],
            ["Permissions", (r) => (r.permissions || []).join(", ")],
            ["Label", (r) => r.label],
            ["IP allowlist", (r) => (r.ipAllowlist || []).join(", ") || "any"],
            ["Created", (r) => time(r.created)],
            ["By", (r) => r.createdBy],
            ["", (r) =>
              r.revoked
                ? `revoked ${time(r.revoked)}`
                : el("button", { class: "danger", disabled: !keysWrite, title: keysWrite ? undefined : noRight("apikeys.write"), onclick: () => revoke(r) }, "Revoke")],
          ],
          list,
          "No API key."
        )
      );
    }
  }

  page({
    id: "operators",
    title: "Operators",
    permission: "read",
    order: 40,
    async render(main) {
      let answer;
      try {
        answer = await api("GET", "/v1/operators");
      } catch (exc) {
        if (exc.status === 404) {
          main.append(el("p", { class: "muted" }, "This venue does not list operators here (use venue operator on its host)."));
          return;
        }
        throw exc;
      }
      const writable = can("operators.write");
      const change = (r, disabled) =>
        guarded(async () => {
          await api("POST", `/v1/operators/${encodeURIComponent(r.name)}`, { disabled });
          flash(`Operator ${r.name} ${disabled ? "disabled: their sessions end" : "enabled"}.`, "ok");
          route();
        });
      main.append(
        table(
          [
            ["Name", (r) => r.name],
            ["Roles", (r) => (r.roles || []).join(", ")],
            ["IP allowlist", (r) => (r.ipAllowlist || []).join(", ") || "any"],
            ["State", (r) => (r.disabled ? "disabled" : r.lockedUntilMs && r.lockedUntilMs > Date.now() ? `locked until ${time(r.lockedUntilMs)}` : "active")],
            ["Created", (r) => time(r.createdMs)],
            ["By", (r) => r.createdBy],
            ["", (r) =>
              el("button", {
                class: r.disabled ? undefined : "danger",
                disabled: !writable || (state.session && r.name === state.session.operator),
                title: writable ? undefined : "Your roles do not allow this (operators.write).",
                onclick: () => change(r, !r.disabled),
              }, r.disabled ? "Enable" : "Disable")],
          ],
          answer.operators || [],
          "No operator."
        ),
        el("p", { class: "muted" }, "Operators are added, and their password or TOTP reset, with venue operator on the venue's host.")
      );
    },
  });

  page({
    id: "approvals",
    title: "Approvals",
    permission: "read",
    order: 50,
    async render(main) {
      const status = el("select", { id: "approvals-status" }, ["PENDING", "APPROVED", "EXECUTED", "REJECTED", "FAILED", ""].map((s) =>
        el("option", { value: s }, s || "all")));
      const box = el("div", { id: "approvals" });
      const approver = can("approvals.approve");
      const load = async () => {
        const query = status.value ? `?status=${status.value}` : "";
        let answer;
        try {
          answer = await api("GET", `/v1/approvals${query}`);
        } catch (exc) {
          box.replaceChildren(el("p", { class: exc.status === 404 ? "muted" : "error" }, exc.status === 404 ? "This venue asks for no approvals." : exc.message));
          return;
        }
        const decide = (item) => {
          const code = el("input", { inputmode: "numeric", maxlength: 6, pattern: "[0-9]{6}", placeholder: "TOTP code", class: "code" });
          const reason = el("input", { placeholder: "reason" });
          const mine = state.session && item.requester === state.session.operator;
          const approve = el("button", {
            disabled: !approver || mine,
            title: mine ? "Someone else must approve your own request." : approver ? undefined : "Your roles do not allow this (approvals.approve).",
            onclick: () => guarded(async () => {
              const done = await api("POST", `/v1/approvals/${item.approvalId}/approve`, { code: code.value.trim() });
              if (done.result) outcome(done.result, `Approval #${item.approvalId} executed`);
              else flash(`Approved #${item.approvalId}: ${done.approval.approvals.length} of ${done.approval.required}.`, "ok");
              load();
            }),
          }, "Approve");
          const reject = el("button", {
            class: "danger",
            disabled: !approver,
            title: approver ? undefined : "Your roles do not allow this (approvals.approve).",
            onclick: () => guarded(async () => {
              await api("POST", `/v1/approvals/${item.approvalId}/reject`, { reason: reason.value.trim() });
              flash(`Approval #${item.approvalId} rejected.`, "ok");
              load();
            }),
          }, "Reject");
          return el("span", { class: "actions" }, code, approve, reason, reject);
        };
        const shown = answer.approvals || [];
        const grid = table(
          [
            ["#", (r) => r.approvalId, "num"],
            ["Requested", (r) => time(r.createdMs)],
            ["By", (r) => r.requester],
            ["What", (r) => r.summary, "wrap"],
            ["Approvals", (r) => `${(r.approvals || []).map((a) => a.operator).join(", ") || "none"} (${(r.approvals || []).length}/${r.required})`],
            ["Status", (r) => r.status],
            ["", (r) => (r.status === "PENDING" ? decide(r) : r.closedBy ? `${r.closedBy} ${time(r.closedMs)}` : "")],
          ],
          shown,
          "No approval."
        );
        // #/approvals/12 (a link from another page): that approval's row stands out
        const wanted = /^#\/approvals\/([0-9]+)/.exec(location.hash);
        [...grid.tBodies[0].rows].forEach((tr, i) => {
          if (!shown[i]) return;
          tr.dataset.approval = shown[i].approvalId;
          if (wanted && String(shown[i].approvalId) === wanted[1]) tr.classList.add("here");
        });
        box.replaceChildren(grid);
      };
      status.addEventListener("change", load);
      main.append(
        el("p", { class: "muted" }, "Lifting the kill switch, large balance adjustments and withdrawals held by custody's policy wait here for a second person."),
        el("label", { class: "inline" }, "Status ", status),
        box
      );
      await load();
    },
  });

  const session = () => state.session;
  window.Console = { page, api, el, table, time, flash, guarded, outcome, can, session, ApiError };
  document.addEventListener("DOMContentLoaded", start);
})();
