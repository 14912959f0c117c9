/* kefu chat widget: one <script> tag, no dependencies.
 *   <script src="https://your-kefu/widget.js" data-store="default" data-key="PUBLIC_KEY"
 *           data-locale="es-MX" data-country="MX" defer></script>
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = new URL(script.src, location.href).origin;
  var cfg = {
    store: script.getAttribute("data-store") || null,
    key: script.getAttribute("data-key") || "",
    locale: script.getAttribute("data-locale") || navigator.language || null,
    country: script.getAttribute("data-country") || null,
  };
  var RTL = ["ar", "he", "fa", "ur"];
  var storageKey = "kefu-session-" + (cfg.store || "default");
  var sessionId = null;
  try { sessionId = localStorage.getItem(storageKey); } catch (e) { /* private mode */ }
  var lastSeen = 0;
  var polling = null;

  var css = [
    ".kefu-bubble{position:fixed;bottom:20px;right:20px;width:56px;height:56px;border-radius:50%;",
    "background:#0b6e4f;color:#fff;border:none;font-size:26px;cursor:pointer;z-index:2147483000;",
    "box-shadow:0 4px 12px rgba(0,0,0,.25)}",
    ".kefu-bubble:focus{outline:3px solid #f4b400}",
    ".kefu-panel{position:fixed;bottom:88px;right:20px;width:360px;max-width:calc(100vw - 40px);",
    "height:520px;max-height:calc(100vh - 120px);background:#fff;border-radius:12px;display:none;",
    "flex-direction:column;box-shadow:0 8px 24px rgba(0,0,0,.25);z-index:2147483000;",
    "font:14px/1.4 system-ui,sans-serif;color:#1d1d1d}",
    ".kefu-panel.open{display:flex}",
    ".kefu-head{background:#0b6e4f;color:#fff;padding:12px 14px;border-radius:12px 12px 0 0;",
    "display:flex;justify-content:space-between;align-items:center}",
    ".kefu-head button{background:none;border:none;color:#fff;font-size:18px;cursor:pointer}",
    ".kefu-log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px}",
    ".kefu-msg{padding:8px 10px;border-radius:10px;max-width:85%;white-space:pre-wrap;",
    "word-wrap:break-word}",
    ".kefu-user{align-self:flex-end;background:#e3f2ec}",
    ".kefu-bot{align-self:flex-start;background:#f3f3f3}",
    ".kefu-agent{align-self:flex-start;background:#fff4d6}",
    ".kefu-msg[dir=rtl]{text-align:right}",
    ".kefu-sources{font-size:12px;margin-top:6px;color:#555}",
    ".kefu-sources a{color:#0b6e4f;margin-right:8px}",
    ".kefu-handoff{background:#fff4d6;color:#6b4e00;padding:6px 12px;font-size:13px;display:none}",
    ".kefu-handoff.on{display:block}",
    ".kefu-form{display:flex;border-top:1px solid #ddd}",
    ".kefu-form textarea{flex:1;border:none;padding:10px;resize:none;font:inherit;height:44px}",
    ".kefu-form button{background:#0b6e4f;color:#fff;border:none;padding:0 16px;cursor:pointer}",
    ".kefu-form button:disabled{opacity:.5}",
  ].join("");
  var style = document.createElement("style");
  style.textContent = css;
  document.head.appendChild(style);

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  var bubble = el("button", "kefu-bubble", "💬");
  bubble.setAttribute("aria-label", "Open chat");
  bubble.setAttribute("aria-expanded", "false");
  var panel = el("div", "kefu-panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", "Customer service chat");
  var lang = (cfg.locale || "").split("-")[0];
  if (RTL.indexOf(lang) >= 0) panel.setAttribute("dir", "rtl");
  var head = el("div", "kefu-head");
  head.appendChild(el("strong", null, "Customer service"));
  var close = el("button", null, "×");
  close.setAttribute("aria-label", "Close chat");
  head.appendChild(close);
  var handoff = el("div", "kefu-handoff");
  handoff.setAttribute("role", "status");
  var log = el("div", "kefu-log");
  log.setAttribute("aria-live", "polite");
  var form = el("form", "kefu-form");
  var input = el("textarea");
  input.setAttribute("aria-label", "Your message");
  input.setAttribute("maxlength", "2000");
  var send = el("button", null, "➤");
  send.type = "submit";
  send.setAttribute("aria-label", "Send");
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(head);
  panel.appendChild(handoff);
  panel.appendChild(log);
  panel.appendChild(form);
  document.body.appendChild(bubble);
  document.body.appendChild(panel);

  function toggle(open) {
    panel.classList.toggle("open", open);
    bubble.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) input.focus(); else bubble.focus();
  }
  bubble.addEventListener("click", function () { toggle(!panel.classList.contains("open")); });
  close.addEventListener("click", function () { toggle(false); });
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") toggle(false); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });

  function add(role, text, language) {
    var m = el("div", "kefu-msg kefu-" + role, text);
    if (language && RTL.indexOf(language) >= 0) m.setAttribute("dir", "rtl");
    else if (language) m.setAttribute("dir", "auto");
    log.appendChild(m);
    log.scrollTop = log.scrollHeight;
    return m;
  }

  function headers() {
    var h = { "Content-Type": "application/json", "Accept": "text/event-stream" };
    if (cfg.key) h["X-Kefu-Key"] = cfg.key;
    return h;
  }

  function showSources(node, sources) {
    if (!sources || !sources.length) return;
    var box = el("div", "kefu-sources");
    sources.forEach(function (s) {
      var a = el("a", null, s.title);
      a.href = base + "/v1/documents/" + encodeURIComponent(s.doc_id) +
        (cfg.store ? "?store=" + encodeURIComponent(cfg.store) : "");
      a.target = "_blank";
      a.rel = "noopener";
      box.appendChild(a);
    });
    node.appendChild(box);
  }

  function setHandoff(on, text) {
    handoff.classList.toggle("on", !!on);
    handoff.textContent = on ? (text || "A member of our team will reply here.") : "";
    if (on && !polling) polling = setInterval(poll, 5000);
    if (!on && polling) { clearInterval(polling); polling = null; }
  }

  function poll() {
    if (!sessionId) return;
    var url = base + "/v1/sessions/" + encodeURIComponent(sessionId) +
      (cfg.store ? "?store=" + encodeURIComponent(cfg.store) : "");
    fetch(url, { headers: cfg.key ? { "X-Kefu-Key": cfg.key } : {} })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        var agentTurns = data.turns.filter(function (t) { return t.role === "agent"; });
        agentTurns.slice(lastSeen).forEach(function (t) { add("agent", t.content, t.language); });
        lastSeen = agentTurns.length;
        if (!data.handoff) setHandoff(false);
      })
      .catch(function () { /* try again next tick */ });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    add("user", text, null);
    var bot = add("bot", "…", null);
    send.disabled = true;
    var body = { message: text, session_id: sessionId, store: cfg.store, locale: cfg.locale,
                 country: cfg.country, stream: true };
    fetch(base + "/v1/chat", { method: "POST", headers: headers(), body: JSON.stringify(body) })
      .then(function (resp) {
        if (!resp.ok) {
          return resp.json().then(function (j) { bot.textContent = j.message || "Error"; });
        }
        var reader = resp.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        var started = false;
        function handle(block) {
          var ev = "message", data = "";
          block.split("\n").forEach(function (line) {
            if (line.indexOf("event: ") === 0) ev = line.slice(7);
            else if (line.indexOf("data: ") === 0) data += line.slice(6);
          });
          if (!data) return;
          var payload = JSON.parse(data);
          if (ev === "token") {
            bot.textContent = (started ? bot.textContent : "") + payload.text;
            started = true;
          } else if (ev === "replace") {
            bot.textContent = payload.text;
            started = true;
          } else if (ev === "done") {
            bot.textContent = payload.reply;
            sessionId = payload.session_id;
            try { localStorage.setItem(storageKey, sessionId); } catch (err) { /* ignore */ }
            if (RTL.indexOf(payload.language) >= 0) bot.setAttribute("dir", "rtl");
            else bot.setAttribute("dir", "auto");
            showSources(bot, payload.sources);
            var esc = payload.escalation || {};
            setHandoff(esc.escalate && (payload.mode === "handoff" ||
                       payload.mode === "handoff_pending"), payload.reply);
          } else if (ev === "error") {
            bot.textContent = payload.message;
          }
          log.scrollTop = log.scrollHeight;
        }
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) return;
            buffer += decoder.decode(r.value, { stream: true });
            var parts = buffer.split("\n\n");
            buffer = parts.pop();
            parts.forEach(handle);
            return pump();
          });
        }
        return pump();
      })
      .catch(function () { bot.textContent = "Connection problem, please try again."; })
      .finally(function () { send.disabled = false; input.focus(); });
  });

  if (sessionId) poll();
  window.kefu = { open: function () { toggle(true); }, session: function () { return sessionId; } };
})();
