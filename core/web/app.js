// picbeam's web app: upload, gallery, hosts. Plain ES module, no build step, nothing from elsewhere.
// Every API call carries the token this page was served with; the server refuses calls without it.

const TOKEN = document.querySelector('meta[name="picbeam-token"]').content;
const PARALLEL_UPLOADS = 3;
const $ = (selector) => document.querySelector(selector);

let state = { hosts: [], formats: [], default_host: "" };
let galleryPage = 1;

// -- helpers -----------------------------------------------------------------------------------
function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

async function api(path, body) {
  const options = { headers: { "X-Picbeam-Token": TOKEN }, credentials: "same-origin" };
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const answer = await fetch(path, options);
  const data = await answer.json().catch(() => ({ message: `HTTP ${answer.status}` }));
  if (!answer.ok && data.message) throw new Error(data.message);
  return data;
}

function toast(text) {
  const box = $("#toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 1800);
}

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    toast(`Copied ${what}`);
  } catch (error) {
    toast(`Cannot copy: ${error.message}`);
  }
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function custom(template, row) {
  return template.replace(/\{(url|name|host)\}/g, (_, key) => row[key] ?? "");
}

// -- views ---------------------------------------------------------------------------------------
function show(view) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === view);
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== view;
  if (view === "gallery") loadGallery();
  if (view === "hosts") renderHosts();
  history.replaceState(null, "", `#${view}`);
}

// -- upload --------------------------------------------------------------------------------------
const waiting = [];
let running = 0;

function hostProcess() {
  const host = state.hosts.find((h) => h.name === $("#host").value);
  return { ...state.process, ...(host ? host.process : {}) };
}

function applyHostOptions() {
  const process = hostProcess();
  $("#strip").checked = !process.keep_metadata;
  $("#convert").value = process.convert || "";
  $("#max-width").value = process.max_width || "";
}

function uploadQuery() {
  const query = new URLSearchParams({ host: $("#host").value, keep_metadata: $("#strip").checked ? "0" : "1" });
  if ($("#convert").value) query.set("convert", $("#convert").value);
  if ($("#max-width").value) query.set("max_width", $("#max-width").value);
  return query;
}

function enqueue(files) {
  const query = uploadQuery();
  for (const file of files) {
    const bar = element("progress", { max: "100", value: "0" });
    const result = element("span", { class: "result" }, "waiting");
    const row = element("li", { class: "item" }, element("span", { class: "name" }, file.name || "pasted image"), bar, result);
    $("#queue").prepend(row);
    waiting.push({ file, query, bar, result, row });
  }
  pump();
}

function pump() {
  while (running < PARALLEL_UPLOADS && waiting.length) {
    running += 1;
    send(waiting.shift()).finally(() => { running -= 1; pump(); });
  }
}

function send(job) {
  // XMLHttpRequest, not fetch: it reports upload progress.
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("files", job.file, job.file.name || "pasted.png");
    const request = new XMLHttpRequest();
    request.open("POST", `/api/upload?${job.query}`);
    request.setRequestHeader("X-Picbeam-Token", TOKEN);
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) job.bar.value = Math.round((event.loaded / event.total) * 100);
      job.result.textContent = "uploading";
    };
    request.onload = () => {
      let data = {};
      try { data = JSON.parse(request.responseText); } catch { data = { message: `HTTP ${request.status}` }; }
      const item = (data.items || [])[0];
      job.bar.value = 100;
      if (item && item.url) done(job, item);
      else failed(job, (item && item.error) || data.message || `HTTP ${request.status}`);
      resolve();
    };
    request.onerror = () => { failed(job, "the server did not answer"); resolve(); };
    request.send(form);
  });
}

function done(job, item) {
  const format = $("#format").value;
  const text = item.copy[format] || item.url;
  job.row.classList.add("ok");
  job.result.replaceChildren(
    element("a", { href: item.url, target: "_blank", rel: "noreferrer noopener", class: "url" }, item.url),
    element("button", { type: "button", class: "copy", onclick: () => copy(text, format) }, `Copy ${format}`),
    item.reused ? element("span", { class: "note" }, "already uploaded") : "",
  );
}

function failed(job, message) {
  job.row.classList.add("failed");
  job.result.replaceChildren(element("span", { class: "error" }, message));
}

async function filesFromEntry(entry) {
  if (entry.isFile) return [await new Promise((resolve, reject) => entry.file(resolve, reject))];
  const reader = entry.createReader();
  const found = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const child of batch) found.push(...(await filesFromEntry(child)));
  }
  return found;
}

async function dropped(event) {
  event.preventDefault();
  $("#drop").classList.remove("over");
  const items = [...(event.dataTransfer.items || [])];
  const entries = items.map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  if (entries.length && entries.every(Boolean) && entries.some((entry) => entry.isDirectory)) {
    const files = [];
    for (const entry of entries) files.push(...(await filesFromEntry(entry)));
    enqueue(files);
  } else {
    enqueue([...event.dataTransfer.files]);
  }
}

// -- gallery -------------------------------------------------------------------------------------
let searchTimer;

