// The sandbox console: a Slack-like channel over the Web API stand-in's state.
// Messages and their Block Kit come from the bot as it sent them; typing and clicking go back to the
// server, which turns them into the signed requests Slack would send. Live over server-sent events.
"use strict";

const EMOJI = {
  hourglass_flowing_sand: "⏳", timer_clock: "⏲️", inbox_tray: "📥", gear: "⚙️", white_check_mark: "✅",
  warning: "⚠️", x: "❌", no_entry: "⛔", heavy_multiplication_x: "✖️", zzz: "💤", package: "📦",
  receipt: "🧾", ice_cube: "🧊", arrow_forward: "▶️", raising_hand: "🙋", wastebasket: "🗑️", lock: "🔒",
  eyes: "👀", tada: "🎉", rocket: "🚀", hourglass: "⌛", information_source: "ℹ️", bell: "🔔",
  white_circle: "⚪", large_green_circle: "🟢", red_circle: "🔴", stopwatch: "⏱️", clipboard: "📋",
  link: "🔗", mag: "🔍", memo: "📝", heavy_check_mark: "✔️", construction: "🚧", broom: "🧹",
  rotating_light: "🚨", thumbsup: "👍", "+1": "👍", wave: "👋", bust_in_silhouette: "👤", file_folder: "📁", floppy_disk: "💾",
};
const COLORS = ["#e8912d", "#2bac76", "#1264a3", "#cd2553", "#8a4ba7", "#3aa3e3", "#4a154b", "#d97706"];

const ui = {
  me: null, channel: null, thread: null, data: null, loading: false, again: false,
  seen: {}, lastRender: {}, previews: {}, history: [], historyAt: 0, highlight: null, view: "channel", formId: null,
};

const $ = (id) => document.getElementById(id);

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
function unescapeSlack(text) {
  return String(text).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}
function emoji(text) {
  return text.replace(/:([a-z0-9_+\-]+):/g, (m, name) => EMOJI[name] || m);
}
function user(id) {
  return (ui.data && ui.data.users[id]) || { id, name: id, real_name: id, role: "" };
}
function displayName(id) {
  const u = user(id);
  return u.real_name || u.name;
}
function colorOf(id) {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return COLORS[h % COLORS.length];
}
function channelName(id) {
  const found = (ui.data ? ui.data.channels : []).find((c) => c.id === id);
  return found ? found.name : id;
}

// ---- dates: <!date^epoch^format|fallback> ---------------------------------------------------------

