// samscope web app: the page over the JSON API under /api/ (plain JavaScript, no build step).
"use strict";

const IMAGE_SUFFIXES = [".tif", ".tiff", ".png", ".jpg", ".jpeg"];
const METRIC_NAMES = {
  n_objects: "Count", mean_area_um2: "Mean area (µm²)", mean_area_px: "Mean area (px)",
  confluency: "Confluency", mean_neighbours: "Neighbours per object",
  mean_neighbours_interior: "Neighbours (objects off the border)",
  mean_aspect_ratio: "Mean aspect ratio", mean_solidity: "Mean solidity",
  mean_intensity: "Mean intensity", n_dot: "Dots", n_rod: "Rods",
  dot_count_fraction: "Dots (fraction of objects)", rod_count_fraction: "Rods (fraction of objects)",
  dot_area_fraction: "Dot area fraction", rod_area_fraction: "Rod area fraction",
  mean_dot_area_um2: "Mean dot area (µm²)", mean_rod_area_um2: "Mean rod area (µm²)",
  pixel_size_nm: "Pixel size (nm)", units: "Units", plane: "Plane",
};

const state = {
  session: null, images: [], selected: null, version: -1, plane: 0,
  view: { scale: 1, x: 0, y: 0 }, ids: null, width: 0, height: 0,
  base: null, overlay: null, style: "outlines", opacity: 0.9, editing: false, busy: false,
  pollTimer: null, uploading: false,
};

