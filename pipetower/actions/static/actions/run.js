// The run page: live output (a stream, else polling), ANSI colours, load earlier, live badges.
// Our own code, no libraries. Text always goes in with textContent, never innerHTML.
(function () {
  "use strict";
  var configNode = document.getElementById("run-live-config");
  if (!configNode) return;
  var config = JSON.parse(configNode.textContent);
  var MAX_CHUNKS_SHOWN = 2000;
  var revision = config.revision || 0;
  var finished = config.finished;
  var runStatus = config.status;
  var wasRunning = !finished;
  var followed = {};
  var inFlight = null;
  var timer = null;

  // --- ANSI escapes → classes ----------------------------------------------------
  // Escapes as ECMA-48 defines them; only SGR (colours, bold, ...) changes anything,
  // every other escape is skipped, and text is never dropped:
  //   CSI  ESC [ parameters(0-?)* intermediates(space-/)* final(@-~)
  //   OSC and the other strings (DCS P, SOS X, PM ^, APC _): ESC ] ... ended by BEL or
  //        ST (ESC \), on one line (an OSC 8 link's text comes after it, and shows)
  //   nF   ESC intermediates(space-/)+ final(0-~), e.g. ESC ( B
  //   Fe/Fs/Fp  ESC and one byte 0-~ (this also skips the ESC ] of a string that is
  //        never ended; what follows it then shows as text)
  var ESCAPE = /\x1b\[([0-?]*)([ -\/]*)([@-~])|\x1b[\]PX^_][^\x07\x1b\n]*(?:\x07|\x1b\\)|\x1b[ -\/]+[0-~]|\x1b[0-~]/g;
  // An escape cut at the end of a chunk, completed by the next one.
  var PARTIAL = /\x1b(?:\[[0-?]*[ -\/]*|[\]PX^_][^\x07\x1b\n]*\x1b?|[ -\/]*)$/;
  // A string escape longer than this is not waited for: it shows as text.
  var HOLD_MAX = 4096;

  function freshState() { return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false }; }

  function applySgr(state, params) {
    if (!/^[0-9;:]*$/.test(params)) return; // private modes (ESC [ > 4 m, ...): not SGR
    var parts = params === "" ? ["0"] : params.split(";");
    for (var i = 0; i < parts.length; i++) {
      var c = parseInt(parts[i] || "0", 10);
      var sub = parts[i].indexOf(":") >= 0; // 38:2:r:g:b carries its colour in one part
      if (c === 0) { var f = freshState(); for (var k in f) state[k] = f[k]; }
      else if (c === 1) state.bold = true;
      else if (c === 2) state.dim = true;
      else if (c === 3) state.italic = true;
      else if (c === 4) state.underline = true;
      else if (c === 22) { state.bold = false; state.dim = false; }
      else if (c === 23) state.italic = false;
      else if (c === 24) state.underline = false;
      else if ((c >= 30 && c <= 37) || (c >= 90 && c <= 97)) state.fg = c;
      else if (c === 39) state.fg = null;
      else if (c >= 40 && c <= 47) state.bg = c;
      else if (c >= 100 && c <= 107) state.bg = c - 60;
      else if (c === 49) state.bg = null;
      else if ((c === 38 || c === 48 || c === 58) && !sub) { i += parts[i + 1] === "5" ? 2 : parts[i + 1] === "2" ? 4 : 0; }
    }
  }

  function classesOf(state) {
    var names = [];
    if (state.fg) names.push("ansi-fg-" + state.fg);
    if (state.bg) names.push("ansi-bg-" + state.bg);
    if (state.bold) names.push("ansi-bold");
    if (state.dim) names.push("ansi-dim");
    if (state.italic) names.push("ansi-italic");
    if (state.underline) names.push("ansi-underline");
    return names.join(" ");
  }

  // Renders text into `into`, carrying colour state and half-received escapes in `ctx`.
  // A half-received escape is shown (without its ESC) until the next chunk completes
  // it, so output that ends in one, or that only looks like one, is never hidden.
  function renderAnsi(ctx, text, into) {
    if (ctx.heldNode && ctx.heldNode.parentNode) ctx.heldNode.parentNode.removeChild(ctx.heldNode);
    ctx.heldNode = null;
    text = (ctx.held || "") + text;
    ctx.held = "";
    ctx.state = ctx.state || freshState();
    var partial = text.match(PARTIAL);
    if (partial && text.length - partial.index <= HOLD_MAX) {
      ctx.held = partial[0];
      text = text.slice(0, partial.index);
    }
    var last = 0;
    ESCAPE.lastIndex = 0;
    function emit(piece, where) {
      if (!piece) return null;
      var cls = classesOf(ctx.state);
      var node;
      if (cls) {
        node = document.createElement("span");
        node.className = cls;
        node.textContent = piece;
      } else {
        node = document.createTextNode(piece);
      }
      where.appendChild(node);
      return node;
    }
    var m;
    while ((m = ESCAPE.exec(text)) !== null) {
      emit(text.slice(last, m.index), into);
      if (m[3] === "m" && m[2] === "") applySgr(ctx.state, m[1]);
      last = ESCAPE.lastIndex;
    }
    emit(text.slice(last), into);
    if (ctx.held.length > 1) {
      var shown = document.createElement("span");
      shown.className = "ansi-held";
      into.appendChild(shown);
      emit(ctx.held.slice(1), shown);
      ctx.heldNode = shown;
    }
  }

  function chunkNode(ctxByStream, chunk) {
    var wrap = document.createElement("span");
    wrap.className = "chunk stream-" + chunk.stream;
    wrap.setAttribute("data-seq", chunk.seq);
    var ctx = ctxByStream[chunk.stream] || (ctxByStream[chunk.stream] = { state: freshState(), held: "", heldNode: null });
    renderAnsi(ctx, chunk.data, wrap);
    return wrap;
  }

  // --- targets ---------------------------------------------------------------------
  function chunksUrl(tid) { return config.chunks.replace("/targets/0/", "/targets/" + tid + "/"); }

  function getJson(url, signal) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, signal: signal })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); });
  }

  function atBottom(pre) { return pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 24; }

  function append(f, chunks) {
    var stick = atBottom(f.pre);
    chunks.forEach(function (chunk) {
      if (chunk.seq <= f.seq) return; // already shown: no duplicates after a reload or retry
      f.pre.appendChild(chunkNode(f.ctx, chunk));
      f.seq = chunk.seq;
      if (!f.first) f.first = chunk.seq;
    });
    while (f.pre.childElementCount > MAX_CHUNKS_SHOWN) {
      f.pre.removeChild(f.pre.firstElementChild);
      f.first = parseInt(f.pre.firstElementChild.getAttribute("data-seq"), 10);
      f.earlier.hidden = false;
    }
    if (stick) f.pre.scrollTop = f.pre.scrollHeight;
  }

  function openTarget(tid) {
    var section = document.getElementById("output-" + tid);
    var button = document.querySelector('[data-show-output="' + tid + '"]');
    if (!section || followed[tid]) return;
    section.hidden = false;
    if (button) { button.setAttribute("aria-expanded", "true"); button.textContent = "Hide"; }
    var f = { tid: tid, seq: 0, first: 0, pre: section.querySelector("pre"), ctx: {},
              earlier: section.querySelector("[data-load-earlier]"), ready: false };
    followed[tid] = f;
    getJson(chunksUrl(tid)).then(function (body) {
      append(f, body.chunks);
      f.earlier.hidden = !body.more_before;
      f.ready = true;
      f.pre.scrollTop = f.pre.scrollHeight;
      restartPoll();
    }).catch(function () { f.ready = true; restartPoll(); });
    rememberOpen();
  }

  function closeTarget(tid) {
    var section = document.getElementById("output-" + tid);
    var button = document.querySelector('[data-show-output="' + tid + '"]');
    delete followed[tid];
    if (section) { section.hidden = true; section.querySelector("pre").textContent = ""; }
    if (button) { button.setAttribute("aria-expanded", "false"); button.textContent = "Show"; }
    rememberOpen();
  }

  function loadEarlier(tid) {
    var f = followed[tid];
    if (!f || !f.first) return;
    getJson(chunksUrl(tid) + "?before=" + f.first).then(function (body) {
      var height = f.pre.scrollHeight;
      var fragment = document.createDocumentFragment();
      var ctx = {};
      body.chunks.forEach(function (chunk) { fragment.appendChild(chunkNode(ctx, chunk)); });
      f.pre.insertBefore(fragment, f.pre.firstChild);
      if (body.chunks.length) f.first = body.chunks[0].seq;
      f.earlier.hidden = !body.more_before;
      f.pre.scrollTop += f.pre.scrollHeight - height;
    });
  }

  function rememberOpen() {
    var open = Object.keys(followed).join(",");
    history.replaceState(null, "", open ? "#open=" + open : location.pathname + location.search);
  }

  // --- live updates -----------------------------------------------------------------
  function setBadge(container, status, label) {
    var badge = container && container.querySelector(".badge-run");
    if (!badge) return;
    badge.className = "badge badge-run badge-run-" + status;
    badge.setAttribute("data-status", status);
    badge.textContent = label;
  }

  function applyTarget(t) {
    var row = document.getElementById("target-row-" + t.id);
    if (!row) return;
    setBadge(row.querySelector(".t-status"), t.status, t.status_label);
    row.querySelector(".t-exit").textContent = t.exit_code === null ? "—" : String(t.exit_code);
    row.querySelector(".t-duration").textContent = t.duration === null ? "—" : t.duration.toFixed(1) + " s";
    row.querySelector(".t-error").textContent = t.error.length > 300 ? t.error.slice(0, 299) + "…" : t.error;
  }

  function apply(body) {
    revision = body.revision;
    runStatus = body.run.status;
    var label = body.run.status_label || body.run.status.charAt(0).toUpperCase() + body.run.status.slice(1);
    setBadge(document.getElementById("run-status"), body.run.status, label);
    body.targets.forEach(applyTarget);
    applyCounts(body.counts);
    var byTarget = {};
    body.chunks.forEach(function (c) { (byTarget[c.target] = byTarget[c.target] || []).push(c); });
    Object.keys(byTarget).forEach(function (tid) { if (followed[tid]) append(followed[tid], byTarget[tid]); });
    finished = body.run.finished;
    return body;
  }

  function cursor() {
    return Object.keys(followed).filter(function (t) { return followed[t].ready; })
      .map(function (t) { return t + ":" + followed[t].seq; }).join(",");
  }

  // One live path: a Server-Sent Events stream (`?stream=1`) held by the server
  // on its event loop, not on a thread. Each (re)connection names the cursor, so
  // nothing is lost or shown twice. Where streams do not work (a plain WSGI
  // server), the page asks once a second instead.
  var source = null;
  var silentFailures = 0;
  var polling = false;

  function liveUrl(extra) {
    return config.live + "?rev=" + revision + "&after=" + encodeURIComponent(cursor()) + extra;
  }

  function onBody(body) {
    apply(body);
    if (body.run.finished && !body.more.length) {
      stopLive();
      if (wasRunning) {
        // Show the final state with the buttons that now apply (re-run failed, …).
        setTimeout(function () { location.reload(); }, 400);
      }
      return true;
    }
    return false;
  }

  function stopLive() {
    if (source) { source.close(); source = null; }
    if (timer) { clearTimeout(timer); timer = null; }
    if (inFlight) { inFlight.abort(); inFlight = null; }
  }

  function connect() {
    timer = null;
    if (finished) return;
    if (polling || typeof EventSource === "undefined") { poll(); return; }
    var got = false;
    source = new EventSource(liveUrl("&stream=1"));
    source.onmessage = function (event) {
      got = true;
      silentFailures = 0;
      onBody(JSON.parse(event.data));
    };
    source.addEventListener("end", function () { stopLive(); });
    source.onerror = function () {
      if (source) source.close();
      source = null;
      if (!got && ++silentFailures >= 3) polling = true;
      schedule(got ? 0 : 1000);
    };
  }

  function poll() {
    timer = null;
    if (inFlight) inFlight.abort();
    var controller = new AbortController();
    inFlight = controller;
    getJson(liveUrl(""), controller.signal).then(function (body) {
      if (inFlight !== controller) return;
      inFlight = null;
      if (onBody(body)) return;
      schedule(body.more.length ? 0 : (body.retry_ms || 1000));
    }).catch(function (err) {
      if (err && err.name === "AbortError") return;
      inFlight = null;
      schedule(3000);
    });
  }

  function schedule(ms) { if (timer) clearTimeout(timer); timer = setTimeout(connect, ms); }
  // The followed targets changed: reconnect with the new cursor.
  function restartPoll() { if (!finished) { stopLive(); schedule(0); } }

  // The summary line: servers per status, and how long the run has been going.
  var countsNode = document.getElementById("run-counts");
  var elapsedNode = document.getElementById("run-elapsed");
  function applyCounts(counts) {
    if (!countsNode || !counts) return;
    var parts = [String(config.total)];
    Object.keys(counts).forEach(function (status) { parts.push(counts[status] + " " + status); });
    countsNode.textContent = parts.join(" · ");
  }
  function tick() {
    if (!elapsedNode || finished) return;
    var seconds = Math.max(0, (Date.now() - Date.parse(config.created)) / 1000);
    var doing = runStatus === "pending_approval" ? "waiting for approval for " : "running for ";
    elapsedNode.textContent = doing + seconds.toFixed(0) + " s";
    setTimeout(tick, 1000);
  }
  tick();

  document.addEventListener("click", function (event) {
    var show = event.target.closest("[data-show-output]");
    if (show) {
      var tid = show.getAttribute("data-show-output");
      if (followed[tid]) closeTarget(tid); else openTarget(tid);
      return;
    }
    var earlier = event.target.closest("[data-load-earlier]");
    if (earlier) loadEarlier(earlier.getAttribute("data-load-earlier"));
  });

  var rows = document.querySelectorAll("tr[data-target]");
  var wanted = (location.hash.match(/open=([\d,]+)/) || [])[1];
  if (wanted) {
    wanted.split(",").forEach(openTarget);
  } else {
    for (var i = 0; i < rows.length && i < 6; i++) openTarget(rows[i].getAttribute("data-target"));
  }
  if (!finished) schedule(0);
})();