const DAY = 86400000;
function sameDay(a, b) { return a.toDateString() === b.toDateString(); }
function pretty(d, fallback) {
  const today = new Date();
  if (sameDay(d, today)) return "today";
  if (sameDay(d, new Date(today.getTime() - DAY))) return "yesterday";
  if (sameDay(d, new Date(today.getTime() + DAY))) return "tomorrow";
  return fallback;
}
function ago(d) {
  const seconds = Math.round((d.getTime() - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  const [n, unit] = abs < 60 ? [abs, "second"] : abs < 3600 ? [Math.round(abs / 60), "minute"]
    : abs < 86400 ? [Math.round(abs / 3600), "hour"] : [Math.round(abs / 86400), "day"];
  const words = `${n} ${unit}${n === 1 ? "" : "s"}`;
  return seconds < 0 ? `${words} ago` : `in ${words}`;
}
function formatDate(epoch, format) {
  const d = new Date(Number(epoch) * 1000);
  const long = d.toLocaleDateString("en-US", { weekday: "long", month: "long", day: "numeric", year: "numeric" });
  const date = d.toLocaleDateString("en-US", { month: "long", day: "numeric", year: "numeric" });
  const short = d.toLocaleDateString("en-US", { month: "short", day: "numeric", year: "numeric" });
  const values = {
    date_num: d.toISOString().slice(0, 10), date, date_short: short, date_long: long,
    date_pretty: pretty(d, date), date_short_pretty: pretty(d, short), date_long_pretty: pretty(d, long),
    time: d.toLocaleTimeString("en-US", { hour: "numeric", minute: "2-digit" }),
    time_secs: d.toLocaleTimeString("en-US", { hour: "numeric", minute: "2-digit", second: "2-digit" }),
    ago: ago(d),
  };
  return format.replace(/\{(\w+)\}/g, (m, key) => (key in values ? values[key] : m));
}

// ---- mrkdwn -----------------------------------------------------------------------------------------

const PERMALINK = /^https:\/\/([\w-]+)\.slack\.com\/archives\/([A-Z0-9]+)\/p(\d{10})(\d{6})(?:\?thread_ts=([\d.]+))?/;

function safeUrl(url) {
  const href = unescapeSlack(url || "");
  return /^(https?:|mailto:|\/)/i.test(href) ? href : "#";
}

function linkHtml(url, label) {
  const link = PERMALINK.exec(url);
  const text = esc(unescapeSlack(label || url));
  if (link && ui.data && link[1] === ui.data.team.domain) {
    return `<a href="#" class="permalink" data-channel="${link[2]}" data-ts="${link[3]}.${link[4]}"` +
      (link[5] ? ` data-thread="${esc(link[5])}"` : "") + `>${text}</a>`;
  }
  const href = safeUrl(url);
  if (href === "#") return text;
  return `<a href="${esc(href)}" target="_blank" rel="noopener">${text}</a>`;
}

function token(inner) {
  const [head, ...rest] = inner.split("|");
  const label = rest.join("|");
  if (head.startsWith("@")) {
    const id = head.slice(1);
    const mine = id === ui.me ? " me" : "";
    return `<span class="mention${mine}" data-user="${esc(id)}">@${esc(displayName(id))}</span>`;
  }
  if (head.startsWith("#")) return `<span class="mention">#${esc(label || channelName(head.slice(1)))}</span>`;
  if (head.startsWith("!date^")) {
    const [, epoch, format, link] = head.split("^");
    const shown = esc(formatDate(epoch, format || "{date_short_pretty}"));
    const title = esc(new Date(Number(epoch) * 1000).toString());
    return link ? `<a href="${esc(link)}" title="${title}">${shown}</a>` : `<span class="date" title="${title}">${shown}</span>`;
  }
  if (head.startsWith("!subteam^")) return `<span class="mention">@${esc(label || head.slice(9))}</span>`;
  if (head.startsWith("!")) return `<span class="mention">@${esc(label || head.slice(1))}</span>`;
  return linkHtml(head, label);
}

function mrkdwn(source) {
  const stash = [];
  const keep = (html) => `\u0000${stash.push(html) - 1}\u0000`;
  let text = String(source || "");
  text = text.replace(/```([\s\S]*?)```/g, (m, code) => keep(`<pre>${esc(unescapeSlack(code.replace(/^\n/, "")))}</pre>`));
  text = text.replace(/`([^`\n]+)`/g, (m, code) => keep(`<code>${esc(unescapeSlack(code))}</code>`));
  text = text.replace(/<([^<>\n]+)>/g, (m, inner) => keep(token(inner)));
  text = esc(unescapeSlack(text));
  text = text.replace(/(^|[\s(\u0000>~_])\*(?!\s)([^*\n]+?)\*(?=$|[\s).,:;!?\u0000<~_])/g, "$1<b>$2</b>");
  text = text.replace(/(^|[\s(\u0000>*~])_(?!\s)([^_\n]+?)_(?=$|[\s).,:;!?\u0000<*~])/g, "$1<i>$2</i>");
  text = text.replace(/(^|[\s(\u0000>*_])~(?!\s)([^~\n]+?)~(?=$|[\s).,:;!?\u0000<*_])/g, "$1<s>$2</s>");
  text = emoji(text);
  text = text.split("\n").map((line) => (line.startsWith("&gt; ") ? `<blockquote>${line.slice(5)}</blockquote>` : line)).join("\n");
  text = text.replace(/\n/g, "<br>").replace(/<\/blockquote><br>/g, "</blockquote>");
  return text.replace(/\u0000(\d+)\u0000/g, (m, i) => stash[Number(i)]);
}

function textObject(t) {
  if (!t) return "";
  if (t.type === "mrkdwn") return mrkdwn(t.text);
  return emoji(esc(t.text || ""));
}

// ---- Block Kit -----------------------------------------------------------------------------------

function button(el, where) {
  if (el.type !== "button") return `<span class="b-unknown">[${esc(el.type)}]</span>`;
  const style = el.style === "primary" ? " primary" : el.style === "danger" ? " danger" : "";
  const label = emoji(esc((el.text && el.text.text) || ""));
  if (el.url) return `<a class="btn${style}" href="${esc(safeUrl(el.url))}" target="_blank" rel="noopener">${label}</a>`;
  return `<button class="btn${style}" data-action="${esc(el.action_id)}" data-block="${esc(where.block || "")}"` +
    ` data-value="${esc(el.value || "")}"${where.home ? ' data-home="1"' : ""}` +
    ` data-channel="${esc(where.channel)}" data-ts="${esc(where.ts)}"` +
    (el.confirm ? ` data-confirm="${esc(JSON.stringify(el.confirm))}"` : "") + `>${label}</button>`;
}

function block(b, where) {
  const at = { ...where, block: b.block_id };
  switch (b.type) {
    case "header":
      return `<div class="b-header">${textObject(b.text)}</div>`;
    case "section": {
      const main = (b.text ? `<div class="text">${textObject(b.text)}</div>` : "") +
        (b.fields ? `<div class="b-fields">${b.fields.map((f) => `<div>${textObject(f)}</div>`).join("")}</div>` : "");
      const accessory = b.accessory ? `<div class="accessory">${b.accessory.type === "image"
        ? `<img src="${esc(safeUrl(b.accessory.image_url))}" alt="${esc(b.accessory.alt_text || "")}" width="72">` : button(b.accessory, at)}</div>` : "";
      return `<div class="b-section"><div class="section-main">${main}</div>${accessory}</div>`;
    }
    case "context":
      return `<div class="b-context">${(b.elements || []).map((e) => e.type === "image"
        ? `<img src="${esc(safeUrl(e.image_url))}" alt="${esc(e.alt_text || "")}">` : `<span>${textObject(e)}</span>`).join("")}</div>`;
    case "divider":
      return `<hr class="b-divider">`;
    case "actions":
      return `<div class="b-actions">${(b.elements || []).map((e) => button(e, at)).join("")}</div>`;
    case "markdown":
      return `<div class="text">${mrkdwn(b.text)}</div>`;
    case "input": {
      const el = b.element || {};
      return `<label class="b-input"><span>${textObject(b.label)}</span><textarea data-block="${esc(b.block_id || "")}"` +
        ` data-input="${esc(el.action_id || "")}" maxlength="${esc(el.max_length || 3000)}"` +
        ` placeholder="${esc((el.placeholder && el.placeholder.text) || "")}"></textarea></label>`;
    }
    case "image":
      return `<div class="b-image"><img src="${esc(safeUrl(b.image_url))}" alt="${esc(b.alt_text || "")}"></div>`;
    default:
      return `<div class="b-unknown">[${esc(b.type)} block]</div>`;
  }
}

// ---- messages ------------------------------------------------------------------------------------

function fileKind(name) {
  const ext = (name.split(".").pop() || "").toUpperCase();
  return ext.length <= 4 ? ext : "FILE";
}
function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
function files(list) {
  return (list || []).map((f) => {
    const shown = ui.previews[f.id];
    return `
    <div class="file" data-testid="file" data-file="${esc(f.id)}">
      <div class="file-icon">${esc(fileKind(f.name))}</div>
      <div class="file-body">
        <a class="file-title" href="${esc(f.url)}" target="_blank" rel="noopener">${esc(f.title || f.name)}</a>
        <div class="file-meta"><span>${esc(f.name)} · ${size(f.size || 0)}</span>
          <a href="#" class="preview" data-file="${esc(f.id)}" data-url="${esc(f.url)}">${shown === undefined ? "Preview" : "Hide"}</a>
          <a href="${esc(f.url)}?download=1" download="${esc(f.name)}">Download</a></div>
        ${shown === undefined ? "" : `<pre class="file-preview">${esc(shown)}</pre>`}
      </div>
    </div>`;
  }).join("");
}
function clock(ts) {
  return new Date(Number(ts) * 1000).toLocaleTimeString("en-US", { hour: "numeric", minute: "2-digit" });
}

function messageHtml(m, { inThread = false, replies = [] } = {}) {
  const author = m.user || ui.data.bot;
  const u = user(author);
  const where = { channel: m.channel, ts: m.ts };
  const content = m.blocks && m.blocks.length
    ? m.blocks.map((b) => block(b, where)).join("")
    : `<div class="text">${mrkdwn(m.text)}</div>`;
  const key = `${m.channel}/${m.ts}`;
  const fingerprint = JSON.stringify([m.text, m.blocks, m.files]);
  const changed = ui.lastRender[key] !== undefined && ui.lastRender[key] !== fingerprint;
  ui.lastRender[key] = fingerprint;
  const classes = ["message", m.ephemeral ? "ephemeral" : "", changed ? "flash" : "",
    ui.highlight === key ? "highlight" : ""].filter(Boolean).join(" ");
  const initials = (u.real_name || u.name || "?").split(/\s+/).map((w) => w[0]).join("").slice(0, 2).toUpperCase();
  const avatar = u.is_bot ? `<div class="avatar" style="background:#1f3b57">◆</div>`
    : `<div class="avatar" style="background:${colorOf(author)}">${esc(initials)}</div>`;
  const repliesHtml = !inThread && replies.length ? `
    <div class="replies" data-testid="replies" data-channel="${esc(m.channel)}" data-ts="${esc(m.ts)}">
      ${replies.length} ${replies.length === 1 ? "reply" : "replies"}
      <span class="last">Last reply ${esc(clock(replies[replies.length - 1].ts))}</span></div>` : "";
  return `
    <div class="${classes}" data-testid="${m.ephemeral ? "ephemeral" : "message"}" data-ts="${esc(m.ts)}" data-channel="${esc(m.channel)}">
      ${avatar}
      <div class="body">
        <div class="meta"><span class="author">${esc(u.is_bot ? u.name : displayName(author))}</span>
          ${u.is_bot ? '<span class="app-badge">APP</span>' : ""}
          <span class="time" title="${esc(new Date(Number(m.ts) * 1000).toString())}">${esc(clock(m.ts))}</span>
          ${m.edited ? '<span class="edited">(edited)</span>' : ""}</div>
        <div class="content">${content}</div>
        ${files(m.files)}
        ${m.ephemeral ? '<div class="ephemeral-note">👁 Only visible to you</div>' : ""}
        ${repliesHtml}
      </div>
    </div>`;
}

function isReply(m) { return m.thread_ts && m.thread_ts !== m.ts; }

function renderMessages() {
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const mine = ui.data.messages.filter((m) => m.channel === ui.channel);
  const replies = {};
  for (const m of mine) if (isReply(m)) (replies[m.thread_ts] = replies[m.thread_ts] || []).push(m);
  const top = mine.filter((m) => !isReply(m));
  const name = esc(channelName(ui.channel));
  box.innerHTML = `<div class="intro"><div class="intro-title"># ${name}</div>This is the very beginning of ` +
    `<b>#${name}</b>. amlbot is in this channel: type <code>/aml help</code> below, or pick a suggestion.</div>` +
    top.map((m) => messageHtml(m, { replies: replies[m.ts] || [] })).join("");
  if (atBottom || ui.stick) box.scrollTop = box.scrollHeight;
  ui.stick = false;
  renderThread(replies);
}

function renderThread(replies) {
  const pane = $("thread");
  if (!ui.thread) { pane.hidden = true; return; }
  const parent = ui.data.messages.find((m) => m.channel === ui.thread.channel && m.ts === ui.thread.ts);
  if (!parent) { pane.hidden = true; ui.thread = null; return; }
  pane.hidden = false;
  $("thread-channel").textContent = `# ${channelName(parent.channel)}`;
  const list = replies[parent.ts] || [];
  const box = $("thread-messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.innerHTML = messageHtml(parent, { inThread: true }) +
    `<div class="thread-divider">${list.length} ${list.length === 1 ? "reply" : "replies"}</div>` +
    list.map((m) => messageHtml(m, { inThread: true })).join("");
  if (atBottom || ui.threadStick) box.scrollTop = box.scrollHeight;
  ui.threadStick = false;
}

function renderChrome() {
  const d = ui.data;
  $("team-name").textContent = d.title;
  const switcher = $("user-switcher");
  const options = d.switchable.map((id) => `<option value="${esc(id)}">${esc(displayName(id))} (${esc(user(id).role)})</option>`).join("");
  if (switcher.dataset.options !== options) { switcher.innerHTML = options; switcher.dataset.options = options; }
  switcher.value = ui.me;
  $("channel-list").innerHTML = d.channels.map((c) => {
    const count = d.messages.filter((m) => m.channel === c.id && !m.ephemeral && Number(m.ts) > (ui.seen[c.id] || 0)).length;
    const active = c.id === ui.channel;
    return `<li class="item${active ? " active" : ""}${!active && count ? " unread" : ""}" data-channel="${esc(c.id)}"># ${esc(c.name)}` +
      (!active && count ? `<span class="badge">${count}</span>` : "") + "</li>";
  }).join("");
  $("people-list").innerHTML = d.switchable.map((id) => `<li class="item${id === ui.me ? " active" : ""}" data-user="${esc(id)}">` +
    `<span class="presence"></span>${esc(displayName(id))}<span class="role">${esc(user(id).role)}</span></li>`).join("");
  $("channel-name").textContent = `# ${channelName(ui.channel)}`;
  $("message-input").placeholder = `Message #${channelName(ui.channel)} as ${displayName(ui.me)} — type /aml help`;
  const chips = (d.suggestions || []).map((s) => `<button type="button" class="suggestion" data-fill="${esc(s)}">${esc(s)}</button>`).join("");
  if ($("suggestions").dataset.chips !== chips) { $("suggestions").innerHTML = chips; $("suggestions").dataset.chips = chips; }
}

function renderHome() {
  const home = ui.data.home;
  $("home").innerHTML = home ? (home.blocks || []).map((b) => block(b, { home: true })).join("")
    : '<div class="intro">Opening the Home tab…</div>';
}

function renderForm() {
  const form = ui.data.form;
  if (!form) { $("form-backdrop").hidden = true; ui.formId = null; return; }
  if (ui.formId === form.id) return;  // keep what is being typed
  ui.formId = form.id;
  $("form-title").innerHTML = textObject(form.title);
  $("form-body").innerHTML = (form.blocks || []).map((b) => block(b, {})).join("");
  $("form-submit").innerHTML = textObject(form.submit || { type: "plain_text", text: "Submit" });
  $("form-close").innerHTML = textObject(form.close || { type: "plain_text", text: "Cancel" });
  $("form-backdrop").hidden = false;
  const first = $("form-body").querySelector("textarea");
  if (first) first.focus();
}

async function sendForm(submit) {
  const form = ui.data && ui.data.form;
  if (!form) return;
  const values = {};
  for (const area of $("form-body").querySelectorAll("textarea")) {
    (values[area.dataset.block] = values[area.dataset.block] || {})[area.dataset.input] = area.value;
  }
  await post("/console/form", { user: ui.me, view_id: form.id, submit, values });
  load();
}

async function openHome() {
  ui.view = "home";
  ui.thread = null;
  render();
  await post("/console/home", { user: ui.me });
  load();
}

function render() {
  if (!ui.data) return;
  if (!ui.channel || !ui.data.channels.some((c) => c.id === ui.channel)) ui.channel = ui.data.channels[0].id;
  const newest = ui.data.messages.filter((m) => m.channel === ui.channel).reduce((t, m) => Math.max(t, Number(m.ts)), 0);
  ui.seen[ui.channel] = Math.max(ui.seen[ui.channel] || 0, newest);
  renderChrome();
  const home = ui.view === "home";
  $("home").hidden = !home;
  $("messages").hidden = $("composer").hidden = home;
  $("home-link").classList.toggle("active", home);
  if (home) {
    $("channel-name").textContent = "◆ amlbot — Home";
    document.querySelectorAll("#channel-list li").forEach((li) => li.classList.remove("active"));
    renderHome();
  }
  renderMessages();
  renderForm();
  document.body.dataset.version = String(ui.data.version);
  document.body.dataset.user = ui.me;
}

// ---- talking to the server -------------------------------------------------------------------------

async function load() {
  if (ui.loading) { ui.again = true; return; }
  ui.loading = true;
  try {
    const response = await fetch(`/console/state?user=${encodeURIComponent(ui.me || "")}`, { cache: "no-store" });
    if (response.ok) {
      ui.data = await response.json();
      if (!ui.me) ui.me = ui.data.me;
      render();
    } else if (response.status === 400 && ui.me) {
      ui.me = "";  // someone this sandbox does not know: start as its first person
      ui.again = true;
    }
  } finally {
    ui.loading = false;
    if (ui.again) { ui.again = false; load(); }
  }
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  return response.ok ? response.json() : { ok: false, status: response.status };
}

function listen() {
  const source = new EventSource("/console/events");
  source.onmessage = () => { $("connection").classList.remove("down"); $("connection").textContent = "● live"; load(); };
  source.onerror = () => { $("connection").classList.add("down"); $("connection").textContent = "● reconnecting"; };
  // A safety net if an event is ever missed.
  setInterval(load, 5000);
}

function actAs(id) {
  ui.me = id;
  localStorage.setItem("amlbot.sandbox.user", id);
  ui.lastRender = {};
  if (ui.view === "home") openHome(); else load();
}

async function send(text) {
  const line = text.trim();
  if (!line) return;
  ui.history.push(line);
  ui.historyAt = ui.history.length;
  ui.stick = true;
  const body = { user: ui.me, channel: ui.channel, text: line };
  if (line.startsWith("/")) await post("/console/command", body);
  else await post("/console/message", body);
  load();
}

function confirmDialog(confirm) {
  return new Promise((resolve) => {
    $("dialog-title").innerHTML = textObject(confirm.title);
    $("dialog-text").innerHTML = textObject(confirm.text);
    $("dialog-confirm").innerHTML = textObject(confirm.confirm || { type: "plain_text", text: "Yes" });
    $("dialog-deny").innerHTML = textObject(confirm.deny || { type: "plain_text", text: "Cancel" });
    $("dialog-confirm").className = `btn ${confirm.style === "danger" ? "danger" : "primary"}`;
    $("dialog-backdrop").hidden = false;
    const done = (answer) => {
      $("dialog-backdrop").hidden = true;
      $("dialog-confirm").onclick = $("dialog-deny").onclick = null;
      resolve(answer);
    };
    $("dialog-confirm").onclick = () => done(true);
    $("dialog-deny").onclick = () => done(false);
    $("dialog-confirm").focus();
  });
}

async function press(el) {
  if (el.dataset.confirm && !(await confirmDialog(JSON.parse(el.dataset.confirm)))) return;
  el.disabled = true;
  try {
    if (el.dataset.home) await post("/console/home/action", { user: ui.me, action_id: el.dataset.action, value: el.dataset.value });
    else await post("/console/action", {
      user: ui.me, channel: el.dataset.channel, ts: el.dataset.ts, action_id: el.dataset.action, block_id: el.dataset.block || "",
    });
  } finally {
    el.disabled = false;
    load();
  }
}

async function preview(link) {
  const id = link.dataset.file;
  if (ui.previews[id] !== undefined) { delete ui.previews[id]; render(); return; }
  const text = await (await fetch(link.dataset.url, { cache: "no-store" })).text();
  try { ui.previews[id] = JSON.stringify(JSON.parse(text), null, 2); } catch { ui.previews[id] = text; }
  render();
}

function openThread(channel, ts) {
  ui.thread = { channel, ts };
  ui.threadStick = true;
  render();
}

function goTo(channel, ts, threadTs) {
  ui.channel = channel;
  ui.highlight = `${channel}/${threadTs || ts}`;
  ui.lastRender = {};
  if (threadTs) openThread(channel, threadTs); else render();
  const target = document.querySelector(`#messages .message[data-ts="${CSS.escape(threadTs || ts)}"]`);
  if (target) target.scrollIntoView({ block: "center" });
  setTimeout(() => { ui.highlight = null; }, 2500);
}

document.addEventListener("click", (event) => {
  const el = event.target.closest("button[data-action], .replies, .permalink, .preview, [data-fill], #channel-list li, #people-list li");
  if (!el) return;
  if (el.matches("button[data-action]")) { event.preventDefault(); press(el); }
  else if (el.matches(".replies")) openThread(el.dataset.channel, el.dataset.ts);
  else if (el.matches(".permalink")) { event.preventDefault(); goTo(el.dataset.channel, el.dataset.ts, el.dataset.thread); }
  else if (el.matches(".preview")) { event.preventDefault(); preview(el); }
  else if (el.matches("[data-fill]")) { $("message-input").value = el.dataset.fill; $("message-input").focus(); }
  else if (el.matches("#channel-list li")) { ui.view = "channel"; ui.channel = el.dataset.channel; ui.thread = null; ui.stick = true; render(); }
  else if (el.matches("#people-list li")) actAs(el.dataset.user);
});

$("user-switcher").addEventListener("change", (event) => actAs(event.target.value));
$("close-thread").addEventListener("click", () => { ui.thread = null; render(); });
$("home-link").addEventListener("click", () => openHome());
$("form-submit").addEventListener("click", () => sendForm(true));
$("form-close").addEventListener("click", () => sendForm(false));
$("composer-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("message-input");
  const text = input.value;
  input.value = "";
  send(text);
});
$("message-input").addEventListener("keydown", (event) => {
  if (event.key === "ArrowUp" && ui.historyAt > 0) { ui.historyAt -= 1; event.target.value = ui.history[ui.historyAt]; event.preventDefault(); }
  if (event.key === "ArrowDown" && ui.historyAt < ui.history.length) {
    ui.historyAt += 1; event.target.value = ui.history[ui.historyAt] || ""; event.preventDefault();
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !$("dialog-backdrop").hidden) $("dialog-deny").click();
  else if (event.key === "Escape" && !$("form-backdrop").hidden) $("form-close").click();
});

ui.me = new URLSearchParams(location.search).get("as") || localStorage.getItem("amlbot.sandbox.user");
load().then(() => {
  if (ui.data && !ui.data.switchable.includes(ui.me)) actAs(ui.data.switchable[0]);
  $("message-input").focus();
});
listen();