const $ = (id) => document.getElementById(id);

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  const type = response.headers.get("content-type") || "";
  const body = type.includes("application/json") ? await response.json() : null;
  if (!response.ok) {
    const error = new Error((body && body.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.body = body;
    throw error;
  }
  return body;
}

// ---- session ---------------------------------------------------------------------------------

async function openSession(forceNew = false) {
  let sid = forceNew ? null : localStorage.getItem("samscope.session");
  if (sid) {
    try {
      await api(`/api/sessions/${sid}`);
    } catch (err) {
      if (err.status !== 404) throw err;
      sid = null;
    }
  }
  if (!sid) {
    sid = (await api("/api/sessions", { method: "POST" })).session;
    localStorage.setItem("samscope.session", sid);
  }
  state.session = sid;
  state.selected = null;
  $("session-info").textContent = `session ${sid.slice(0, 6)}…`;
  $("download-all").href = `/api/sessions/${sid}/download`;
  $("viewer").hidden = true;
  $("viewer-empty").hidden = false;
  await refresh();
}

async function loadInfo() {
  const info = await api("/api/info");
  const model = $("model");
  model.innerHTML = "";
  for (const m of info.models) {
    const opt = new Option(m.name, m.name, m.name === info.default_model, m.name === info.default_model);
    opt.title = m.description;
    model.add(opt);
  }
  const mode = $("mode");
  mode.innerHTML = "";
  for (const m of info.modes) mode.add(new Option(m === "auto" ? "auto (the model's default)" : m, m));
}

// ---- queue -----------------------------------------------------------------------------------

async function refresh() {
  if (!state.session) return;
  let data;
  try {
    data = await api(`/api/sessions/${state.session}`);
  } catch (err) {
    setStatus(`cannot reach the server: ${err.message}`, true);
    schedulePoll(5000);
    return;
  }
  state.images = data.images;
  renderQueue(data.counts);
  const active = data.counts.queued + data.counts.processing > 0;
  $("download-all").classList.toggle("disabled", data.counts.done === 0);
  if (state.selected) {
    const im = state.images.find((i) => i.id === state.selected);
    if (im) await showImage(im);
  }
  schedulePoll(active || state.uploading ? 700 : 5000);
}

function schedulePoll(ms) {
  clearTimeout(state.pollTimer);
  state.pollTimer = setTimeout(refresh, ms);
}

function stateText(im) {
  if (im.state === "processing") return `processing ${Math.round(im.progress * 100)} %`;
  if (im.state === "done") return `done: ${im.n_objects} object(s)${im.seconds ? `, ${im.seconds.toFixed(1)} s` : ""}`;
  return im.state;
}

function renderQueue(counts) {
  const list = $("queue");
  const parts = Object.entries(counts).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`);
  $("counts").textContent = parts.length ? `(${parts.join(", ")})` : "";
  const existing = new Map([...list.children].map((li) => [li.dataset.id, li]));
  state.images.forEach((im, index) => {
    let li = existing.get(im.id);
    if (!li) {
      li = document.createElement("li");
      li.dataset.id = im.id;
      li.innerHTML = '<div class="name"></div><div class="state"></div><progress max="1" hidden></progress><div class="reason"></div>';
      li.addEventListener("click", () => select(im.id));
    }
    if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
    li.dataset.state = im.state;
    li.classList.toggle("selected", im.id === state.selected);
    const stored = im.name.replace(/(\.ome)?\.(tiff?|png|jpe?g)$/i, "") === im.stem ? "" : ` → ${im.stem}`;
    li.querySelector(".name").textContent = im.name + stored + (im.condition !== "all" ? `  (${im.condition})` : "");
    li.querySelector(".state").textContent = stateText(im);
    const bar = li.querySelector("progress");
    bar.hidden = im.state !== "processing";
    bar.value = im.progress;
    li.querySelector(".reason").textContent = im.state === "failed" ? im.error || "" : "";
  });
  for (const [id, li] of existing) if (!state.images.some((i) => i.id === id)) li.remove();
}

async function select(id) {
  state.selected = id;
  state.version = -1;
  state.plane = 0;
  for (const li of $("queue").children) li.classList.toggle("selected", li.dataset.id === id);
  state.base = null; // nothing of the previous image stays on screen while this one loads
  state.overlay = null;
  state.ids = null;
  clearTables();
  draw();
  const im = state.images.find((i) => i.id === id);
  if (im) await showImage(im, true);
}

// ---- uploads ---------------------------------------------------------------------------------

function isImage(name) {
  const low = name.toLowerCase();
  return IMAGE_SUFFIXES.some((s) => low.endsWith(s));
}

async function entriesToFiles(entry, path, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: path + file.name });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    let batch;
    do {
      batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      for (const child of batch) await entriesToFiles(child, `${path}${entry.name}/`, out);
    } while (batch.length);
  }
}

async function droppedFiles(dataTransfer) {
  const items = [...(dataTransfer.items || [])];
  const entries = items.map((it) => (it.webkitGetAsEntry ? it.webkitGetAsEntry() : null));
  if (entries.length && entries.every((e) => e)) {
    const out = [];
    for (const e of entries) await entriesToFiles(e, "", out);
    return out;
  }
  return [...dataTransfer.files].map((file) => ({ file, path: file.name }));
}

function upload(items) {
  const images = items.filter((it) => isImage(it.file.name));
  const skipped = items.length - images.length;
  if (!images.length) {
    setStatus(skipped ? `no images among the ${skipped} file(s) (TIFF, PNG, JPEG)` : "no files", true);
    return;
  }
  const form = new FormData();
  for (const it of images) {
    form.append("files", it.file, it.file.name);
    form.append("paths", it.path || it.file.webkitRelativePath || it.file.name);
  }
  form.append("model", $("model").value);
  form.append("mode", $("mode").value);
  form.append("diameter", $("size-mode").value === "auto" ? "auto" : $("diameter").value);
  state.uploading = true;
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/api/sessions/${state.session}/jobs`);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) setStatus(`uploading ${images.length} image(s): ${Math.round((100 * e.loaded) / e.total)} %`);
  };
  xhr.onload = async () => {
    state.uploading = false;
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
    if (xhr.status >= 400) {
      const why = body && body.rejected ? body.rejected.map((r) => `${r.name}: ${r.reason}`).join("; ") : "";
      setStatus(`upload refused: ${(body && body.error) || xhr.status}${why ? ` (${why})` : ""}`, true);
      return;
    }
    const notes = [];
    if (skipped) notes.push(`${skipped} non-image file(s) left out`);
    for (const r of body.rejected) notes.push(`${r.name}: ${r.reason}`);
    setStatus(`queued ${body.images.length} image(s)${notes.length ? `; ${notes.join("; ")}` : ""}`, notes.length > 0);
    await refresh();
    if (!state.selected && body.images.length) await select(body.images[0].id);
  };
  xhr.onerror = () => { state.uploading = false; setStatus("upload failed: the server cannot be reached", true); };
  xhr.send(form);
}

