// The console's treasury pages (custody): the wallets (#/treasury: each asset's hot wallet,
// deposit addresses, payouts in flight and on-chain total against what participants hold, and a
// chart of the hot wallet's share against its band), the withdrawals (#/treasury/withdrawals: the
// open queue and the recent ones; one awaiting approvers approved or rejected here through the
// approvals endpoints) and the deposits and sweeps (#/treasury/deposits). Every view refreshes
// itself every few seconds while it is shown; an older answer arriving after a newer request is
// dropped. Amounts arrive as decimal strings and are shown as they arrive.
"use strict";

(function () {
  const { el, table, time, api, page, flash, guarded, can } = window.Console;
  const NS = "http://www.w3.org/2000/svg";
  const BASE = "/v1/custody";
  const EVERY_MS = 3000;
  const TABS = [
    ["", "Wallets"],
    ["withdrawals", "Withdrawals"],
    ["deposits", "Deposits and sweeps"],
  ];
  const NO_APPROVER = "Your roles do not allow this (approvals.approve).";

  // The view after the page's own in the address: #/treasury/withdrawals -> "withdrawals".
  function view() {
    const match = /^#\/treasury\/([\w-]+)/.exec(location.hash);
    return match ? match[1] : "";
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function negative(text) {
    return /^\s*-/.test(String(text)) && /[1-9]/.test(String(text));
  }

  // What a row of the withdrawal pipeline is: a participant's withdrawal, or the venue's own
  // money moving between its wallets.
  const KINDS = {
    user: "withdrawal",
    cold: "hot to cold",
    refill: "cold to hot",
    gas: "gas for a token sweep",
  };

  function stateTag(text, kind) {
    return el("span", { class: `state ${kind}-${String(text).toLowerCase()}` }, text);
  }

  // Calls `load()` now and every EVERY_MS while `box` is on the page (not while `paused()`),
  // drawing only the newest request's answer with `draw(answer)`; `fail(exc)` shows an error.
  function refreshing(box, load, draw, fail, paused) {
    let asked = 0; // the newest request: an older answer arriving later is dropped
    const stamp = el("span", { class: "muted treasury-updated" });
    const run = async () => {
      const mine = ++asked;
      let answer;
      try {
        answer = await load();
      } catch (exc) {
        if (mine === asked && box.isConnected) fail(exc);
        return;
      }
      if (mine !== asked || !box.isConnected) return;
      draw(answer);
      stamp.textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC, every ${EVERY_MS / 1000} s`;
    };
    const timer = setInterval(() => {
      if (!box.isConnected) clearInterval(timer);
      else if (!(paused && paused())) run();
    }, EVERY_MS);
    return { run, stamp };
  }

  function failed(box) {
    return (exc) =>
      box.replaceChildren(el("p", { class: exc.status === 404 ? "muted" : "error" },
        exc.status === 404 ? "This venue keeps no custody (no [custody] in its configuration)." : exc.message));
  }

  // ------------------------------------------------------------------------------------ wallets
  const W = 760;
  const ROW = 30;
  const M = { left: 70, right: 60, top: 10, bottom: 46 };

  // Each asset's hot share (hot / on chain) as a bar over its band [low, high] shaded.
  function hotChart(wallets) {
    const plotW = W - M.left - M.right;
    const plotH = Math.max(1, wallets.length) * ROW;
    const H = M.top + plotH + M.bottom;
    const x = (pct) => M.left + (Math.max(0, Math.min(100, pct)) / 100) * plotW;
    const root = svg("svg", {
      viewBox: `0 0 ${W} ${H}`, width: W, class: "hot-chart", role: "img",
      "aria-label": "each asset's hot wallet share against its band",
      "font-size": 11, "font-family": "system-ui, sans-serif",
    });
    root.append(svg("rect", { x: M.left, y: M.top, width: plotW, height: plotH, fill: "#fff", stroke: "#d5d9e0" }));
    for (let pct = 0; pct <= 100; pct += 10) {
      root.append(
        svg("line", { x1: x(pct), x2: x(pct), y1: M.top, y2: M.top + plotH, stroke: "#eef0f3" }),
        svg("text", { x: x(pct), y: M.top + plotH + 14, "text-anchor": "middle", fill: "#667085" }, `${pct}%`)
      );
    }
    wallets.forEach((w, i) => {
      const cy = M.top + i * ROW + ROW / 2;
      const [low, high] = w.hotBand || [0, 100];
      const pct = Number(w.hotPercent) || 0;
      const where = pct > high ? "above" : pct < low ? "below" : "within";
      root.append(
        svg("text", { x: M.left - 8, y: cy + 4, "text-anchor": "end", fill: "#1d2330", "font-weight": 600 }, w.asset),
        svg("rect", {
          x: x(low), y: cy - ROW / 2 + 3, width: Math.max(x(high) - x(low), 1.5), height: ROW - 6,
          fill: "#12b76a", "fill-opacity": 0.18, stroke: "#12b76a", "stroke-opacity": 0.5,
          class: "hot-band", "data-asset": w.asset, "data-low": low, "data-high": high,
        }, svg("title", {}, `${w.asset}: band ${low}% to ${high}% of on-chain holdings`)),
        svg("rect", {
          x: M.left, y: cy - 5, width: Math.max(x(pct) - M.left, pct > 0 ? 1.5 : 0), height: 10,
          fill: where === "within" ? "#1f5fbf" : "#b42318",
          class: `hot-bar ${where}`, "data-asset": w.asset, "data-percent": pct,
        }, svg("title", {}, `${w.asset}: hot ${w.hot} of ${w.onChain} on chain (${pct}%), ${where} the band`)),
        svg("text", { x: x(pct) + 5, y: cy + 4, fill: where === "within" ? "#1d2330" : "#b42318" }, `${pct}%`)
      );
    });
    const ly = M.top + plotH + 34;
    root.append(
      svg("rect", { x: M.left, y: ly - 8, width: 14, height: 10, fill: "#12b76a", "fill-opacity": 0.25 }),
      svg("text", { x: M.left + 20, y: ly, fill: "#1d2330" }, "the asset's band"),
      svg("rect", { x: M.left + 150, y: ly - 7, width: 14, height: 8, fill: "#1f5fbf" }),
      svg("text", { x: M.left + 170, y: ly, fill: "#1d2330" }, "hot wallet's share of on chain, within the band"),
      svg("rect", { x: M.left + 450, y: ly - 7, width: 14, height: 8, fill: "#b42318" }),
      svg("text", { x: M.left + 470, y: ly, fill: "#1d2330" }, "outside it")
    );
    return root;
  }

  function surplus(w) {
    const short = negative(w.surplus);
    return el("span", {
      class: `surplus ${short ? "short" : "ok"}`,
      "data-asset": w.asset,
      title: short ? "On chain is below what participants hold: a shortfall." : "On chain covers what participants hold.",
    }, w.surplus);
  }

  // What the venue's books say each wallet holds (movements recorded once confirmed), marked
  // when it differs from the chain: a move in flight, or something to look into.
  function books(w) {
    const b = w.book || {};
    const same = ["hot", "deposits", "cold"].every((k) => Number(b[k]) === Number(w[k]));
    return el("span", { class: `books ${same ? "same" : "differs"}`, title: same ? "as on chain" : "differs from the chain" },
      `${b.hot ?? "-"} / ${b.deposits ?? "-"} / ${b.cold ?? "-"}`);
  }

  function wallets(main) {
    const box = el("div", { id: "treasury-wallets" });
    const draw = (answer) => {
      const rows = answer.wallets || [];
      box.replaceChildren(
        table(
          [
            ["Asset", (w) => w.asset],
            ["Chain", (w) => w.chain],
            ["Hot wallet", (w) => w.hot, "num"],
            ["Deposit addresses", (w) => w.deposits, "num"],
            ["Cold wallet", (w) => w.cold, "num"],
            ["In flight", (w) => w.inFlight, "num"],
            ["On chain", (w) => w.onChain, "num"],
            ["Liabilities", (w) => w.liabilities, "num"],
            ["Surplus", surplus, "num"],
            ["Hot share", (w) => `${w.hotPercent}% (band ${(w.hotBand || []).join(" to ")}%)`, "num"],
            ["In the books (hot / deposits / cold)", books, "num"],
          ],
          rows,
          "Custody holds no asset."
        ),
        el("h2", {}, "Hot wallet against its band"),
        el("div", { class: "hot-chart-box", id: "treasury-hot-chart" }, hotChart(rows))
      );
      [...box.querySelectorAll("tbody tr")].forEach((tr, i) => rows[i] && (tr.dataset.asset = rows[i].asset));
    };
    const { run, stamp } = refreshing(box, () => api("GET", `${BASE}/wallets`), draw, failed(box));
    main.append(
      el("p", { class: "muted" }, "On chain: the hot wallet, the deposit addresses not yet swept, the cold wallet and the payouts in flight. Liabilities: what participants hold in the venue. In the books: what the venue recorded of each wallet, from confirmed movements. ",
        stamp, " ", el("button", { class: "plain", id: "treasury-refresh", onclick: run }, "Refresh")),
      box
    );
    return run();
  }

  // -------------------------------------------------------------------------------- withdrawals
  function withdrawals(main) {
    const box = el("div", { id: "treasury-withdrawals" });
    const approver = can("approvals.approve");
    let deciding = 0; // a form open for a decision: the refresh waits (it would clear the input)
    const load = async () => {
      const [open, recent, pending] = await Promise.all([
        api("GET", `${BASE}/withdrawals?status=open`),
        api("GET", `${BASE}/withdrawals?limit=100`),
        api("GET", "/v1/approvals?status=PENDING").catch(() => ({ approvals: [] })),
      ]);
      return { open: open.withdrawals || [], recent: recent.withdrawals || [], pending: pending.approvals || [] };
    };

    const draw = (answer) => {
      deciding = 0; // the forms open go with the rows drawn again
      const approvals = new Map(answer.pending.map((a) => [String(a.approvalId), a]));
      const approval = (r) => {
        if (!r.approval) return "";
        const item = approvals.get(String(r.approval));
        return el("a", { href: `#/approvals/${r.approval}`, class: "approval-link" },
          `#${r.approval}`, item ? ` (${(item.approvals || []).length}/${item.required})` : "");
      };
      const decide = (r) => {
        const item = approvals.get(String(r.approval));
        if (r.state !== "awaiting_approval" || !item) return "";
        const session = window.Console.session();
        const mine = Boolean(session && session.operator === item.requester);
        const cell = el("span", { class: "actions" });
        const reset = () => {
          deciding = Math.max(0, deciding - 1);
          cell.replaceChildren(...buttons());
        };
        const ask = (kind) => {
          deciding += 1;
          const input = kind === "approve"
            ? el("input", { id: `approve-code-${r.id}`, inputmode: "numeric", maxlength: 6, pattern: "[0-9]{6}", placeholder: "TOTP code", class: "code", autocomplete: "one-time-code" })
            : el("input", { id: `reject-reason-${r.id}`, placeholder: "reason", size: 24 });
          const send = () => guarded(async () => {
            if (kind === "approve") {
              const done = await api("POST", `/v1/approvals/${item.approvalId}/approve`, { code: input.value.trim() });
              const row = done.result && done.result.withdrawal;
              flash(row && row.state
                ? `Withdrawal ${r.id} approved (approval #${item.approvalId}): ${row.state}.`
                : `Approved #${item.approvalId}: ${done.approval.approvals.length} of ${done.approval.required}.`, "ok");
            } else {
              await api("POST", `/v1/approvals/${item.approvalId}/reject`, { reason: input.value.trim() });
              flash(`Withdrawal ${r.id} rejected (approval #${item.approvalId}); its hold is released.`, "ok");
            }
          }).finally(() => {
            reset();
            refresh();
          });
          input.addEventListener("keydown", (event) => event.key === "Enter" && send());
          cell.replaceChildren(
            input,
            el("button", { id: `${kind}-confirm-${r.id}`, class: kind === "reject" ? "danger" : undefined, onclick: send },
              kind === "approve" ? "Confirm approval" : "Confirm rejection"),
            el("button", { class: "plain", onclick: reset }, "Cancel")
          );
          input.focus();
        };
        const buttons = () => [
          el("button", {
            "data-approve": r.id,
            disabled: !approver || mine,
            title: mine ? "Someone else must approve your own request." : approver ? "Asks for your TOTP code" : NO_APPROVER,
            onclick: () => ask("approve"),
          }, "Approve"),
          el("button", {
            "data-reject": r.id,
            class: "danger",
            disabled: !approver,
            title: approver ? "Asks for a reason" : NO_APPROVER,
            onclick: () => ask("reject"),
          }, "Reject"),
        ];
        cell.append(...buttons());
        return cell;
      };
      const columns = (withActions) => [
        ["#", (r) => r.id, "num"],
        ["Kind", (r) => el("span", { class: `kind kind-${r.kind || "user"}` }, KINDS[r.kind || "user"] || r.kind)],
        ["Requested (UTC)", (r) => r.applyTime],
        ["Account", (r) => r.account, "num"],
        ["Asset", (r) => r.coin],
        ["Amount", (r) => r.amount, "num"],
        ["Fee", (r) => r.transactionFee, "num"],
        ["To", (r) => el("code", {}, r.address), "wrap"],
        ["State", (r) => stateTag(r.state, "w")],
        ["Tx", (r) => (r.txId ? el("code", { title: r.txId }, `${r.txId.slice(0, 14)}…`) : "")],
        ["Approval", approval],
        ["Why", (r) => r.info || "", "wrap"],
        ...(withActions ? [["", decide]] : []),
      ];
      const mark = (grid, rows) => {
        [...grid.tBodies[0].rows].forEach((tr, i) => rows[i] && (tr.dataset.withdrawal = rows[i].id));
        return grid;
      };
      box.replaceChildren(
        el("h2", {}, `Queue (${answer.open.length} open)`),
        mark(table(columns(true), answer.open, "Nothing waits."), answer.open),
        el("h2", {}, "Recent"),
        el("div", { id: "treasury-recent" }, mark(table(columns(false), answer.recent, "No withdrawal yet."), answer.recent))
      );
      box.querySelector("table").id = "treasury-queue";
    };
    const { run: refresh, stamp } = refreshing(box, load, draw, failed(box), () => deciding > 0);
    main.append(
      el("p", { class: "muted" }, "Open: requested, held, awaiting approval, queued or batched. A withdrawal above its asset's threshold, to an address too recently whitelisted, or from a flagged account waits for approvers. The venue's own moves go through the same queue (account 0): the hot wallet's excess to cold, a refill from cold (approvers), ether for a token sweep's gas. ", stamp),
      box
    );
    return refresh();
  }

  // ------------------------------------------------------------------------- deposits and sweeps
  function deposits(main) {
    const box = el("div", { id: "treasury-deposits" });
    const account = el("input", { id: "deposits-account", inputmode: "numeric", placeholder: "every account", size: 14 });
    const form = el("form", { class: "filters", id: "deposits-filters" }, el("label", {}, "Account", account), el("button", { type: "submit" }, "Show"));
    const load = async () => {
      const who = account.value.trim();
      const query = /^[0-9]{1,20}$/.test(who) ? `?account=${who}&limit=200` : "?limit=200";
      const [found, swept] = await Promise.all([api("GET", `${BASE}/deposits${query}`), api("GET", `${BASE}/sweeps?limit=50`)]);
      return { deposits: (found.deposits || []).slice().reverse(), sweeps: swept.sweeps || [] };
    };
    const draw = (answer) => {
      const confirmations = (d) =>
        d.confirmations !== undefined ? `${d.confirmations}/${d.required}` : d.height === null ? "unconfirmed" : `block ${d.height}`;
      const grid = table(
        [
          ["Seen (UTC)", (d) => time(d.seenTime)],
          ["Account", (d) => d.account, "num"],
          ["Asset", (d) => d.asset],
          ["Amount", (d) => d.amount, "num"],
          ["Confirmations", confirmations, "num"],
          ["Status", (d) => stateTag(d.status, "d")],
          ["Tx", (d) => el("code", { title: d.txid }, `${d.txid}:${d.index}`), "wrap"],
          ["Address", (d) => el("code", {}, d.address), "wrap"],
          ["Credit seq", (d) => d.creditedSeq || "", "num"],
        ],
        answer.deposits,
        "No deposit."
      );
      grid.id = "deposits-table";
      [...grid.tBodies[0].rows].forEach((tr, i) => answer.deposits[i] && (tr.dataset.ref = answer.deposits[i].ref));
      const sweeps = table(
        [
          ["#", (s) => s.id, "num"],
          ["Created (UTC)", (s) => time(s.created_ms)],
          ["Chain", (s) => s.chain],
          ["Asset", (s) => s.asset],
          ["From", (s) => (s.source === "*" ? "several addresses" : el("code", {}, s.source)), "wrap"],
          ["Moved (chain units)", (s) => s.amount_chain, "num"],
          ["Fee (chain units)", (s) => s.fee_chain, "num"],
          ["Status", (s) => stateTag(s.status, "s")],
          ["Tx", (s) => (s.txid ? el("code", { title: s.txid }, `${s.txid.slice(0, 14)}…`) : "")],
        ],
        answer.sweeps,
        "No sweep yet."
      );
      sweeps.id = "sweeps-table";
      box.replaceChildren(el("h2", {}, "Deposits, newest first"), grid, el("h2", {}, "Sweeps into the hot wallets"), sweeps);
    };
    const { run, stamp } = refreshing(box, load, draw, failed(box));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      run();
    });
    main.append(form, el("p", { class: "muted" }, stamp), box);
    return run();
  }

  page({
    id: "treasury",
    title: "Treasury",
    permission: "read",
    order: 35,
    async render(main) {
      const here = view();
      main.append(el("nav", { class: "tabs", id: "treasury-tabs" },
        TABS.map(([id, title]) => el("a", { href: id ? `#/treasury/${id}` : "#/treasury", class: id === here ? "here" : undefined }, title))));
      if (here === "withdrawals") await withdrawals(main);
      else if (here === "deposits") await deposits(main);
      else await wallets(main);
    },
  });
})();
