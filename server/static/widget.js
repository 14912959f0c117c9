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
  // the widget's own words; replies come localised from the server
  var UI = {
    en: ["Customer service", "Open chat", "Close chat", "Your message", "Send",
         "A member of our team is looking after this conversation.",
         "Connection problem, please try again."],
    es: ["Atención al cliente", "Abrir el chat", "Cerrar el chat", "Su mensaje", "Enviar",
         "Una persona de nuestro equipo atiende esta conversación.",
         "Problema de conexión, inténtelo de nuevo."],
    fr: ["Service client", "Ouvrir le chat", "Fermer le chat", "Votre message", "Envoyer",
         "Un membre de notre équipe s'occupe de cette conversation.",
         "Problème de connexion, veuillez réessayer."],
    de: ["Kundenservice", "Chat öffnen", "Chat schließen", "Ihre Nachricht", "Senden",
         "Ein Mitglied unseres Teams kümmert sich um dieses Gespräch.",
         "Verbindungsproblem, bitte versuchen Sie es erneut."],
    pt: ["Atendimento ao cliente", "Abrir o chat", "Fechar o chat", "Sua mensagem", "Enviar",
         "Uma pessoa da nossa equipe está cuidando desta conversa.",
         "Problema de conexão, tente novamente."],
    zh: ["客户服务", "打开聊天", "关闭聊天", "您的消息", "发送",
         "我们的客服人员正在处理此对话。", "连接出现问题，请重试。"],
    ja: ["カスタマーサービス", "チャットを開く", "チャットを閉じる", "メッセージ", "送信",
         "担当スタッフがこの会話に対応しています。",
         "接続に問題が発生しました。もう一度お試しください。"],
    ru: ["Служба поддержки", "Открыть чат", "Закрыть чат", "Ваше сообщение", "Отправить",
         "Этим разговором занимается сотрудник нашей команды.",
         "Проблема с соединением, попробуйте ещё раз."],
    ar: ["خدمة العملاء", "فتح الدردشة", "إغلاق الدردشة", "رسالتك", "إرسال",
         "يتولى أحد أعضاء فريقنا هذه المحادثة.",
         "حدثت مشكلة في الاتصال، يرجى المحاولة مرة أخرى."],
    he: ["שירות לקוחות", "פתיחת הצ'אט", "סגירת הצ'אט", "ההודעה שלך", "שליחה",
         "נציג מהצוות שלנו מטפל בשיחה הזו.", "בעיית חיבור, נסו שוב."],
  };
  var KEYS = ["title", "open", "close", "input", "send", "handoff", "offline"];
  var lang = (cfg.locale || "").split("-")[0].toLowerCase();
  function t(key, language) {
    var words = UI[language] || UI[lang] || UI.en;
    return words[KEYS.indexOf(key)];
  }
  // the server issues the session id and a token that goes with it (X-Session-Token)
  var storageKey = "kefu-session-" + (cfg.store || "default");
  var tokenKey = storageKey + "-token";
  var sessionId = null;
  var sessionToken = null;
  try {
    sessionId = localStorage.getItem(storageKey);
    sessionToken = localStorage.getItem(tokenKey);
  } catch (e) { /* private mode */ }
  if (!sessionToken) sessionId = null;
  var lastSeen = 0;
  var polling = null;

  var css = [
    ".kefu-bubble{position:fixed;bottom:20px;right:20px;width:56px;height:56px;border-radius:50%;",
    "background:#0b6e4f;color:#fff;border:none;cursor:pointer;z-index:2147483000;padding:0;",
    "display:flex;align-items:center;justify-content:center;box-shadow:0 4px 12px rgba(0,0,0,.25)}",
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
    ".kefu-sources a{color:#0b6e4f;display:inline-block;margin-inline-end:10px;",
    "unicode-bidi:isolate}",
    ".kefu-panel[dir=rtl] .kefu-form button{transform:scaleX(-1)}",
    ".kefu-bubble:focus-visible,.kefu-panel button:focus-visible,.kefu-sources a:focus-visible{",
    "outline:3px solid #f4b400;outline-offset:2px}",
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

  var bubble = el("button", "kefu-bubble");
  bubble.type = "button";
  // an inline icon: an emoji would depend on the shopper's fonts
  var NS = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(NS, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("width", "28");
  icon.setAttribute("height", "28");
  icon.setAttribute("aria-hidden", "true");
  var path = document.createElementNS(NS, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5" +
    "a2 2 0 0 1 2-2z");
  icon.appendChild(path);
  bubble.appendChild(icon);
  bubble.setAttribute("aria-label", t("open"));
  bubble.setAttribute("aria-expanded", "false");
  var panel = el("div", "kefu-panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", t("title"));
  panel.setAttribute("lang", lang || "en");
  if (RTL.indexOf(lang) >= 0) panel.setAttribute("dir", "rtl");
  var head = el("div", "kefu-head");
  head.appendChild(el("strong", null, t("title")));
  var close = el("button", null, "×");
  close.type = "button";
  close.setAttribute("aria-label", t("close"));
  head.appendChild(close);
  var handoff = el("div", "kefu-handoff");
  handoff.setAttribute("role", "status");
  var log = el("div", "kefu-log");
  log.setAttribute("aria-live", "polite");
  var form = el("form", "kefu-form");
  var input = el("textarea");
  input.setAttribute("aria-label", t("input"));
  input.setAttribute("placeholder", t("input"));
  input.setAttribute("maxlength", "2000");
  var send = el("button", null, "➤");
  send.type = "submit";
  send.setAttribute("aria-label", t("send"));
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
    else m.setAttribute("dir", "auto");
    log.appendChild(m);
    log.scrollTop = log.scrollHeight;
    return m;
  }

  function headers(extra) {
    var h = extra || {};
    if (cfg.key) h["X-Kefu-Key"] = cfg.key;
    if (sessionId && sessionToken) h["X-Session-Token"] = sessionToken;
    return h;
  }

  function forget() {
    sessionId = null;
    sessionToken = null;
    try {
      localStorage.removeItem(storageKey);
      localStorage.removeItem(tokenKey);
    } catch (e) { /* ignore */ }
  }

  function showSources(node, sources) {
    if (!sources || !sources.length) return;
    var box = el("div", "kefu-sources");
    sources.forEach(function (s) {
      var a = el("a", null, s.title);
      a.setAttribute("dir", "auto");
      a.href = base + "/v1/documents/" + encodeURIComponent(s.doc_id) +
        (cfg.store ? "?store=" + encodeURIComponent(cfg.store) : "");
      a.target = "_blank";
      a.rel = "noopener";
      box.appendChild(a);
    });
    node.appendChild(box);
  }

  function setHandoff(on, language) {
    handoff.classList.toggle("on", !!on);
    handoff.textContent = on ? t("handoff", language) : "";
    if (on && !polling) polling = setInterval(poll, 5000);
    if (!on && polling) { clearInterval(polling); polling = null; }
  }

  function fetchSession() {
    var url = base + "/v1/sessions/" + encodeURIComponent(sessionId) +
      (cfg.store ? "?store=" + encodeURIComponent(cfg.store) : "");
    return fetch(url, { headers: headers() })
      .then(function (r) {
        if (r.status === 404) {  // erased or expired: start afresh
          forget();
          setHandoff(false);
        }
        return r.ok ? r.json() : null;
      });
  }

  function agentTurns(data) {
    return data.turns.filter(function (turn) { return turn.role === "agent"; });
  }

  function poll() {
    if (!sessionId) return;
    fetchSession()
      .then(function (data) {
        if (!data) return;
        var agents = agentTurns(data);
        agents.slice(lastSeen).forEach(function (turn) {
          add("agent", turn.content, turn.language);
        });
        lastSeen = agents.length;
        if (!data.handoff) setHandoff(false);
      })
      .catch(function () { /* try again next tick */ });
  }

  // A returning shopper sees the conversation so far (above anything typed meanwhile) and,
  // when a person has it, the handoff state.
  function restore() {
    fetchSession()
      .then(function (data) {
        if (!data) return;
        var first = log.firstChild;
        var lastLanguage = null;
        data.turns.forEach(function (turn) {
          var role = turn.role === "assistant" ? "bot" : (turn.role === "agent" ? "agent" : "user");
          var m = add(role, turn.content, turn.language);
          log.insertBefore(m, first);
          if (turn.language) lastLanguage = turn.language;
        });
        lastSeen = agentTurns(data).length;
        log.scrollTop = log.scrollHeight;
        if (data.handoff) setHandoff(true, lastLanguage);
      })
      .catch(function () { /* the widget works without the history */ });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    add("user", text, null);
    var bot = add("bot", "…", null);
    bot.setAttribute("aria-busy", "true");  // screen readers wait for the whole reply
    send.disabled = true;
    var body = { message: text, session_id: sessionId, store: cfg.store, locale: cfg.locale,
                 country: cfg.country, stream: true };
    var h = headers({ "Content-Type": "application/json", "Accept": "text/event-stream" });
    fetch(base + "/v1/chat", { method: "POST", headers: h, body: JSON.stringify(body) })
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
            sessionToken = payload.session_token;
            try {
              localStorage.setItem(storageKey, sessionId);
              localStorage.setItem(tokenKey, sessionToken);
            } catch (err) { /* ignore */ }
            if (RTL.indexOf(payload.language) >= 0) bot.setAttribute("dir", "rtl");
            else bot.setAttribute("dir", "auto");
            showSources(bot, payload.sources);
            var esc = payload.escalation || {};
            setHandoff(esc.escalate && (payload.mode === "handoff" ||
                       payload.mode === "handoff_pending"), payload.language);
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
      .catch(function () { bot.textContent = t("offline"); })
      .finally(function () {
        bot.removeAttribute("aria-busy");
        send.disabled = false;
        input.focus();
      });
  });

  if (sessionId) restore();
  window.kefu = { open: function () { toggle(true); }, session: function () { return sessionId; } };
})();
