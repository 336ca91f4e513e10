// APIQ dashboard: the actions of the server-rendered pages, as fetch() calls of the REST API.
// The session is the HttpOnly cookie; unsafe requests repeat the CSRF token the layout
// renders into <meta name="csrf-token">. Text from the server is set with textContent only.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
const FINAL = new Set(["succeeded", "failed", "cancelled"]);

function csrf() {
  const meta = $('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// One API call; resolves to the envelope's data, rejects with its sanitized message.
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let envelope = null;
  try {
    envelope = await response.json();
  } catch (_) {
    envelope = null;
  }
  if (response.ok && envelope && envelope.success) return envelope.data;
  const error = envelope && envelope.error ? envelope.error : null;
  const message = error ? error.message : `Request failed (${response.status})`;
  const failure = new Error(message);
  failure.status = response.status;
  failure.code = error ? error.code : "http_error";
  throw failure;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function notify(message, isError = false) {
  const notice = $("#notice");
  if (!notice) return;
  notice.textContent = message;
  notice.classList.toggle("is-error", isError);
}

function formError(form, message) {
  const target = $("#form-error", form) || $("#form-error");
  if (target) target.textContent = message || "";
}

function busy(button, on) {
  if (!button) return;
  button.disabled = on;
  button.setAttribute("aria-busy", on ? "true" : "false");
}

// A value as people read it: a list of objects as a table, anything else as JSON.
function renderValue(value) {
  if (Array.isArray(value) && value.length && value.every((v) => v && typeof v === "object" && !Array.isArray(v))) {
    const columns = Object.keys(value[0]).slice(0, 8);
    const wrap = el("div", null, "scroll");
    wrap.tabIndex = 0;
    wrap.setAttribute("role", "region");
    wrap.setAttribute("aria-label", "Result table");
    const table = el("table");
    const head = table.createTHead().insertRow();
    for (const column of columns) {
      const th = el("th", column);
      th.scope = "col";
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const item of value.slice(0, 100)) {
      const row = body.insertRow();
      for (const column of columns) {
        const cell = item[column];
        row.insertCell().textContent =
          cell !== null && typeof cell === "object" ? JSON.stringify(cell) : cell ?? "";
      }
    }
    wrap.appendChild(table);
    return wrap;
  }
  return el("pre", JSON.stringify(value, null, 2), "json");
}

// ---- accounts -------------------------------------------------------------------------

function safeNext(target) {
  return target && target.startsWith("/") && !target.startsWith("//") && !target.includes("\\")
    ? target
    : "/connections";
}

function bindAccount() {
  const login = $("#login-form");
  if (login) {
    login.addEventListener("submit", async (event) => {
      event.preventDefault();
      formError(login, "");
      const button = $("button[type=submit]", login);
      busy(button, true);
      try {
        await api("POST", "/api/auth/login", {
          email: login.email.value,
          password: login.password.value,
        });
        window.location.assign(safeNext(login.dataset.next));
      } catch (error) {
        formError(login, error.message);
        busy(button, false);
      }
    });
  }
  const register = $("#register-form");
  if (register) {
    register.addEventListener("submit", async (event) => {
      event.preventDefault();
      formError(register, "");
      const button = $("button[type=submit]", register);
      busy(button, true);
      const credentials = { email: register.email.value, password: register.password.value };
      try {
        await api("POST", "/api/auth/register", credentials);
        await api("POST", "/api/auth/login", credentials);
        window.location.assign("/connections");
      } catch (error) {
        formError(register, error.message);
        busy(button, false);
      }
    });
  }
  const logout = $("#logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      try {
        await api("POST", "/api/auth/logout");
      } finally {
        window.location.assign("/login");
      }
    });
  }
}

// ---- connections ----------------------------------------------------------------------

async function connectOAuth(id, scheme) {
  const started = await api("POST", `/api/apis/${encodeURIComponent(id)}/oauth/start`, scheme ? { scheme } : {});
  window.location.assign(started.authorizationUrl);
}