function setupDrop() {
  const zone = $("drop-zone");
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.remove("over"); });
  }
  zone.addEventListener("drop", async (e) => upload(await droppedFiles(e.dataTransfer)));
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => e.preventDefault());
  for (const id of ["file-input", "folder-input"]) {
    $(id).addEventListener("change", (e) => {
      const files = [...e.target.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
      e.target.value = "";
      upload(files);
    });
  }
}

// ---- the viewer ------------------------------------------------------------------------------

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`cannot load ${url}`));
    img.src = url;
  });
}

function hueColour(id) {
  // the overlay's colours: hue = id × 0.618034 (mod 1), full saturation and value
  const h = ((id * 0.618034) % 1) * 6;
  const i = Math.floor(h);
  const f = h - i;
  const q = 1 - f;
  const rgb = [[1, f, 0], [q, 1, 0], [0, 1, f], [0, q, 1], [f, 0, 1], [1, 0, q]][i % 6];
  return rgb.map((v) => Math.round(v * 255));
}

function buildOverlay() {
  const { ids, width: w, height: h } = state;
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  if (!ids) { state.overlay = canvas; return; }
  const ctx = canvas.getContext("2d");
  const out = ctx.createImageData(w, h);
  const px = out.data;
  const filled = state.style === "filled";
  const colours = new Map();
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const k = y * w + x;
      const id = ids[k];
      if (!id) continue;
      const edge = (x > 0 && ids[k - 1] !== id) || (x < w - 1 && ids[k + 1] !== id)
        || (y > 0 && ids[k - w] !== id) || (y < h - 1 && ids[k + w] !== id);
      if (!edge && !filled) continue;
      let c = colours.get(id);
      if (!c) { c = hueColour(id); colours.set(id, c); }
      px[4 * k] = c[0]; px[4 * k + 1] = c[1]; px[4 * k + 2] = c[2];
      px[4 * k + 3] = edge ? 255 : 110;
    }
  }
  ctx.putImageData(out, 0, 0);
  state.overlay = canvas;
}

function decodeLabels(img) {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, c.width, c.height).data;
  const ids = new Uint32Array(c.width * c.height);
  for (let k = 0; k < ids.length; k++) ids[k] = data[4 * k] | (data[4 * k + 1] << 8) | (data[4 * k + 2] << 16);
  return ids;
}

function draw() {
  const canvas = $("view");
  const box = $("canvas-box");
  if (canvas.width !== box.clientWidth || canvas.height !== box.clientHeight) {
    canvas.width = box.clientWidth;
    canvas.height = box.clientHeight;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!state.base) return;
  const v = state.view;
  ctx.imageSmoothingEnabled = v.scale < 1;
  ctx.setTransform(v.scale, 0, 0, v.scale, v.x, v.y);
  ctx.drawImage(state.base, 0, 0);
  if (state.overlay) {
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = state.opacity;
    ctx.drawImage(state.overlay, 0, 0);
    ctx.globalAlpha = 1;
  }
}

function fit() {
  const box = $("canvas-box");
  if (!state.width) return;
  const s = Math.min(box.clientWidth / state.width, box.clientHeight / state.height);
  state.view = { scale: s, x: (box.clientWidth - s * state.width) / 2, y: (box.clientHeight - s * state.height) / 2 };
  draw();
}

function zoomAt(factor, cx, cy) {
  const v = state.view;
  const s = Math.min(64, Math.max(0.02, v.scale * factor));
  v.x = cx - ((cx - v.x) * s) / v.scale;
  v.y = cy - ((cy - v.y) * s) / v.scale;
  v.scale = s;
  draw();
}

