// The demo page: POST a prompt to the gateway, read the answer with fetch() + ReadableStream,
// parse the Server-Sent Events line by line (EventSource cannot POST and never shows comments,
// and the heartbeat is a comment), and render the translated stream as it arrives.
"use strict";

const config = JSON.parse(document.getElementById("demo-config").textContent);
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// A small incremental SSE parser (WHATWG rules: CR, LF or CRLF line ends, even split across
// reads; "field: value" with one optional space; a blank line dispatches; ":" starts a comment).
// ---------------------------------------------------------------------------------------------

class SSEParser {
  constructor(onEvent, onComment) {
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.buffer = "";
    this.eventType = "";
    this.data = [];
  }

  feed(text) {
    this.buffer += text;
    const lineEnd = /\r\n|\r|\n/g;
    let start = 0;
    let match;
    while ((match = lineEnd.exec(this.buffer)) !== null) {
      // A CR at the very end may be the first half of a CRLF: wait for the next read.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, match.index));
      start = lineEnd.lastIndex;
    }
    this.buffer = this.buffer.slice(start);
  }

  end() {
    if (this.buffer === "\r") this.line("");
    this.buffer = "";  // an unterminated last event is dropped, as EventSource does
  }

  line(line) {
    if (line === "") {
      if (this.data.length) this.onEvent(this.eventType || "message", this.data.join("\n"));
      this.eventType = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) {
      this.onComment(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.eventType = value;
    else if (field === "data") this.data.push(value);
  }
}

// ---------------------------------------------------------------------------------------------
// Requests: each client format's endpoint and body. Knobs for the fake upstream travel as
// x-fake-* headers, which the gateway forwards.
// ---------------------------------------------------------------------------------------------

const TOOLS = [
  { name: "get_weather", description: "Current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" },
      unit: { type: "string", enum: ["celsius", "fahrenheit"] } }, required: ["city"] } },
  { name: "get_time", description: "Current time in a time zone",
    parameters: { type: "object", properties: { timezone: { type: "string" } },
      required: ["timezone"] } },
];

function buildRequest(format, prompt, scenario) {
  const model = config.model;
  const tools = scenario === "tools";
  switch (format) {
    case "openai-chat":
      return { path: "/v1/chat/completions", body: {
        model, stream: true, messages: [{ role: "user", content: prompt }],
        ...(tools ? { tools: TOOLS.map((f) => ({ type: "function", function: f })) } : {}),
      } };
    case "openai-responses":
      return { path: "/v1/responses", body: {
        model, stream: true, input: prompt,
        ...(tools ? { tools: TOOLS.map((f) => ({ type: "function", ...f })) } : {}),
      } };
    case "anthropic-messages":
      return { path: "/v1/messages", body: {
        model, stream: true, max_tokens: 1024, messages: [{ role: "user", content: prompt }],
        ...(tools ? { tools: TOOLS.map((f) => ({ name: f.name, description: f.description,
          input_schema: f.parameters })) } : {}),
      } };
    case "openai-text":
      return { path: "/v1/completions", body: { model, stream: true, prompt, max_tokens: 256 } };
    case "anthropic-text":
      return { path: "/v1/complete", body: {
        model, stream: true, max_tokens_to_sample: 256,
        prompt: `\n\nHuman: ${prompt}\n\nAssistant:`,
      } };
    default:
      throw new Error(`unknown format ${format}`);
  }
}