const ACTIONS = {
  async test(button) {
    const result = await api("POST", `/api/apis/${encodeURIComponent(button.dataset.id)}/test`);
    notify(`Test: ${result.reachable ? "reachable" : "unreachable"}, auth ${result.authOk ? "ok" : "not ok"} (${result.status}). ${result.detail}`, !result.reachable || !result.authOk);
  },
  async refresh(button) {
    const result = await api("POST", `/api/apis/${encodeURIComponent(button.dataset.id)}/refresh`);
    notify(`Refreshed ${result.name}: ${result.endpointCount} endpoints.`);
    window.setTimeout(() => window.location.reload(), 800);
  },
  async delete(button) {
    if (!window.confirm(`Delete the connection ${button.dataset.name}?`)) return;
    await api("DELETE", `/api/apis/${encodeURIComponent(button.dataset.id)}`);
    window.location.assign("/connections");
  },
  async oauth(button) {
    await connectOAuth(button.dataset.id, button.dataset.scheme);
  },
  async "set-role"(button) {
    const select = $(`select[data-role-for="${CSS.escape(button.dataset.id)}"]`);
    const user = await api("PATCH", `/api/admin/users/${encodeURIComponent(button.dataset.id)}`, { role: select.value });
    notify(`${user.email} is now ${user.role}.`);
  },
  async "toggle-user"(button) {
    const disabled = button.dataset.disabled !== "true";
    const user = await api("PATCH", `/api/admin/users/${encodeURIComponent(button.dataset.id)}`, { disabled });
    notify(`${user.email} is now ${user.disabled ? "disabled" : "active"}.`);
    window.setTimeout(() => window.location.reload(), 800);
  },
  async purge(button) {
    const url = button.dataset.url;
    const query = url ? `?url=${encodeURIComponent(url)}` : "";
    const result = await api("DELETE", `/api/admin/spec-cache${query}`);
    notify(`Purged ${result.purged} cached spec${result.purged === 1 ? "" : "s"}.`);
    window.setTimeout(() => window.location.reload(), 800);
  },
  async "run-workflow"(button) {
    const started = await api("POST", `/api/workflows/${encodeURIComponent(button.dataset.id)}/execute`, { approve: true });
    window.location.assign(`/executions/${encodeURIComponent(started.id)}`);
  },
  async "export-workflow"(button) {
    const document_ = await api("GET", `/api/workflows/${encodeURIComponent(button.dataset.id)}/arazzo`);
    const blob = new Blob([JSON.stringify(document_, null, 2)], { type: "application/json" });
    const link = el("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${button.dataset.name}.arazzo.json`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    notify("Arazzo document downloaded.");
  },
  async "delete-workflow"(button) {
    if (!window.confirm(`Delete the workflow ${button.dataset.name}?`)) return;
    await api("DELETE", `/api/workflows/${encodeURIComponent(button.dataset.id)}`);
    window.location.assign("/workflows");
  },
  async "cancel-execution"(button) {
    const state = await api("POST", `/api/executions/${encodeURIComponent(button.dataset.id)}/cancel`);
    notify(`Execution ${state.status}.`);
    window.setTimeout(() => window.location.reload(), 800);
  },
};

function bindActions() {
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || !ACTIONS[button.dataset.action]) return;
    busy(button, true);
    try {
      await ACTIONS[button.dataset.action](button);
    } catch (error) {
      notify(error.message, true);
    } finally {
      busy(button, false);
    }
  });
}

function readFile(input) {
  return new Promise((resolve, reject) => {
    const file = input.files && input.files[0];
    if (!file) return reject(new Error("Choose a file first."));
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(new Error("The file could not be read."));
    reader.readAsText(file);
  });
}

