"use strict";
// rewind share: draws the page from the JSON block above. Everything from the
// recording goes into the DOM as text nodes (textContent), never as markup.
(function () {
  var data = JSON.parse(document.getElementById("rewind-data").textContent);
  var app = document.getElementById("app");
  var session = data.session;
  var timelines = data.timelines;
  var steps = data.steps;
  var current = null;

  // control characters and bidirectional overrides shown as escapes: a recorded name
  // must not reorder what is around it (U+202E makes "exe.txt" read "txt.exe")
  var UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
  function visible(s) {
    return String(s).replace(UNSAFE, function (c) {
      return "\\u" + ("000" + c.charCodeAt(0).toString(16)).slice(-4);
    });
  }

  function h(tag, props) {
    var el = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (k) {
        var v = props[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "class") el.className = v;
        else if (k === "text") el.textContent = visible(v);
        else if (k === "title") el.title = visible(v);
        else if (k === "onclick") el.addEventListener("click", v);
        else if (k.slice(0, 5) === "data-") el.setAttribute(k, String(v));
        else el[k] = v;
      });
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function append(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(el, c); }); return; }
    el.appendChild(typeof child === "object" ? child : document.createTextNode(visible(child)));
  }

  // -- formatting ------------------------------------------------------------
  function int(n) { return (n || 0).toLocaleString("en-US"); }
  function money(c) {
    if (c === null || c === undefined) return "-";
    if (c === 0) return "$0";
    if (c >= 1) return "$" + c.toFixed(2);
    if (c >= 0.01) return "$" + c.toFixed(4);
    return "$" + Number(c.toPrecision(2)).toFixed(Math.min(10, 1 - Math.floor(Math.log10(c))));
  }
  function ms(v) {
    if (v === null || v === undefined) return "-";
    if (v < 1000) return Math.round(v) + " ms";
    return v < 60000 ? (v / 1000).toFixed(2) + " s" : (v / 60000).toFixed(1) + " min";
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function when(ts) {
    if (!ts) return "-";
    var d = new Date(ts * 1000);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  // a span path may wrap after each "/" (a <wbr>, so the text itself is unchanged)
  function breakable(text) {
    return text.split("/").map(function (part, i, all) {
      return i < all.length - 1 ? [part + "/", h("wbr")] : part;
    });
  }
  function badge(status) { return h("span", { "class": "badge " + status, text: status }); }

  function timelineSteps(t) { return t.steps.map(function (i) { return steps[i]; }); }
  function totals(t) {
    var rows = timelineSteps(t);
    var out = { steps: rows.length, errors: 0, input: 0, output: 0, cost: 0, priced: false, latency: 0 };
    rows.forEach(function (s) {
      if (s.status === "error") out.errors++;
      out.input += s.input_tokens; out.output += s.output_tokens; out.latency += s.latency_ms;
      if (s.cost_usd !== null && s.cost_usd !== undefined) { out.cost += s.cost_usd; out.priced = true; }
    });
    return out;
  }

  // -- header ----------------------------------------------------------------
  function card(key, value, sub, bad) {
    return h("div", { "class": "card" + (bad ? " bad" : "") },
      h("div", { "class": "k", text: key }), h("div", { "class": "v", text: value }),
      sub ? h("div", { "class": "s", text: sub }) : null);
  }
  function header(t) {
    var tot = totals(t);
    var ended = t.ended_at || session.ended_at;
    var wall = ended && session.started_at ? ms((ended - session.started_at) * 1000) : "-";
    var meta = h("div", { "class": "meta" },
      h("span", null, "session ", h("b", { "class": "mono", text: session.id })),
      h("span", null, "timeline ", h("b", { text: t.name })),
      session.program ? h("span", null, "program ", h("b", { "class": "mono", text: session.program })) : null,
      h("span", null, "started ", h("b", { text: when(session.started_at) })),
      h("span", null, "exit ", h("b", { text: t.exit_code === null ? "-" : t.exit_code })),
      session.tags.length ? h("span", null, "tags ", h("b", { text: session.tags.join(", ") })) : null,
      session.code_version ? h("span", null, "code ",
        h("b", { "class": "mono", text: session.code_version.commit + (session.code_version.dirty ? " (dirty)" : "") })) : null);
    var privacy = data.include_content
      ? h("div", { "class": "privacy content", text: "This file includes prompts, outputs and tool arguments " +
          "(exported with --include-content): share it only with people allowed to see them." })
      : h("div", { "class": "privacy safe", text: "Content-free export: no prompts, outputs, tool arguments " +
          "or command-line arguments are in this file." });
    var command = data.include_content && session.command
      ? h("div", { "class": "meta mono", text: "$ " + session.command.join(" ") }) : null;
    return h("header", { "class": "top", id: "summary" },
      h("div", { "class": "brand", text: "rewind · shared session" }),
      h("div", { "class": "title-row" }, h("h1", { text: session.name || session.id }), badge(t.status)),
      meta, command,
      h("div", { "class": "cards" },
        card("Steps", int(tot.steps)),
        card("Errors", int(tot.errors), null, tot.errors > 0),
        card("Tokens", int(tot.input + tot.output), "in " + int(tot.input) + " · out " + int(tot.output)),
        card("Cost", tot.priced ? money(tot.cost) : "-"),
        card("Time in calls", ms(tot.latency)),
        card("Wall time", wall)),
      privacy);
  }

  // -- timelines ---------------------------------------------------------------
  function timelineSection(t) {
    var body = h("tbody");
    timelines.forEach(function (tl) {
      var tot = totals(tl);
      body.appendChild(h("tr", {
        "class": (tl.name === t.name ? "selected" : "") + (tl.status === "failed" ? " error" : ""),
        "data-timeline": tl.name, title: "show this timeline",
        onclick: function () { show(tl.name, null); }
      },
        h("td", null, h("b", { text: tl.name })),
        h("td", { "class": "num", text: int(tot.steps) }),
        h("td", { text: tl.fork_point === null ? "original run" : "forked at step-" + tl.fork_point }),
        h("td", null, badge(tl.status)),
        h("td", { "class": "num", text: tl.exit_code === null ? "-" : tl.exit_code }),
        h("td", { "class": "num", text: int(tot.errors) }),
        h("td", { "class": "num", text: int(tot.input + tot.output) }),
        h("td", { "class": "num", text: tot.priced ? money(tot.cost) : "-" })));
    });
    return h("section", { id: "timelines" },
      h("h2", { text: "Timelines (" + timelines.length + ")" }),
      h("div", { "class": "wrap" }, h("table", null,
        h("thead", null, h("tr", null, ["timeline", "steps", "fork point", "status", "exit", "errors", "tokens", "cost"]
          .map(function (c, i) { return h("th", { "class": [1, 4, 5, 6, 7].indexOf(i) >= 0 ? "num" : null, text: c }); }))),
        body)));
  }

  // -- trace tree ---------------------------------------------------------------
  function nodeRow(node, leaf) {
    var kind = node.kind === "span" ? "agent" : node.kind === "tool_call" ? "tool call" : node.kind;
    var isSession = node.kind === "session";
    var stats = node.kind === "tool_call" ? null :
      h("span", { "class": "stats", text: int(node.tokens) + " tok · " + ms(node.latency_ms) + " · " + money(node.cost_usd) });
    return h("div", { "class": "node " + node.kind + (leaf ? " leaf" : "") + (node.status === "error" && !isSession ? " error" : ""),
      "data-step": node.kind !== "tool_call" && node.step !== null ? node.step : null },
      node.step !== null && node.step !== undefined && node.kind !== "tool_call" ? h("span", { "class": "n", text: "#" + node.step }) : null,
      isSession ? null : h("span", { "class": "chip kind-" + node.kind, text: kind }),
      h("span", { "class": "label", text: node.label }),
      node.model ? h("span", { "class": "chip model", text: node.model }) : null,
      stats,
      node.status === "error" && node.error ? h("span", { "class": "errtext", text: node.error }) : null,
      node.status === "error" && (node.kind === "span" || isSession) ? h("span", { "class": "chip errs", text: "errors below" }) : null);
  }
  function treeItem(node) {
    var kids = node.children || [];
    if (!kids.length) return h("li", null, nodeRow(node, true));
    return h("li", null, h("details", { open: true },
      h("summary", null, nodeRow(node, false)),
      h("ul", null, kids.map(treeItem))));
  }
  function treeSection(t) {
    var tree = t.tree;
    var body = tree.children.length ? h("ul", { "class": "tree" }, treeItem(tree))
      : h("p", { "class": "empty", text: "No steps recorded on this timeline." });
    return h("section", { id: "trace" }, h("h2", { text: "Trace" }), body);
  }

  // -- steps table ------------------------------------------------------------------
  function pre(text) { return h("pre", { text: text }); }
  function msgBox(role, text, cls) {
    return h("div", { "class": "msg" + (cls ? " " + cls : "") }, h("div", { "class": "role", text: role }), pre(text));
  }
  function calls(list, role) {
    return list.map(function (c) { return msgBox(role + ": " + c.name, c.arguments || ""); });
  }
  function contentCell(s) {
    var c = s.content;
    var parts = [];
    if (c.path) parts.push(h("div", { "class": "muted mono", text: c.path }));
    if (c.system) parts.push(msgBox("system", c.system));
    c.messages.forEach(function (m) {
      var role = m.role + (m.name ? " (" + m.name + ")" : "") + (m.tool_call_id ? " → " + m.tool_call_id : "");
      if (m.content || !m.tool_calls.length) parts.push(msgBox(role, m.content || ""));
      parts.push(calls(m.tool_calls, m.role + " tool call"));
    });
    if (c.tools.length) parts.push(h("div", { "class": "muted", text: "tools offered: " + c.tools.join(", ") }));
    if (c.params) parts.push(msgBox("parameters", c.params));
    if (c.output_text) parts.push(msgBox("output", c.output_text, "output"));
    parts.push(calls(c.output_tool_calls, "output tool call"));
    if (c.error_message) parts.push(msgBox("error", c.error_message, "err"));
    return parts;
  }
  function stepsSection(t, focus) {
    var rows = timelineSteps(t);
    // the bars span the steps' own window (the program's start-up before the first call is left out)
    var t0 = Infinity, tEnd = -Infinity;
    rows.forEach(function (s) {
      t0 = Math.min(t0, s.started_at);
      tEnd = Math.max(tEnd, s.started_at + s.latency_ms / 1000);
    });
    var span = Math.max(tEnd - t0, 0.001);
    var body = h("tbody");
    var detailRows = [];
    rows.forEach(function (s) {
      var left = Math.max(0, (s.started_at - t0) / span) * 100;
      var width = Math.min(100 - left, (s.latency_ms / 1000) / span * 100);
      var bar = h("div", { "class": "bar", title: ms(s.latency_ms) + " from " + ms((s.started_at - t0) * 1000) });
      bar.style.left = left.toFixed(2) + "%";
      bar.style.width = Math.max(width, 0.3).toFixed(2) + "%";
      var statusText = s.status + (s.http_status ? " " + s.http_status : "");
      var what = [h("div", { text: s.kind === "llm" && !data.include_content ? s.endpoint || s.label : s.label })];
      if (s.tool_calls.length) {
        what.push(h("div", { "class": "muted mono", text: "→ " + s.tool_calls.map(function (c) { return c.label; }).join(", ") }));
      }
      if (s.error) what.push(h("div", { "class": "errtext", text: s.error }));
      var details = null;
      if (s.content) {
        details = h("tr", { "class": "details", hidden: focus !== s.n, "data-details": s.n },
          h("td", { colSpan: 12 }, contentCell(s)));
        detailRows.push(details);
      }
      var toggle = details ? h("button", { "class": "link", text: "content", onclick: function () { details.hidden = !details.hidden; } }) : null;
      body.appendChild(h("tr", {
        "class": "step" + (s.status === "error" ? " error" : "") + (focus === s.n ? " focus" : ""),
        "data-step": s.n, id: "step-" + s.n
      },
        h("td", { "class": "num mono", text: s.n }),
        h("td", { "class": "agent" }, breakable(s.span || "-")),
        h("td", null, h("span", { "class": "chip kind-" + s.kind, text: s.kind })),
        h("td", { "class": "nowrap", text: s.provider }),
        h("td", { "class": "mono nowrap", text: s.model || "-" }),
        h("td", { "class": "call" }, what, toggle),
        h("td", { "class": "status", text: statusText }),
        h("td", { "class": "num", text: int(s.input_tokens) + " / " + int(s.output_tokens) }),
        h("td", { "class": "num", text: ms(s.latency_ms) }),
        h("td", { "class": "num", text: s.ttft_ms === null ? "-" : ms(s.ttft_ms) }),
        h("td", { "class": "num", text: money(s.cost_usd) }),
        h("td", { "class": "bar-cell" }, h("div", { "class": "bar-track" }, bar))));
      if (details) body.appendChild(details);
      if (t.fork_point !== null && s.n === t.fork_point) {
        body.appendChild(h("tr", { "class": "fork-divider" }, h("td", { colSpan: 12,
          text: "timeline " + t.name + " forks here — the steps above are shared with the original run" })));
      }
    });
    var expand = detailRows.length ? h("button", { "class": "link", text: "show all content", onclick: function () {
      var open = detailRows.some(function (r) { return r.hidden; });
      detailRows.forEach(function (r) { r.hidden = !open; });
    } }) : null;
    var table = rows.length ? h("div", { "class": "wrap" }, h("table", null,
      h("thead", null, h("tr", null, ["#", "agent", "kind", "provider", "model", "call", "status", "tokens in / out",
        "latency", "TTFT", "cost", "timing"].map(function (c, i) {
        return h("th", { "class": [0, 7, 8, 9, 10].indexOf(i) >= 0 ? "num" : null, text: c });
      }))), body)) : h("p", { "class": "empty", text: "No steps recorded on this timeline." });
    return h("section", { id: "steps" },
      h("div", { "class": "toolbar" }, h("h2", { text: "Steps (" + rows.length + ")" }), expand), table);
  }

  // -- page ------------------------------------------------------------------
  function show(name, focus) {
    current = timelines.filter(function (t) { return t.name === name; })[0] || timelines[0];
    while (app.firstChild) app.removeChild(app.firstChild);
    app.setAttribute("data-timeline", current.name);
    append(app, [header(current), timelineSection(current), treeSection(current), stepsSection(current, focus),
      h("footer", null, "Generated by " + data.generator + " on " + when(data.generated_at) +
        " · a self-contained file: it makes no network requests.")]);
    document.title = visible("rewind · " + (session.name || session.id) + " · " + current.name);
  }

  show(data.selected.timeline, data.selected.step);
  if (data.selected.step) {
    var row = document.getElementById("step-" + data.selected.step);
    if (row && row.scrollIntoView) row.scrollIntoView({ block: "center" });
  }
  var styled = getComputedStyle(document.documentElement).getPropertyValue("--rw-styled").trim();
  document.documentElement.setAttribute("data-styled", styled || "no");
  document.documentElement.setAttribute("data-rendered", "ok");
})();