function toImage(e) {
  const r = $("view").getBoundingClientRect();
  const v = state.view;
  return { x: (e.clientX - r.left - v.x) / v.scale, y: (e.clientY - r.top - v.y) / v.scale };
}

async function showImage(im, force = false) {
  $("viewer").hidden = false;
  $("viewer-empty").hidden = true;
  $("image-name").textContent = im.name;
  $("image-state").textContent = `— ${stateText(im)}${im.state === "failed" ? `: ${im.error}` : ""}`;
  $("download-one").href = im.urls.download;
  $("download-one").classList.toggle("disabled", im.state !== "done");
  const planes = im.n_planes || 1;
  $("plane-group").hidden = planes < 2;
  $("plane").max = Math.max(0, planes - 1);
  const key = `${im.state}:${im.version}:${state.plane}`;
  if (!force && state.version === key) return;
  state.version = key;
  const first = force || !state.base;
  try {
    state.base = await loadImage(`${im.urls.image}?plane=${state.plane}&v=${im.version}`);
    state.width = state.base.naturalWidth;
    state.height = state.base.naturalHeight;
    if (im.state === "done") {
      state.ids = decodeLabels(await loadImage(`${im.urls.labels}?plane=${state.plane}&v=${im.version}`));
    } else {
      state.ids = null;
    }
    buildOverlay();
    if (first) fit(); else draw();
    $("view").dataset.loaded = im.state === "done" ? "labels" : "image";
    $("view").dataset.version = String(im.version);
  } catch (err) {
    setStatus(err.message, true);
  }
  if (im.state === "done") await showMetrics(im); else clearTables();
}

function clearTables() {
  $("metrics").tBodies[0].innerHTML = "";
  $("objects").tHead.innerHTML = "";
  $("objects").tBodies[0].innerHTML = "";
  $("object-count").textContent = "";
  $("metric-notes").textContent = "";
}

function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a >= 1000 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

async function showMetrics(im) {
  let m;
  try {
    m = await api(`${im.urls.metrics}`);
  } catch (err) {
    setStatus(`metrics: ${err.message}`, true);
    return;
  }
  const rows = m.images.length > 1 ? [m.images[Math.min(state.plane, m.images.length - 1)]] : m.images;
  const body = $("metrics").tBodies[0];
  body.innerHTML = "";
  for (const row of rows) {
    for (const [k, v] of Object.entries(row)) {
      if (v === null && !(k in METRIC_NAMES)) continue;
      const tr = body.insertRow();
      tr.dataset.metric = k;
      tr.insertCell().textContent = METRIC_NAMES[k] || k;
      tr.insertCell().textContent = k === "confluency" && typeof v === "number" ? `${(100 * v).toFixed(1)} %` : fmt(v);
    }
  }
  $("metric-notes").textContent = m.notes.join(" ");
  const cols = m.objects.columns;
  const head = $("objects").tHead;
  head.innerHTML = "";
  const hr = head.insertRow();
  for (const c of cols) { const th = document.createElement("th"); th.textContent = c; hr.appendChild(th); }
  const tb = $("objects").tBodies[0];
  tb.innerHTML = "";
  const planeCol = cols.indexOf("plane");
  const shown = m.objects.rows.filter((r) => planeCol < 0 || r[planeCol] === state.plane);
  for (const r of shown.slice(0, 2000)) {
    const tr = tb.insertRow();
    tr.dataset.id = r[cols.indexOf("id")];
    for (const v of r) tr.insertCell().textContent = fmt(v);
  }
  $("object-count").textContent = `(${shown.length}${shown.length > 2000 ? ", first 2000 shown" : ""})`;
}