function bindConnectionForm() {
  const form = $("#connection-form");
  if (!form) return;
  const showSource = () => {
    const source = form.source.value;
    for (const node of $$("[data-source]", form)) node.hidden = node.dataset.source !== source;
  };
  const showAuth = () => {
    const kind = form.authKind.value;
    for (const node of $$("[data-auth]", form)) node.hidden = !node.dataset.auth.split(" ").includes(kind);
  };
  for (const radio of $$("input[name=source]", form)) radio.addEventListener("change", showSource);
  form.authKind.addEventListener("change", showAuth);
  showSource();
  showAuth();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError(form, "");
    const button = $("#connection-submit");
    busy(button, true);
    try {
      const body = { name: form.name.value.trim() };
      if (form.source.value === "file") body.specContent = await readFile(form.specFile);
      else body.specUrl = form.specUrl.value.trim();
      if (form.baseUrl.value.trim()) body.server = { baseUrl: form.baseUrl.value.trim() };
      const kind = form.authKind.value;
      const scheme = form.scheme.value.trim();
      if (kind !== "none" && !scheme) throw new Error("Name the security scheme the credential is for.");
      if (kind === "apiKey") body.credentials = { [scheme]: { value: form.apiKey.value } };
      if (kind === "bearer") body.credentials = { [scheme]: { value: form.token.value } };
      if (kind === "basic") body.credentials = { [scheme]: { username: form.username.value, password: form.basicPassword.value } };
      if (kind === "oauth2") {
        const client = { clientId: form.clientId.value.trim() };
        if (form.clientSecret.value) client.clientSecret = form.clientSecret.value;
        if (form.authorizationUrl.value.trim()) client.authorizationUrl = form.authorizationUrl.value.trim();
        if (form.tokenUrl.value.trim()) client.tokenUrl = form.tokenUrl.value.trim();
        const scopes = form.scopes.value.split(/\s+/).filter(Boolean);
        if (scopes.length) client.scopes = scopes;
        body.oauth = { [scheme]: client };
      }
      const created = await api("POST", "/api/apis", body);
      if (kind === "oauth2") await connectOAuth(created.id, scheme);
      else window.location.assign(`/connections/${encodeURIComponent(created.id)}`);
    } catch (error) {
      formError(form, error.message);
      busy(button, false);
    }
  });
}

// ---- workflows ------------------------------------------------------------------------

function bindImport() {
  const form = $("#import-form");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError(form, "");
    try {
      const document_ = await readFile(form.document);
      const created = await api("POST", "/api/workflows/import", { name: form.name.value.trim(), document: document_ });
      window.location.assign(`/workflows/${encodeURIComponent(created.id)}`);
    } catch (error) {
      formError(form, error.message);
    }
  });
}

// ---- chat -----------------------------------------------------------------------------

