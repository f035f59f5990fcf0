// The market around an alert, drawn as SVG by hand (no library): the book's top levels as bands
// shaded by their quantity, the best bid and ask as step lines, trades as dots sized by quantity,
// and the involved accounts' orders (placed, cancelled, replaced, rejected or expired) as markers,
// over the alert's window; a legend under the plot. `MarketChart.draw(timeline, options)` answers
// the <svg>; clicking the plot picks a time (`options.onPick(ms)`) and draws a cursor there.
// Prices and quantities arrive as decimal strings: they become numbers only to be placed on screen.
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 1100;
  const H = 470;
  const M = { left: 84, right: 18, top: 14, bottom: 96 };
  const PLOT_W = W - M.left - M.right;
  const PLOT_H = H - M.top - M.bottom;
  const MAX_SAMPLES = 1500; // bands drawn at most (a longer timeline draws every k-th sample)
  const COLOURS = {
    bid: "#12b76a",
    ask: "#f04438",
    bestBid: "#067647",
    bestAsk: "#b42318",
    trade: "#98a2b3",
    mine: "#1f5fbf",
    buy: "#1f5fbf",
    sell: "#c11574",
    cancel: "#101828",
    window: "#fdb022",
  };

  // The console's style sheet for these pages, from this origin.
  if (!document.querySelector('link[href="/console/pages/compliance.css"]')) {
    document.head.append(Object.assign(document.createElement("link"), { rel: "stylesheet", href: "/console/pages/compliance.css" }));
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function num(text) {
    if (text === "" || text === null || text === undefined) return NaN;
    const value = Number(text);
    return Number.isFinite(value) ? value : NaN;
  }

  function decimals(text) {
    const dot = String(text).indexOf(".");
    return dot < 0 ? 0 : String(text).length - dot - 1;
  }

  // The least and greatest of `values` (a busy timeline is too long to spread into Math.min).
  function extent(values) {
    let low = Infinity;
    let high = -Infinity;
    for (const v of values) {
      if (!Number.isFinite(v)) continue;
      if (v < low) low = v;
      if (v > high) high = v;
    }
    return [low, high];
  }

  function clock(ms) {
    return new Date(ms).toISOString().slice(11, 23);
  }

  // Round steps for an axis of `span` in about `count` steps: 1, 2 or 5 times a power of ten.
  function step(span, count) {
    const raw = span / Math.max(count, 1);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const unit = raw / power;
    return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
  }

  // The marker of an order event: a triangle placed (up: buy, down: sell), a cross cancelled,
  // a diamond replaced, a hollow square rejected or expired.
  function orderShape(order) {
    const buy = order.side === "BUY";
    switch (order.event) {
      case "NEW":
        return buy ? "M0,-6L6,5L-6,5Z" : "M0,6L6,-5L-6,-5Z";
      case "CANCELLED":
        return "M-5,-5L5,5M-5,5L5,-5";
      case "REPLACED":
        return "M0,-6L6,0L0,6L-6,0Z";
      default:
        return "M-4.5,-4.5H4.5V4.5H-4.5Z";
    }
  }

  function orderPaint(order) {
    const colour = order.side === "BUY" ? COLOURS.buy : COLOURS.sell;
    if (order.event === "CANCELLED") return { stroke: COLOURS.cancel, "stroke-width": 2.2, fill: "none" };
    if (order.event === "NEW") return { fill: colour, stroke: "#fff", "stroke-width": 1 };
    if (order.event === "REPLACED") return { fill: "#fff", stroke: colour, "stroke-width": 2 };
    return { fill: "none", stroke: colour, "stroke-width": 1.6 };
  }

  function draw(timeline, options) {
    const opts = options || {};
    const samples = (timeline.samples || []).slice().sort((a, b) => a.ts - b.ts);
    const trades = timeline.trades || [];
    const orders = timeline.orders || [];
    const mine = new Set((opts.accounts || []).map(Number));

    // -- the extent: time from the view asked for (else the data), price from everything drawn
    const [first, last] = extent([...samples.map((s) => s.ts), ...trades.map((t) => t.ts), ...orders.map((o) => o.ts)]);
    let t0 = Number.isFinite(opts.viewFrom) ? opts.viewFrom : first;
    let t1 = Number.isFinite(opts.viewTo) ? opts.viewTo : last;
    if (!Number.isFinite(t0) || !Number.isFinite(t1)) {
      t0 = Date.now() - 60_000;
      t1 = Date.now();
    }
    if (t1 <= t0) t1 = t0 + 1000;
    const priceTexts = [];
    for (const s of samples) for (const [p] of [...s.bids, ...s.asks]) priceTexts.push(p);
    for (const t of trades) priceTexts.push(t.price);
    for (const o of orders) if (o.price !== null && o.price !== undefined && o.price !== "") priceTexts.push(o.price);
    let [p0, p1] = extent(priceTexts.map(num));
    if (!Number.isFinite(p0)) [p0, p1] = [0, 1];
    const places = Math.min(8, priceTexts.reduce((most, p) => Math.max(most, decimals(p)), 0));
    const pad = (p1 - p0) * 0.06 || Math.max(Math.abs(p1) * 0.001, 1);
    p0 -= pad;
    p1 += pad;
    const x = (ms) => M.left + ((ms - t0) / (t1 - t0)) * PLOT_W;
    const y = (price) => M.top + (1 - (price - p0) / (p1 - p0)) * PLOT_H;
    const clampX = (px) => Math.min(M.left + PLOT_W, Math.max(M.left, px));

    const root = svg("svg", {
      viewBox: `0 0 ${W} ${H}`,
      width: "100%",
      class: "market-chart",
      role: "img",
      "aria-label": `${timeline.symbol || ""} market from ${clock(t0)} to ${clock(t1)} UTC`,
      "font-size": 11,
      "font-family": "system-ui, sans-serif",
    });
    const clip = `clip-${Math.random().toString(36).slice(2)}`;
    root.append(svg("defs", {}, svg("clipPath", { id: clip }, svg("rect", { x: M.left, y: M.top, width: PLOT_W, height: PLOT_H }))));
    const plot = svg("rect", { x: M.left, y: M.top, width: PLOT_W, height: PLOT_H, fill: "#fff", stroke: "#d5d9e0", class: "plot" });
    root.append(plot);
    const layer = svg("g", { "clip-path": `url(#${clip})` });
    root.append(layer);

    // -- the alert's window
    if (Number.isFinite(opts.windowFrom) && Number.isFinite(opts.windowTo)) {
      const wx0 = clampX(x(opts.windowFrom));
      const wx1 = clampX(x(opts.windowTo));
      layer.append(svg("rect", { x: wx0, y: M.top, width: Math.max(wx1 - wx0, 2), height: PLOT_H, fill: COLOURS.window, "fill-opacity": 0.14, class: "alert-window" }));
    }

    // -- grid and axes
    const pStep = step(p1 - p0, 6);
    const axis = svg("g", { class: "axes", fill: "#667085" });
    for (let p = Math.ceil(p0 / pStep) * pStep; p <= p1; p += pStep) {
      axis.append(
        svg("line", { x1: M.left, x2: M.left + PLOT_W, y1: y(p), y2: y(p), stroke: "#eef0f3" }),
        svg("text", { x: M.left - 6, y: y(p) + 4, "text-anchor": "end" }, p.toFixed(places))
      );
    }
    const tStep = step(t1 - t0, 7);
    for (let t = Math.ceil(t0 / tStep) * tStep; t <= t1; t += tStep) {
      axis.append(
        svg("line", { x1: x(t), x2: x(t), y1: M.top, y2: M.top + PLOT_H, stroke: "#eef0f3" }),
        svg("text", { x: x(t), y: M.top + PLOT_H + 15, "text-anchor": "middle" }, clock(t))
      );
    }
    axis.append(svg("text", { x: M.left + PLOT_W, y: M.top + PLOT_H + 30, "text-anchor": "end" }, "time (UTC)"));
    axis.append(svg("text", { x: 12, y: M.top + PLOT_H / 2, transform: `rotate(-90 12 ${M.top + PLOT_H / 2})`, "text-anchor": "middle" }, "price"));
    layer.before(axis);

    // -- the book's top levels: a band per level and sample, as opaque as its quantity is large
    const every = Math.max(1, Math.ceil(samples.length / MAX_SAMPLES));
    const drawn = samples.filter((_, i) => i % every === 0);
    let maxQty = 0;
    for (const s of drawn) for (const [, q] of [...s.bids, ...s.asks]) maxQty = Math.max(maxQty, num(q) || 0);
    let gap = Infinity; // the closest two levels of one sample, for the band's height
    for (const s of drawn.slice(0, 50)) {
      const ps = [...s.bids, ...s.asks].map(([p]) => num(p)).sort((a, b) => a - b);
      for (let i = 1; i < ps.length; i += 1) if (ps[i] > ps[i - 1]) gap = Math.min(gap, Math.abs(y(ps[i]) - y(ps[i - 1])));
    }
    const band = Math.max(2, Math.min(12, Number.isFinite(gap) ? gap * 0.8 : 6));
    const bands = svg("g", { class: "book" });
    drawn.forEach((s, i) => {
      const bx0 = x(s.ts);
      const bx1 = i + 1 < drawn.length ? x(drawn[i + 1].ts) : M.left + PLOT_W;
      for (const [side, levels] of [["bid", s.bids], ["ask", s.asks]]) {
        for (const [price, qty] of levels) {
          const share = maxQty > 0 ? (num(qty) || 0) / maxQty : 0;
          bands.append(svg("rect", {
            x: bx0,
            y: y(num(price)) - band / 2,
            width: Math.max(bx1 - bx0, 0.6),
            height: band,
            fill: COLOURS[side],
            "fill-opacity": (0.08 + 0.55 * share).toFixed(3),
            class: `level ${side}`,
          }));
        }
      }
    });
    layer.append(bands);

    // -- the best bid and ask, as steps
    for (const [side, key] of [["bestBid", "bids"], ["bestAsk", "asks"]]) {
      let d = "";
      let open = false;
      drawn.forEach((s, i) => {
        const top = s[key][0];
        const sx1 = i + 1 < drawn.length ? x(drawn[i + 1].ts) : M.left + PLOT_W;
        if (!top) {
          open = false;
          return;
        }
        const sy = y(num(top[0])).toFixed(1);
        d += `${open ? "V" : "M"}${open ? sy : `${x(s.ts).toFixed(1)},${sy}`}H${sx1.toFixed(1)}`;
        open = true;
      });
      if (d) layer.append(svg("path", { d, fill: "none", stroke: COLOURS[side], "stroke-width": 1.6, class: `best ${side === "bestBid" ? "bid" : "ask"}` }));
    }

    // -- trades: dots sized by quantity; the involved accounts' in the accounts' colour
    const maxTrade = Math.max(0, extent(trades.map((t) => num(t.qty)))[1]);
    const dots = svg("g", { class: "trades" });
    for (const t of trades) {
      const involved = mine.has(Number(t.buyAccount)) || mine.has(Number(t.sellAccount));
      const r = 2.5 + 6 * Math.sqrt(maxTrade > 0 ? (num(t.qty) || 0) / maxTrade : 0);
      dots.append(svg("circle", {
        cx: x(t.ts).toFixed(1),
        cy: y(num(t.price)).toFixed(1),
        r: r.toFixed(1),
        fill: involved ? COLOURS.mine : COLOURS.trade,
        "fill-opacity": 0.85,
        stroke: "#fff",
        "stroke-width": 0.8,
        class: `trade${involved ? " mine" : ""}`,
        "data-seq": t.seq,
      }, svg("title", {}, `trade seq ${t.seq} at ${clock(t.ts)}: ${t.qty} @ ${t.price}, buyer ${t.buyAccount}, seller ${t.sellAccount}, ${t.aggressor} aggressor`)));
    }
    layer.append(dots);

    // -- the involved accounts' orders
    const marks = svg("g", { class: "orders" });
    for (const o of orders) {
      const price = num(o.price);
      if (!Number.isFinite(price)) continue; // a market order has no place on the price axis
      marks.append(svg("path", {
        d: orderShape(o),
        transform: `translate(${x(o.ts).toFixed(1)},${y(price).toFixed(1)})`,
        ...orderPaint(o),
        class: `order ${o.event.toLowerCase()} ${String(o.side).toLowerCase()}`,
        "data-seq": o.seq,
        "data-event": o.event,
      }, svg("title", {}, `${o.event} order ${o.orderId} of account ${o.account} at ${clock(o.ts)} (seq ${o.seq}): ${o.side} ${o.qty} @ ${o.price}`)));
    }
    layer.append(marks);

    // -- the legend
    const legend = svg("g", { class: "legend" });
    const items = [
      [svg("rect", { x: -7, y: -4, width: 14, height: 8, fill: COLOURS.bid, "fill-opacity": 0.45 }), "bid levels (darker: more quantity)"],
      [svg("rect", { x: -7, y: -4, width: 14, height: 8, fill: COLOURS.ask, "fill-opacity": 0.45 }), "ask levels"],
      [svg("path", { d: "M-8,0H8", stroke: COLOURS.bestBid, "stroke-width": 2 }), "best bid"],
      [svg("path", { d: "M-8,0H8", stroke: COLOURS.bestAsk, "stroke-width": 2 }), "best ask"],
      [svg("circle", { r: 4.5, fill: COLOURS.trade }), "trade (size: quantity)"],
      [svg("circle", { r: 4.5, fill: COLOURS.mine }), "trade of an involved account"],
      [svg("path", { d: orderShape({ event: "NEW", side: "BUY" }), ...orderPaint({ event: "NEW", side: "BUY" }) }), "buy order placed"],
      [svg("path", { d: orderShape({ event: "NEW", side: "SELL" }), ...orderPaint({ event: "NEW", side: "SELL" }) }), "sell order placed"],
      [svg("path", { d: orderShape({ event: "CANCELLED" }), ...orderPaint({ event: "CANCELLED" }) }), "order cancelled"],
      [svg("path", { d: orderShape({ event: "REPLACED", side: "BUY" }), ...orderPaint({ event: "REPLACED", side: "BUY" }) }), "order replaced"],
      [svg("path", { d: orderShape({ event: "REJECTED", side: "BUY" }), ...orderPaint({ event: "REJECTED", side: "BUY" }) }), "rejected or expired"],
      [svg("rect", { x: -7, y: -5, width: 14, height: 10, fill: COLOURS.window, "fill-opacity": 0.3 }), "the alert's window"],
    ];
    const perRow = 4;
    const colWidth = PLOT_W / perRow;
    items.forEach(([mark, label], i) => {
      const lx = M.left + 10 + (i % perRow) * colWidth;
      const ly = M.top + PLOT_H + 48 + Math.floor(i / perRow) * 17;
      legend.append(svg("g", { transform: `translate(${lx},${ly})` }, mark, svg("text", { x: 14, y: 4, fill: "#1d2330" }, label)));
    });
    root.append(legend);

    // -- picking a time: a click on the plot
    const cursor = svg("line", { y1: M.top, y2: M.top + PLOT_H, stroke: "#1d2330", "stroke-dasharray": "4 3", visibility: "hidden", class: "cursor" });
    root.append(cursor);
    const pickAt = (ms) => {
      const cx = clampX(x(ms));
      cursor.setAttribute("x1", cx);
      cursor.setAttribute("x2", cx);
      cursor.setAttribute("visibility", "visible");
    };
    root.addEventListener("click", (event) => {
      const matrix = root.getScreenCTM();
      if (!matrix) return;
      const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
      if (point.x < M.left || point.x > M.left + PLOT_W || point.y < M.top || point.y > M.top + PLOT_H) return;
      const ms = Math.round(t0 + ((point.x - M.left) / PLOT_W) * (t1 - t0));
      pickAt(ms);
      if (opts.onPick) opts.onPick(ms);
    });
    root.pickAt = pickAt;
    return root;
  }

  window.MarketChart = { draw, clock };
})();
