"use strict";
// The search page (loaded after hits.js, which draws the hits). It opens on the collection (a grid of
// thumbnails, newest first or in a seeded random order, the labels with their counts as filters); a search
// is by an image, a text query or an indexed image ("more like this"). What is shown lives in the URL, so it
// can be bookmarked, shared, reloaded and gone back to; an uploaded image, which a URL cannot hold, is kept
// for this tab's history only.
const PAGE = 60;  // thumbnails per page of the collection
const POLL_MS = 4000;  // how often the page asks whether the server took in new commits
const DEFAULTS = { mode: "bm25", k: "12", filter: "", dims: "", verify: "0", qwords: "", order: "newest", seed: "",
                   compare: "" };
const CONTROLS = ["mode", "k", "filter", "dims", "verify", "qwords", "order"];  // element ids = state keys
let info = null;
let shown = null;  // the state on screen
let collection = null;  // {state, next, total} while the collection is shown
let loading = false;
let seed = "";
const uploads = new Map();  // upload number (in history states) -> the Blob

function status(text, bad = false) { $("status").textContent = text; $("status").className = bad ? "bad" : ""; }

async function call(url, init) {
  const res = await fetch(url, init);
  const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

// ---- the state: controls <-> URL <-> history ---------------------------------------------------------

function fromControls(query) {
  const s = { q: "", similar: "", upload: 0, ...query };
  for (const key of CONTROLS) s[key] = $(key).value.trim();
  s.compare = $("compare").checked ? $("mode-b").value : "";
  s.seed = s.order === "random" ? (seed ||= String(Math.floor(Math.random() * 1e6))) : "";
  return s;
}

function toControls(s) {
  for (const key of CONTROLS) $(key).value = s[key] ?? DEFAULTS[key];
  if ($("mode").selectedIndex < 0) $("mode").value = DEFAULTS.mode;
  $("q").value = s.q || "";
  $("compare").checked = Boolean(s.compare);
  if (s.compare) $("mode-b").value = s.compare;
  seed = s.seed || "";
}

function toURL(s) {
  const p = new URLSearchParams();
  if (s.q) p.set("q", s.q);
  if (s.similar) p.set("similar", s.similar);
  if (s.upload) p.set("image", "upload");
  for (const [key, value] of Object.entries(DEFAULTS)) if (s[key] && s[key] !== value) p.set(key, s[key]);
  return p.toString() ? `?${p}` : location.pathname;
}

function fromURL() {
  const p = new URLSearchParams(location.search);
  const s = { q: p.get("q") || "", similar: p.get("similar") || "", upload: 0, lost: p.has("image") };
  for (const [key, value] of Object.entries(DEFAULTS)) s[key] = p.get(key) ?? value;
  return s;
}

// The query part of a state: what a change of mode, filter or order keeps.
const queryOf = (s) => (s.q ? { q: s.q } : s.similar ? { similar: s.similar } : s.upload ? { upload: s.upload } : {});

function go(query, how = "push") {
  const s = fromControls(query);
  const same = shown && toURL(s) === toURL(shown) && s.upload === shown.upload;
  history[how === "push" && !same ? "pushState" : "replaceState"](s, "", toURL(s));
  show(s);
}

window.addEventListener("popstate", (e) => {
  const s = e.state || fromURL();
  toControls(s);
  show(s);
});

function show(s) {
  shown = s;
  collection = null;
  $("more").hidden = true;
  for (const b of document.querySelectorAll(".facet")) b.classList.toggle("on", b.dataset.filter === (s.filter || ""));
  if (s.q) return search(s, { kind: "text", q: s.q });
  if (s.similar) {
    showQueryImage(`/thumb/${encodeURIComponent(s.similar)}`);
    return search(s, { kind: "similar", id: s.similar });
  }
  if (s.upload && uploads.has(s.upload)) {
    showQueryImage(URL.createObjectURL(uploads.get(s.upload)));
    return search(s, { kind: "image", blob: uploads.get(s.upload) });
  }
  showQueryImage(null);
  return browse(s, 0, s.upload || s.lost ? "an uploaded image is not kept in the address: drop it again. " : "");
}

// ---- the collection ----------------------------------------------------------------------------------

async function browse(s, offset, note = "") {
  const p = new URLSearchParams({ order: s.order || "newest", offset, limit: PAGE });
  if (s.seed) p.set("seed", s.seed);
  if (s.filter) p.set("filter", s.filter);
  loading = true;
  try {
    const page = await call(`/api/browse?${p}`);
    if (shown !== s) return;  // the user moved on meanwhile
    const box = $("results");
    if (offset === 0) {
      box.className = "";
      box.replaceChildren(column(`the collection · ${s.order === "random" ? "random order" : "newest first"}`, {}, null));
    }
    const grid = box.querySelector(".grid");
    for (const item of page.items) grid.append(card(item, ""));
    rove(grid);
    collection = { state: s, next: offset + page.items.length, total: page.total };
    $("more").hidden = collection.next >= page.total;
    status(`${note}${page.total} images${s.filter ? " passing the filter" : ""}; showing ${collection.next}`, Boolean(note));
  } catch (err) {
    status(err.message, true);
  } finally {
    loading = false;
  }
}

function moreOfCollection() {
  if (collection && !loading && collection.state === shown && collection.next < collection.total) {
    browse(shown, collection.next);
  }
}
$("more").addEventListener("click", moreOfCollection);
new IntersectionObserver((seen) => { if (seen.some((e) => e.isIntersecting)) moreOfCollection(); }).observe($("more"));

// ---- searches ----------------------------------------------------------------------------------------

// Options a mode would ignore are left out (the API refuses them); query words only for an uploaded image.
function fields(s, mode, kind) {
  const f = { mode, k: s.k || DEFAULTS.k };
  const reads = (option) => info.option_modes[option].includes(mode);
  if (s.filter) f.filter = s.filter;
  if (s.dims && reads("dims")) f.dims = s.dims;
  if (s.verify && s.verify !== "0") f.verify = s.verify;
  if (s.qwords && kind === "image" && reads("query_words")) f.query_words = s.qwords;
  return f;
}

function fetchRun(s, query, mode) {
  const f = fields(s, mode, query.kind);
  if (query.kind === "image") {
    const form = new FormData();
    form.append("image", query.blob, query.blob.name || "query.jpg");
    for (const [key, value] of Object.entries(f)) form.append(key, value);
    return call("/api/search", { method: "POST", body: form });
  }
  if (query.kind === "text") {
    const p = new URLSearchParams({ q: query.q, k: f.k });
    if (f.filter) p.set("filter", f.filter);
    return call(`/api/search?${p}`);
  }
  return call(`/api/similar/${encodeURIComponent(query.id)}?${new URLSearchParams(f)}`);
}

async function search(s, query) {
  const comparing = Boolean(s.compare) && query.kind !== "text";
  const modes = comparing ? [s.mode, s.compare] : [query.kind === "text" ? "text" : s.mode];
  status("searching…");
  try {
    const runs = await Promise.all(modes.map((m) => fetchRun(s, query, m)));
    if (shown !== s) return;
    const box = $("results");
    box.className = comparing ? "two" : "";
    if (comparing) {
      box.replaceChildren(column(modes[0], runs[0], runs[1]), column(modes[1], runs[1], runs[0]));
      const shared = runs[0].hits.filter((h) => runs[1].hits.some((x) => x.id === h.id)).length;
      $("overlap").textContent = `${shared} of ${runs[0].hits.length} in both`;
    } else {
      box.replaceChildren(column(modes[0], runs[0], null));
      $("overlap").textContent = "";
    }
    for (const grid of box.querySelectorAll(".grid")) rove(grid);
    querySize = runs[0].query_size || null;
    markQuery(runs[0].hits.find((h) => h.query_box && h.id !== query.id));
    const what = query.kind === "similar" ? "more like this image" : query.kind === "text" ? `query ${query.q}` : "the image";
    status(`${what}: ${runs[0].hits.length} hits in ${runs[0].took_ms.toFixed(0)} ms`
           + (runs[0].encode_ms !== undefined ? ` (encoding ${runs[0].encode_ms.toFixed(0)} ms)` : ""));
  } catch (err) {
    if (shown === s) status(err.message, true);
  }
}

// ---- the query box, the drop zone, the controls --------------------------------------------------------

function showQueryImage(src) {
  if (!src) { $("drop").replaceChildren($("drop-text"), $("file")); return; }
  const img = document.createElement("img");
  img.src = src;
  img.alt = "the query image";
  $("drop").replaceChildren(img, $("file"));
}

function useImage(blob) {
  if (!blob || !blob.type.startsWith("image/")) { status("that is not an image", true); return; }
  uploads.set(uploads.size + 1, blob);
  $("q").value = "";
  go({ upload: uploads.size });
}

$("file").addEventListener("change", (e) => useImage(e.target.files[0]));
$("drop").addEventListener("dragover", (e) => { e.preventDefault(); $("drop").classList.add("over"); });
$("drop").addEventListener("dragleave", () => $("drop").classList.remove("over"));
$("drop").addEventListener("drop", (e) => { e.preventDefault(); $("drop").classList.remove("over"); useImage(e.dataTransfer.files[0]); });
document.addEventListener("paste", (e) => {
  const item = [...(e.clipboardData?.items || [])].find((i) => i.type.startsWith("image/"));
  if (item) useImage(item.getAsFile());
});
$("go").addEventListener("click", () => go($("q").value.trim() ? { q: $("q").value.trim() } : queryOf(shown || {})));
$("q").addEventListener("keydown", (e) => { if (e.key === "Enter") $("go").click(); });
$("filter").addEventListener("keydown", (e) => { if (e.key === "Enter") go(queryOf(shown)); });
$("order").addEventListener("change", () => { seed = ""; go({}); });
for (const id of ["mode", "mode-b", "k", "dims", "verify", "qwords", "compare"]) {
  $(id).addEventListener("change", () => go(queryOf(shown)));
}

// ---- labels, the header, new commits -----------------------------------------------------------------

function labelFilter(label) {
  return /^[^\s()"\\]+$/.test(label) ? `label:${label}` : `label:"${label.replace(/["\\]/g, "\\$&")}"`;
}

function facet(name, count, filter) {
  const li = document.createElement("li");
  const b = document.createElement("button");
  b.type = "button";
  b.className = "facet" + ((shown?.filter || "") === filter ? " on" : "");
  b.dataset.filter = filter;
  b.title = filter ? `filter: ${filter}` : "no filter";
  const label = document.createElement("span");
  label.className = "name";
  label.textContent = name;
  const n = document.createElement("span");
  n.className = "count";
  n.textContent = count.toLocaleString("en");
  b.append(label, n);
  b.addEventListener("click", () => { $("filter").value = filter; go(queryOf(shown)); });
  li.append(b);
  return li;
}

async function loadLabels() {
  const data = await call("/api/labels");
  $("labels").replaceChildren(facet("all", data.documents, ""),
                              ...data.labels.map(({ label, count }) => facet(label, count, labelFilter(label))));
}

function showInfo(i) {
  info = i;
  $("info").textContent = `${i.documents} images · ${i.backend} · model ${i.model}`;
}

async function poll() {
  try {
    const i = await call("/api/info");
    if (i.generation === info.generation) return;
    showInfo(i);
    await loadLabels();
    if (collection && collection.state === shown && !loading) browse(shown, 0);  // the newest photos come first
  } catch (err) {
    /* the server restarting: try again at the next poll */
  }
}

call("/api/info").then(async (i) => {
  showInfo(i);
  for (const m of i.modes) { $("mode").add(new Option(m, m)); $("mode-b").add(new Option(m, m)); }
  $("mode-b").value = i.modes.includes("dense") ? "dense" : i.modes[0];
  for (const d of i.dims) $("dims").add(new Option(d, d));
  for (const n of [10, 20, 50, 100]) if (n <= i.max_verify) $("verify").add(new Option(`top ${n}`, n));
  if (i.words_per_image) {
    for (const x of [1, 2, 4]) $("qwords").add(new Option(x * i.words_per_image, x * i.words_per_image));
  } else $("qwords").disabled = true;
  const s = fromURL();
  toControls(s);
  history.replaceState({ ...fromControls(queryOf(s)), lost: s.lost }, "", location.href);
  show(history.state);
  await loadLabels();
  setInterval(poll, POLL_MS);
}).catch((err) => status(err.message, true));