function knobHeaders(scenario, failMidway) {
  const headers = {
    "x-fake-scenario": scenario,
    "x-fake-pace": String(Number($("pace").value) || 0),
    "x-fake-delay": String(Number($("delay").value) || 0),
  };
  if (failMidway) headers[`x-fake-${$("fault").value}`] = String(config.scenarios[scenario].midway);
  return headers;
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

class View {
  constructor() {
    this.started = performance.now();
    this.firstEvent = null;
    this.events = 0;
    this.beats = 0;
    this.tools = new Map();
    this.failed = false;
    this.finish = null;
    for (const id of ["output", "reasoning", "tools", "heartbeats", "log"]) $(id).textContent = "";
    $("reasoning-box").hidden = true;
    $("error").hidden = true;
    $("error").textContent = "";
    $("output").classList.add("streaming");
    this.setStatus("streaming", "waiting for the upstream…");
    this.timer = setInterval(() => this.updateStats(), 100);
  }

  elapsed() {
    return (performance.now() - this.started) / 1000;
  }

  setStatus(state, text) {
    $("status").dataset.state = state;
    $("status").textContent = text;
  }

  updateStats() {
    const parts = [`${this.elapsed().toFixed(1)} s`, `${this.events} events`];
    if (this.firstEvent !== null) parts.push(`first event after ${this.firstEvent.toFixed(2)} s`);
    parts.push(`${this.beats} heartbeat${this.beats === 1 ? "" : "s"}`);
    $("stats").textContent = parts.join(" · ");
  }

  log(kind, label, text) {
    const item = document.createElement("li");
    const time = document.createElement("span");
    time.className = "t";
    time.textContent = `${this.elapsed().toFixed(2)}s`;
    const name = document.createElement("span");
    name.className = kind;
    name.textContent = label;
    item.append(time, name, document.createTextNode(text ? ` ${text}` : ""));
    $("log").append(item);
    $("log").scrollTop = $("log").scrollHeight;
  }

  event(type, data) {
    this.events += 1;
    if (this.firstEvent === null) {
      this.firstEvent = this.elapsed();
      this.setStatus("streaming", "streaming");
    }
    this.log(type === "error" ? "ev err" : "ev", type === "message" ? "data:" : type, data);
  }

  heartbeat(comment) {
    this.beats += 1;
    const tick = document.createElement("span");
    tick.className = "tick";
    tick.textContent = `♥ ${this.elapsed().toFixed(1)}s`;
    tick.title = `: ${comment}`;
    $("heartbeats").append(tick);
    this.log("comment", `: ${comment}`, "(heartbeat comment, invisible to EventSource)");
  }

  text(delta) {
    $("output").append(document.createTextNode(delta));
  }

  reasoning(delta) {
    $("reasoning-box").hidden = false;
    $("reasoning").append(document.createTextNode(delta));
  }

  toolStart(key, name) {
    const box = document.createElement("div");
    box.className = "tool";
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = "tool call";
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = name;
    const args = document.createElement("span");
    args.className = "args";
    box.append(badge, label, document.createTextNode(" "), args);
    $("tools").append(box);
    this.tools.set(String(key), args);
  }

  toolArgs(key, delta) {
    if (!this.tools.has(String(key))) this.toolStart(key, "(tool)");
    this.tools.get(String(key)).append(document.createTextNode(delta));
  }

  error(message) {
    if (this.failed) return;
    this.failed = true;
    $("error").hidden = false;
    $("error").textContent = `⚠ Error: ${message}`;
  }

  done(note) {
    clearInterval(this.timer);
    this.updateStats();
    $("output").classList.remove("streaming");
    if (this.failed) this.setStatus("failed", "failed");
    else this.setStatus("done", note || `done${this.finish ? ` (${this.finish})` : ""}`);
  }
}

// Each client format's events, turned into view calls.
const READERS = {
  "openai-chat"(view, type, data) {
    const chunk = JSON.parse(data);
    if (chunk.error) return view.error(chunk.error.message);
    for (const choice of chunk.choices || []) {
      const delta = choice.delta || {};
      if (delta.reasoning_content) view.reasoning(delta.reasoning_content);
      if (delta.content) view.text(delta.content);
      for (const call of delta.tool_calls || []) {
        if (call.function && call.function.name) view.toolStart(call.index, call.function.name);
        if (call.function && call.function.arguments) view.toolArgs(call.index, call.function.arguments);
      }
      if (choice.finish_reason) view.finish = choice.finish_reason;
    }
  },
  "openai-text"(view, type, data) {
    const chunk = JSON.parse(data);
    if (chunk.error) return view.error(chunk.error.message);
    for (const choice of chunk.choices || []) {
      if (choice.text) view.text(choice.text);
      if (choice.finish_reason) view.finish = choice.finish_reason;
    }
  },
  "openai-responses"(view, type, data) {
    const event = JSON.parse(data);
    switch (event.type) {
      case "response.output_text.delta": return view.text(event.delta);
      case "response.reasoning_summary_text.delta":
      case "response.reasoning_text.delta": return view.reasoning(event.delta);
      case "response.output_item.added":
        if (event.item && event.item.type === "function_call") {
          view.toolStart(event.output_index, event.item.name);
        }
        return undefined;
      case "response.function_call_arguments.delta": return view.toolArgs(event.output_index, event.delta);
      case "response.completed":
      case "response.incomplete":
        view.finish = event.response.status;
        return undefined;
      case "response.failed":
        return view.error((event.response.error || {}).message || "response failed");
      case "error":
        return view.error(event.message || (event.error || {}).message);
      default: return undefined;
    }
  },
  "anthropic-messages"(view, type, data) {
    const event = JSON.parse(data);
    switch (event.type) {
      case "content_block_start":
        if (event.content_block.type === "tool_use") view.toolStart(event.index, event.content_block.name);
        return undefined;
      case "content_block_delta": {
        const delta = event.delta;
        if (delta.type === "text_delta") view.text(delta.text);
        else if (delta.type === "thinking_delta") view.reasoning(delta.thinking);
        else if (delta.type === "input_json_delta") view.toolArgs(event.index, delta.partial_json);
        return undefined;
      }
      case "message_delta":
        view.finish = event.delta.stop_reason;
        return undefined;
      case "error": return view.error(event.error.message);
      default: return undefined;
    }
  },
  "anthropic-text"(view, type, data) {
    const event = JSON.parse(data);
    if (event.type === "error") return view.error(event.error.message);
    if (event.completion) view.text(event.completion);
    if (event.stop_reason) view.finish = event.stop_reason;
    return undefined;
  },
};

// ---------------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------------

let controller = null;

function currentRequest(failMidway) {
  const format = $("format").value;
  const scenario = $("scenario").value;
  const { path, body } = buildRequest(format, $("prompt").value, scenario);
  return { format, path, body, headers: knobHeaders(scenario, failMidway) };
}

async function send(failMidway) {
  if (controller) controller.abort();
  const request = currentRequest(failMidway);
  const view = new View();
  const mine = new AbortController();
  controller = mine;
  $("stop").disabled = false;
  const read = READERS[request.format];
  const parser = new SSEParser(
    (type, data) => {
      view.event(type, data);
      if (data === "[DONE]") return;  // the OpenAI streams' terminator: nothing to render
      try {
        read(view, type, data);
      } catch (exc) {
        view.log("ev err", "unreadable event", String(exc));
      }
    },
    (comment) => view.heartbeat(comment),
  );
  let note = null;
  try {
    const response = await fetch(request.path, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream", ...request.headers },
      body: JSON.stringify(request.body),
      signal: mine.signal,
    });
    if (!response.ok || !(response.headers.get("content-type") || "").includes("text/event-stream")) {
      const text = await response.text();
      view.log("ev err", `HTTP ${response.status}`, text);
      let message = text;
      try {
        const body = JSON.parse(text);
        message = (body.error && body.error.message) || text;
      } catch (exc) { /* not JSON */ }
      view.error(`HTTP ${response.status}: ${message}`);
    } else {
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
      parser.end();
    }
  } catch (exc) {
    if (exc.name === "AbortError") note = "stopped";
    else view.error(`the connection failed: ${exc.message}`);
  } finally {
    view.done(note);
    if (controller === mine) {
      controller = null;
      $("stop").disabled = true;
    }
  }
}

function showCurl() {
  const request = currentRequest(false);
  const headers = Object.entries(request.headers).map(([k, v]) => `  -H '${k}: ${v}' \\\n`).join("");
  $("curl").textContent =
    `curl -N ${location.origin}${request.path} \\\n` +
    "  -H 'content-type: application/json' \\\n" + headers +
    `  -d '${JSON.stringify(request.body).replace(/'/g, "'\\''")}'`;
}

$("controls").addEventListener("submit", (event) => {
  event.preventDefault();
  send(false);
});
$("fail").addEventListener("click", () => send(true));
$("stop").addEventListener("click", () => controller && controller.abort());
$("controls").addEventListener("input", showCurl);
$("controls").addEventListener("change", showCurl);
$("hb-interval").textContent =
  config.heartbeatInterval === null ? "never (heartbeat off)" : `${config.heartbeatInterval} s`;
showCurl();
