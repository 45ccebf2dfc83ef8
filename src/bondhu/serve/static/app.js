// Bondhu web chat: vanilla JS, no build step, no external requests.
// The conversation lives only in this browser (localStorage); each message is sent with the
// recent history to /v1/chat/completions and the reply is read from its SSE stream.
"use strict";

(() => {
  const STORE = "bondhu.conversation.v1";
  const KEY_STORE = "bondhu.apiKey";
  const MAX_MESSAGES = 40; // the server refuses more than serve.max_messages (64 by default)
  const MAX_CHARS = 12000; // ... and more than serve.max_input_chars (16000 by default)
  const TEL = /^\+?\d{3,15}$/;
  const TEXT = {
    you: "তুমি: ",
    bondhu: "বন্ধু: ",
    writing: "বন্ধু লিখছে…",
    crisisTitle: "তুমি একা নও। এখনই কারো সাথে কথা বলো।",
    call: "ফোন করো",
    busy: "বন্ধু এখন অনেকের সাথে কথা বলছে। একটু পরে আবার চেষ্টা করো।",
    offline: "সার্ভারের সাথে যোগাযোগ করা যাচ্ছে না। একটু পরে আবার চেষ্টা করো।",
    failed: "দুঃখিত, উত্তর দিতে সমস্যা হলো। আবার চেষ্টা করো।",
    danger: " তুমি বিপদে থাকলে এখনই কাছের কাউকে জানাও বা জরুরি নম্বরে ফোন করো।",
    askKey: "এই সার্ভারে ঢুকতে API key লাগে। key লেখো:",
    cleared: "নতুন কথোপকথন শুরু হলো।",
  };

  const form = document.getElementById("composer");
  const input = document.getElementById("message");
  const sendButton = document.getElementById("send");
  const resetButton = document.getElementById("reset");
  const list = document.getElementById("messages");
  const status = document.getElementById("status");

  let conversation = load();
  let controller = null;

  function load() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORE) || "[]");
      return Array.isArray(saved) ? saved.filter(isMessage) : [];
    } catch {
      return [];
    }
  }

  function isMessage(m) {
    return m && (m.role === "user" || m.role === "assistant") && typeof m.content === "string";
  }

  function save() {
    try {
      localStorage.setItem(STORE, JSON.stringify(conversation.filter((m) => !m.pending)));
    } catch {
      // storage full or blocked: the conversation still works for this visit
    }
  }

  function render() {
    list.replaceChildren(...conversation.map((m) => bubble(m, false)));
    scrollDown();
  }

  function scrollDown() {
    list.scrollTop = list.scrollHeight;
  }

  function bubble(msg, fresh) {
    const el = document.createElement("div");
    fill(el, msg, fresh);
    return el;
  }

  function fill(el, msg, fresh) {
    el.className = "bubble " + msg.role + (msg.error ? " error" : "") + (msg.crisis ? " has-crisis" : "");
    if (msg.crisis) {
      el.replaceChildren(crisisBox(msg, fresh));
      return;
    }
    const who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = msg.role === "user" ? TEXT.you : TEXT.bondhu;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = msg.content || (msg.pending ? "…" : "");
    el.replaceChildren(who, text);
    // A concern, or the turns after a crisis: the reply, then the helplines below it.
    const ul = msg.support ? helplineList(msg.helplines) : null;
    if (ul) {
      const box = document.createElement("aside");
      box.className = "support";
      box.append(ul);
      el.append(box);
    }
  }

  function crisisBox(msg, fresh) {
    const box = document.createElement("section");
    box.className = "crisis";
    if (fresh) box.setAttribute("role", "alert");
    const title = document.createElement("h2");
    title.textContent = TEXT.crisisTitle;
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = msg.content;
    box.append(title);
    const ul = helplineList(msg.helplines);
    if (ul) box.append(ul);
    box.append(text);
    return box;
  }

  // Helplines as call links; only numbers that look like numbers become tel: links.
  function helplineList(helplines) {
    const lines = (helplines || []).filter((l) => l && TEL.test(String(l.tel || "")));
    if (!lines.length) return null;
    const ul = document.createElement("ul");
    ul.className = "helplines";
    for (const line of lines) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = "tel:" + line.tel;
      a.className = "call" + (line.emergency ? " emergency" : "");
      a.textContent = `${TEXT.call}: ${line.name} · ${line.number}`;
      const info = document.createElement("small");
      info.textContent = [line.region_name, line.hours].filter(Boolean).join(" · ");
      li.append(a, info);
      ul.append(li);
    }
    return ul;
  }

  // The newest messages that fit the server's limits, starting with a user turn.
  function history() {
    const msgs = conversation
      .filter((m) => !m.error && !m.pending && m.content)
      .map((m) => ({ role: m.role, content: m.content }));
    let start = msgs.length;
    let chars = 0;
    while (start > 0 && msgs.length - start < MAX_MESSAGES && chars + msgs[start - 1].content.length <= MAX_CHARS) {
      start -= 1;
      chars += msgs[start].content.length;
    }
    let out = msgs.slice(Math.min(start, msgs.length - 1));
    while (out.length > 1 && out[0].role !== "user") out = out.slice(1);
    return out;
  }

  async function post(body, signal, retried) {
    const headers = { "Content-Type": "application/json" };
    const key = localStorage.getItem(KEY_STORE);
    if (key) headers.Authorization = "Bearer " + key;
    const res = await fetch("/v1/chat/completions", { method: "POST", headers, body: JSON.stringify(body), signal });
    if (res.status === 401 && !retried) {
      const entered = window.prompt(TEXT.askKey);
      if (entered && entered.trim()) {
        localStorage.setItem(KEY_STORE, entered.trim());
        return post(body, signal, true);
      }
    }
    return res;
  }

  async function problem(res) {
    if (res.status === 503) return TEXT.busy;
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) return `${TEXT.failed} (${body.error.message})`;
    } catch {
      // not JSON
    }
    return `${TEXT.failed} (HTTP ${res.status})`;
  }

  function apply(chunk, reply, el) {
    if (chunk.error) throw new Error(chunk.error.message || TEXT.failed);
    const flag = chunk.bondhu;
    if (flag && flag.crisis) {
      reply.crisis = true;
      reply.helplines = Array.isArray(flag.helplines) ? flag.helplines : [];
    } else if (flag && Array.isArray(flag.helplines) && flag.helplines.length) {
      reply.support = true; // concern, or a session still elevated after a crisis
      reply.helplines = flag.helplines;
    }
    if (flag && flag.withdrawn) reply.content = ""; // the model's unsafe reply is replaced, not kept
    const choice = chunk.choices && chunk.choices[0];
    const piece = choice && choice.delta && choice.delta.content;
    if (typeof piece === "string") reply.content += piece;
    const box = el.querySelector(".crisis");
    if (reply.crisis && !box) {
      fill(el, reply, true);
      el.scrollIntoView({ block: "start" }); // the helplines first, not the end of the message
      return;
    }
    if (box) box.querySelector(".text").textContent = reply.content;
    else if (reply.support && !el.querySelector(".support")) fill(el, reply, true);
    else el.querySelector(".text").textContent = reply.content || "…";
    if (!reply.crisis) scrollDown();
  }

  async function streamReply(messages, reply, el, signal) {
    const res = await post({ model: "bondhu", stream: true, messages }, signal, false);
    if (!res.ok) throw new Error(await problem(res));
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") return;
          apply(JSON.parse(data), reply, el);
        }
      }
    }
  }

  function setBusy(busy) {
    document.body.dataset.busy = String(busy);
    sendButton.disabled = busy;
    list.setAttribute("aria-busy", String(busy));
    status.textContent = busy ? TEXT.writing : "";
  }

  async function send(text) {
    conversation.push({ role: "user", content: text });
    const messages = history();
    const reply = { role: "assistant", content: "", pending: true };
    conversation.push(reply);
    save();
    render();
    const el = list.lastElementChild;
    controller = new AbortController();
    const mine = controller;
    setBusy(true);
    try {
      await streamReply(messages, reply, el, mine.signal);
      if (!reply.content.trim()) reply.content = "…";
    } catch (err) {
      if (mine.signal.aborted) return;
      reply.error = true;
      reply.content = (err instanceof TypeError ? TEXT.offline : err.message || TEXT.failed) + TEXT.danger;
    } finally {
      delete reply.pending;
      if (controller === mine) {
        controller = null;
        if (!reply.crisis) fill(el, reply, false);
        save();
        setBusy(false);
      }
    }
  }

  function reset() {
    if (controller) controller.abort();
    controller = null;
    conversation = [];
    localStorage.removeItem(STORE);
    render();
    setBusy(false);
    status.textContent = TEXT.cleared;
    input.value = "";
    input.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || controller) return;
    input.value = "";
    send(text);
  });

  input.addEventListener("keydown", (event) => {
    // isComposing: Bengali input methods use Enter to pick a word; that must not send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  resetButton.addEventListener("click", reset);
  render();
})();
