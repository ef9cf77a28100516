/* Reise browser snippet: page views, reise.track(), reise.identify(id, traits, {userHash}); first-party anonymous id;
   honours Do-Not-Track and an explicit consent switch (data-consent="required" waits for reise.consent(true)). */
(function (w, d, n) {
  var s = d.currentScript, q = w.reise;
  if (!s || (q && q.loaded)) return;
  var key = s.getAttribute("data-key"), host = s.getAttribute("data-host") || new URL(s.src).origin,
    needConsent = s.getAttribute("data-consent") === "required", A = "reise_aid", U = "reise_uid", H = "reise_uh", C = "reise_consent";
  function get(k) { try { return w.localStorage.getItem(k); } catch (e) { return null; } }
  function put(k, v) { try { v == null ? w.localStorage.removeItem(k) : w.localStorage.setItem(k, v); } catch (e) {} }
  function cookie(v) {
    if (v === undefined) { var m = d.cookie.match(/(?:^|; )reise_aid=([^;]+)/); return m ? m[1] : null; }
    d.cookie = A + "=" + (v || "") + "; path=/; SameSite=Lax; max-age=" + (v ? 31536000 : 0);
  }
  function uuid() {
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = Math.random() * 16 | 0; return (c === "x" ? r : (r & 3 | 8)).toString(16); });
  }
  function dnt() { return n.doNotTrack === "1" || w.doNotTrack === "1" || n.globalPrivacyControl === true; }
  function allowed() { var c = get(C); return !!key && !dnt() && c !== "no" && (!needConsent || c === "yes"); }
  function anon() {
    var a = get(A) || cookie();
    if (!a) a = uuid();
    put(A, a); cookie(a);
    return a;
  }
  function send(type, fields) {
    if (!allowed()) return false;
    var now = new Date().toISOString(), e = {
      type: type, messageId: uuid(), timestamp: now, anonymousId: anon(),
      context: { library: { name: "reise-js", version: "1" }, userAgent: n.userAgent, locale: n.language,
        page: { url: location.href, path: location.pathname, referrer: d.referrer, title: d.title } }
    }, uid = get(U), f;
    if (uid) { e.userId = uid; if (get(H)) e.userHash = get(H); }
    for (f in fields) if (fields[f] != null) e[f] = fields[f];
    var body = JSON.stringify({ writeKey: key, sentAt: now, batch: [e] }), url = host + "/v1/batch";
    try { if (n.sendBeacon && n.sendBeacon(url, new Blob([body], { type: "text/plain" }))) return true; } catch (x) {}
    try {
      fetch(url, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" } })
        .catch(function () {});
      return true;
    } catch (x) { return false; }
  }
  var api = {
    loaded: true,
    page: function (name, props) { return send("page", { name: name, properties: props }); },
    track: function (event, props, opts) {
      return send("track", { event: event, properties: props, channel: (opts && opts.channel) || "web",
        campaign: opts && opts.campaign, stage: opts && opts.stage });
    },
    identify: function (userId, traits, opts) {
      if (userId == null || !allowed()) return false;
      put(U, String(userId)); put(H, (opts && opts.userHash) || null);
      return send("identify", { userId: String(userId), traits: traits, channel: "web" });
    },
    consent: function (yes) {
      put(C, yes ? "yes" : "no");
      if (!yes) { put(A, null); put(U, null); put(H, null); cookie(""); }
    },
    reset: function () { put(A, null); put(U, null); put(H, null); cookie(""); }
  };
  w.reise = api;
  for (var i = 0; q && i < q.length; i++) if (api[q[i][0]]) api[q[i][0]].apply(api, [].slice.call(q[i], 1));
  if (s.getAttribute("data-auto-page") !== "false") api.page();
})(window, document, navigator);