async function edit(point) {
  const im = state.images.find((i) => i.id === state.selected);
  if (!im || im.state !== "done" || state.busy || !state.ids) return;
  const x = Math.floor(point.x);
  const y = Math.floor(point.y);
  if (x < 0 || y < 0 || x >= state.width || y >= state.height) return;
  if ((im.n_planes || 1) > 1) { setStatus("click editing works on 2-D images", true); return; }
  const id = state.ids[y * state.width + x];
  state.busy = true;
  setStatus(id ? `removing object ${id}…` : "adding an object…");
  try {
    const res = id
      ? await api(`${im.urls.self}/objects/${id}`, { method: "DELETE" })
      : await api(`${im.urls.self}/objects`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ y, x }),
      });
    setStatus(res.edit.action === "add"
      ? `added object ${res.edit.object_id} (${res.edit.area} px); ${res.edit.n_objects} object(s)`
      : `removed object ${res.edit.object_id}; ${res.edit.n_objects} object(s)`);
    const i = state.images.findIndex((x2) => x2.id === im.id);
    if (i >= 0) state.images[i] = res.image;
    await showImage(res.image);
    renderQueueCounts();
  } catch (err) {
    setStatus(err.message, true);
  } finally {
    state.busy = false;
  }
}

function renderQueueCounts() {
  const counts = { queued: 0, processing: 0, done: 0, failed: 0 };
  for (const im of state.images) counts[im.state] += 1;
  renderQueue(counts);
}

function setupViewer() {
  const canvas = $("view");
  let drag = null;
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    zoomAt(e.deltaY < 0 ? 1.2 : 1 / 1.2, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  canvas.addEventListener("mousedown", (e) => { drag = { x: e.clientX, y: e.clientY, vx: state.view.x, vy: state.view.y, moved: false }; });
  window.addEventListener("mousemove", (e) => {
    if (state.base) {
      const p = toImage(e);
      const x = Math.floor(p.x);
      const y = Math.floor(p.y);
      if (x >= 0 && y >= 0 && x < state.width && y < state.height) {
        const id = state.ids ? state.ids[y * state.width + x] : 0;
        $("pixel-info").textContent = `(y ${y}, x ${x})${id ? ` object ${id}` : ""}`;
      }
    }
    if (!drag) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    if (drag.moved) { state.view.x = drag.vx + dx; state.view.y = drag.vy + dy; draw(); }
  });
  window.addEventListener("mouseup", (e) => {
    if (drag && !drag.moved && state.editing && e.target === canvas) edit(toImage(e));
    drag = null;
  });
  $("zoom-in").addEventListener("click", () => zoomAt(1.5, canvas.width / 2, canvas.height / 2));
  $("zoom-out").addEventListener("click", () => zoomAt(1 / 1.5, canvas.width / 2, canvas.height / 2));
  $("zoom-fit").addEventListener("click", fit);
  for (const radio of document.querySelectorAll('input[name="style"]')) {
    radio.addEventListener("change", () => { state.style = radio.value; buildOverlay(); draw(); });
  }
  $("opacity").addEventListener("input", (e) => { state.opacity = Number(e.target.value); draw(); });
  $("edit-toggle").addEventListener("change", (e) => {
    state.editing = e.target.checked;
    $("canvas-box").classList.toggle("editing", state.editing);
  });
  $("plane").addEventListener("input", async (e) => {
    state.plane = Number(e.target.value);
    $("plane-value").textContent = String(state.plane);
    const im = state.images.find((i) => i.id === state.selected);
    if (im) await showImage(im);
  });
  window.addEventListener("resize", draw);
  $("objects").addEventListener("mouseover", (e) => {
    const tr = e.target.closest("tr");
    for (const row of $("objects").tBodies[0].rows) row.classList.toggle("hit", row === tr);
  });
}

function setupOptions() {
  $("size-mode").addEventListener("change", (e) => { $("diameter").disabled = e.target.value === "auto"; });
  $("new-session").addEventListener("click", () => openSession(true));
}

async function main() {
  setupDrop();
  setupViewer();
  setupOptions();
  try {
    await loadInfo();
    await openSession();
    document.body.dataset.ready = "1";
  } catch (err) {
    setStatus(`cannot start: ${err.message}`, true);
  }
}

main();