async function loadGallery() {
  const query = new URLSearchParams({ page: String(galleryPage) });
  for (const [key, selector] of [["q", "#search"], ["host", "#host-filter"], ["from", "#from"], ["to", "#to"]]) {
    if ($(selector).value) query.set(key, $(selector).value);
  }
  const started = performance.now();
  let data;
  try {
    data = await api(`/api/uploads?${query}`);
  } catch (error) {
    $("#gallery-status").textContent = error.message;
    return;
  }
  if (!data.ledger) {
    $("#gallery-status").textContent = "This server runs without a ledger (--no-ledger): there is no gallery.";
    return;
  }
  $("#grid").replaceChildren(...data.rows.map(card));
  $("#page-info").textContent = `page ${data.page} of ${data.pages}`;
  $("#prev").disabled = data.page <= 1;
  $("#next").disabled = data.page >= data.pages;
  $("#gallery-status").textContent = `${data.total} uploads`;
  document.body.dataset.galleryMs = String(Math.round(performance.now() - started));
}

function card(row) {
  const template = () => $("#template").value;
  const buttons = [
    ...state.formats.filter((format) => row.copy[format] !== undefined)
      .map((format) => element("button", { type: "button", class: "copy", "data-format": format,
        onclick: () => copy(row.copy[format], format) }, format === "url" ? "URL" : format)),
    element("button", { type: "button", class: "copy", "data-format": "custom",
      onclick: () => copy(custom(template(), row), "custom") }, "custom"),
  ];
  const remove = element("button", { type: "button", class: "delete" }, "Delete");
  const node = element("figure", { class: row.deleted ? "card deleted" : "card", "data-id": String(row.id) },
    element("a", { href: row.url, target: "_blank", rel: "noreferrer noopener" },
      thumbnail(row)),
    element("figcaption", {},
      element("span", { class: "name", title: row.name }, row.name),
      element("span", { class: "meta" }, `${row.host} · ${row.created.slice(0, 16).replace("T", " ")} · ${size(row.bytes)}`),
      element("span", { class: "buttons" }, ...buttons, remove),
      element("span", { class: "state" }, row.deleted ? "deleted" : "")));
  remove.disabled = row.deleted;
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete ${row.name} from ${row.host}? This removes it from the host.`)) return;
    remove.disabled = true;
    try {
      await api("/api/delete", { id: row.id });
      node.classList.add("deleted");
      node.querySelector(".state").textContent = "deleted";
      toast(`Deleted ${row.name}`);
    } catch (error) {
      remove.disabled = false;
      node.querySelector(".state").textContent = error.message;
    }
  });
  return node;
}

function thumbnail(row) {
  const image = element("img", { src: row.thumbnail, alt: row.name, loading: "lazy", referrerpolicy: "no-referrer",
    decoding: "async" });
  image.addEventListener("error", () => image.replaceWith(element("span", { class: "no-preview" }, "no preview")));
  return image;
}

// -- hosts ---------------------------------------------------------------------------------------
function renderHosts() {
  const list = $("#host-list");
  list.replaceChildren(...state.hosts.map((host) => {
    const settings = element("dl", {});
    for (const [key, value] of Object.entries(host.settings)) {
      if (["name", "description"].includes(key) || value === null || value === "") continue;
      settings.append(element("dt", {}, key), element("dd", {}, typeof value === "object" ? JSON.stringify(value) : String(value)));
    }
    const outcome = element("p", { class: "check-result" });
    const check = element("button", { type: "button", class: "check" }, "Check");
    check.addEventListener("click", async () => {
      outcome.textContent = "checking...";
      try {
        const answer = await api("/api/check", { host: host.name });
        outcome.textContent = answer.message;
        outcome.className = answer.ok ? "check-result ok" : "check-result failed";
      } catch (error) {
        outcome.textContent = error.message;
      }
    });
    return element("article", { class: "host", "data-host": host.name },
      element("h2", {}, host.name, host.name === state.default_host ? element("span", { class: "note" }, " default") : ""),
      element("p", {}, host.description || `${host.plugin} host`),
      element("p", { class: "meta" }, `from ${host.source}`), settings, check, outcome);
  }), ...state.broken.map((broken) => element("article", { class: "host failed" },
    element("h2", {}, broken.name), element("p", { class: "error" }, broken.error))));
}

// -- start ----------------------------------------------------------------------------------------
async function start() {
  state = await api("/api/state");
  for (const host of state.hosts) {
    $("#host").append(element("option", { value: host.name }, host.name));
    $("#host-filter").append(element("option", { value: host.name }, host.name));
  }
  $("#host").value = state.default_host;
  for (const format of state.formats) $("#format").append(element("option", { value: format }, format));
  $("#format").value = localStorage.getItem("picbeam.format") || "url";
  $("#template").value = localStorage.getItem("picbeam.template") || $("#template").value;
  applyHostOptions();

  $("#host").addEventListener("change", applyHostOptions);
  $("#format").addEventListener("change", () => localStorage.setItem("picbeam.format", $("#format").value));
  $("#template").addEventListener("change", () => localStorage.setItem("picbeam.template", $("#template").value));
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", dropped);
  document.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (files.length) enqueue(files);
  });
  for (const picker of [$("#picker"), $("#folder-picker")]) {
    picker.addEventListener("change", () => { enqueue([...picker.files]); picker.value = ""; });
  }
  $("#search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { galleryPage = 1; loadGallery(); }, 200);
  });
  for (const selector of ["#host-filter", "#from", "#to"]) {
    $(selector).addEventListener("change", () => { galleryPage = 1; loadGallery(); });
  }
  $("#prev").addEventListener("click", () => { galleryPage -= 1; loadGallery(); });
  $("#next").addEventListener("click", () => { galleryPage += 1; loadGallery(); });
  const view = location.hash.slice(1);
  show(["upload", "gallery", "hosts"].includes(view) ? view : "upload");
  document.body.dataset.ready = "true";
}

start().catch((error) => { document.body.dataset.ready = "error"; toast(error.message); });