function bindChat() {
  const form = $("#chat-form");
  if (!form) return;
  let plan = null;
  const section = $("#plan");
  const run = $("#run");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError(form, "");
    const button = $("#plan-button");
    busy(button, true);
    section.hidden = true;
    run.hidden = true;
    try {
      plan = await api("POST", "/api/chat", { message: form.message.value });
      showPlan(plan);
    } catch (error) {
      formError(form, error.message);
    } finally {
      busy(button, false);
    }
  });
  // Enter sends, Shift+Enter adds a line: the chat works from the keyboard alone.
  form.message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  function showPlan(found) {
    const body = $("#plan-steps tbody");
    body.replaceChildren();
    for (const step of found.steps) {
      const row = body.insertRow();
      if (step.changesState) row.className = "changes-row";
      row.insertCell().textContent = step.id;
      const method = row.insertCell();
      method.appendChild(el("span", step.method, `method method-${step.method.toLowerCase()}`));
      const url = row.insertCell();
      url.className = "wrap";
      url.appendChild(el("code", step.url));
      row.insertCell().appendChild(el("pre", JSON.stringify(step.arguments, null, 2), "json"));
      row.insertCell().appendChild(step.changesState ? el("strong", "Yes: changes state", "changes") : el("span", "No"));
    }
    const changing = found.steps.filter((s) => s.changesState).length;
    $("#plan-summary").textContent =
      `${found.steps.length} step${found.steps.length === 1 ? "" : "s"}; ` +
      (changing ? `${changing} change${changing === 1 ? "s" : ""} state and need${changing === 1 ? "s" : ""} your approval.` : "read-only.");
    $("#approve").textContent = found.needsApproval ? "Approve and run" : "Run";
    $("#workflow-name").value = "";
    section.hidden = false;
    $("#plan-heading").focus();
  }

  $("#cancel-plan").addEventListener("click", () => {
    plan = null;
    section.hidden = true;
    notify("Plan cancelled: nothing was sent.");
    form.message.focus();
  });

  $("#save-workflow").addEventListener("click", async () => {
    if (!plan) return;
    try {
      const name = $("#workflow-name").value.trim() || `plan-${plan.id.slice(0, 8)}`;
      const saved = await api("POST", "/api/workflows", { name, planId: plan.id, description: plan.request.slice(0, 200) });
      notify(`Saved as workflow ${saved.name}.`);
    } catch (error) {
      notify(error.message, true);
    }
  });

  $("#approve").addEventListener("click", async () => {
    if (!plan) return;
    const button = $("#approve");
    busy(button, true);
    try {
      const started = await api("POST", "/api/chat/execute", { planId: plan.id, approve: plan.needsApproval });
      follow(started.id);
    } catch (error) {
      notify(error.message, true);
    } finally {
      busy(button, false);
    }
  });

  function follow(executionId) {
    const progress = $("#progress");
    const status = $("#run-status");
    const results = $("#results");
    progress.replaceChildren();
    results.replaceChildren();
    status.textContent = "Starting…";
    run.hidden = false;
    section.hidden = true;
    $("#run-heading").focus();
    const source = new EventSource(`/api/executions/${encodeURIComponent(executionId)}/events`);
    let finished = false;
    const add = (event) => {
      let data = {};
      try {
        data = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      const step = data.stepId ? `${data.stepId}: ` : "";
      const item = el("li", `${step}${data.kind}${describe(data)}`, `event event-${data.kind.replace(/\./g, "-")}`);
      progress.appendChild(item);
      status.textContent = `${step}${data.kind}`;
      if (data.kind === "execution.finished") done();
    };
    const kinds = ["execution.started", "step.started", "step.succeeded", "step.failed", "step.retrying",
      "step.skipped", "step.attempt", "execution.finished", "execution.cancelled", "message"];
    for (const kind of kinds) source.addEventListener(kind, add);
    source.onerror = () => {
      // The stream ends after execution.finished; on any other break, read the final state.
      if (!finished) done();
    };
    async function done() {
      if (finished) return;
      finished = true;
      source.close();
      try {
        let state = await api("GET", `/api/executions/${encodeURIComponent(executionId)}`);
        for (let i = 0; i < 50 && !FINAL.has(state.status); i += 1) {
          await new Promise((resolve) => window.setTimeout(resolve, 200));
          state = await api("GET", `/api/executions/${encodeURIComponent(executionId)}`);
        }
        showResults(state);
      } catch (error) {
        status.textContent = error.message;
      }
    }
  }

  // What an event adds to its kind: the call and its HTTP status, or how the run ended.
  function describe(data) {
    const detail = data.detail || {};
    const request = detail.request;
    if (data.kind === "step.succeeded" && request) {
      const ms = typeof request.duration_ms === "number" ? `, ${Math.round(request.duration_ms)} ms` : "";
      return ` — ${request.method} ${request.url} → HTTP ${request.status}${ms}`;
    }
    if (data.kind === "execution.finished" && detail.status) return ` — ${detail.status}`;
    if (detail.error) return ` — ${detail.error}`;
    return "";
  }

  function showResults(state) {
    const status = $("#run-status");
    const results = $("#results");
    status.textContent = `Execution ${state.status}.` + (state.error ? ` ${state.error}` : "");
    status.className = state.status === "succeeded" ? "ok" : "error";
    for (const step of state.steps) {
      const box = el("section", null, "result");
      const heading = el("h3", `${step.id}: ${step.status}`);
      box.appendChild(heading);
      if (step.request) {
        box.appendChild(el("p", `${step.request.method} ${step.request.url} → ${step.request.status ?? "no response"}`, "wrap"));
      }
      if (step.error) box.appendChild(el("p", step.error, "error"));
      for (const [name, value] of Object.entries(step.outputs || {})) {
        box.appendChild(el("h4", name));
        box.appendChild(renderValue(value));
      }
      results.appendChild(box);
    }
    const link = el("a", "Open the execution");
    link.href = `/executions/${encodeURIComponent(state.id)}`;
    results.appendChild(el("p")).appendChild(link);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  bindAccount();
  bindActions();
  bindConnectionForm();
  bindImport();
  bindChat();
});
