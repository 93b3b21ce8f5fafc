"use strict";
// How the search page draws a hit and moves through hits: cards (the thumbnail in a positioned box, so that
// marks over the image can go inside it), columns of them, the full photo in a viewer, and the keyboard
// ("/" the query box, arrows between cards, Enter more like the focused one, "o" its photo). page.js,
// loaded after this file, holds the state and the searches (`go`, `moreOfCollection`).
const $ = (id) => document.getElementById(id);
let returnFocus = null;  // the card whose photo the viewer shows

// ---- cards -------------------------------------------------------------------------------------------

function column(title, run, other) {
  const col = document.createElement("div");
  col.className = "column";
  const h = document.createElement("h2");
  h.textContent = run.hits ? `${title} · ${run.hits.length} hits · ${run.took_ms.toFixed(0)} ms` : title;
  const grid = document.createElement("div");
  grid.className = "grid";
  const rankIn = other ? new Map(other.hits.map((x) => [x.id, x.rank])) : new Map();
  for (const hit of run.hits || []) grid.append(card(hit, rankIn.has(hit.id) ? `#${rankIn.get(hit.id)} there` : ""));
  col.append(h, grid);
  return col;
}

function element(tag, className, text = "") {
  const el = document.createElement(tag);
  el.className = className;
  el.textContent = text;
  return el;
}

function card(hit, both) {
  const el = document.createElement("article");
  el.className = "hit" + (both ? " both" : "");
  el.tabIndex = -1;
  el.dataset.id = hit.id;
  el.hit = hit;
  const name = hit.path.split("/").pop();
  const frame = document.createElement("a");  // positioned: boxes over the image go inside it
  frame.className = "frame";
  frame.href = `/photo/${encodeURIComponent(hit.id)}`;
  frame.title = `${hit.path}\n${hit.width}×${hit.height} · open the photo (o)`;
  frame.addEventListener("click", (e) => {
    if (e.button === 0 && !e.ctrlKey && !e.metaKey && !e.shiftKey) { e.preventDefault(); view(el); }
  });
  const img = document.createElement("img");
  img.loading = "lazy";
  img.alt = `${hit.label || "unlabelled"}: ${name}`;
  img.src = `/thumb/${encodeURIComponent(hit.id)}`;
  frame.append(img);
  if (hit.boxes) {
    marks(frame, img, hit.boxes, [hit.width, hit.height], matchTitle(hit), weak(hit));
    for (const on of ["mouseenter", "focusin"]) el.addEventListener(on, () => markQuery(hit));
  }
  const meta = element("div", "meta");
  const when = hit.mtime !== undefined ? new Date(hit.mtime * 1000).toISOString().slice(0, 10) : hit.score.toFixed(3);
  meta.append(element("span", "label", `${hit.rank}. ${hit.label || "—"}`), element("span", "score", when));
  const similar = document.createElement("a");
  similar.className = "similar";
  similar.href = `?similar=${encodeURIComponent(hit.id)}`;
  similar.textContent = "more like this";
  similar.addEventListener("click", (e) => { e.preventDefault(); go({ similar: hit.id }); });
  el.append(frame, meta, element("div", "path", hit.path.split("/").slice(-2).join("/")), similar);
  if (hit.inliers !== undefined) el.append(element("div", "tag inliers", `${hit.inliers} inlier${hit.inliers === 1 ? "" : "s"}`));
  if (both) el.append(element("div", "tag", `in both (${both})`));
  return el;
}

// ---- where a hit matched: boxes over its thumbnail, and its region of the query over the query image ---------

// A hit whose local words agree on one placement in fewer cells than verification asks: its boxes are a guess.
const weak = (hit) => info && hit.inliers < info.min_local_inliers;
const matchTitle = (hit) => `${weak(hit) ? "a weak match" : "where it matched"}: ${hit.inliers} cells agree, ${(hit.matched || []).length} words`;

// Boxes [[x0, y0, x1, y1], ...] in an image's own pixels (`size` [width, height]) drawn over `img` as `frame`
// shows it (object-fit cover or contain, or the image's own box), strongest first, dashed when `faint`;
// redrawn when it resizes.
function marks(frame, img, boxes, size, title, faint = false) {
  const place = () => {
    for (const old of frame.querySelectorAll(".box")) old.remove();
    const [w, h] = size;
    const fit = getComputedStyle(img).objectFit;
    const [iw, ih] = fit === "cover" || fit === "contain" ? [frame.clientWidth, frame.clientHeight] : [img.clientWidth, img.clientHeight];
    if (!iw || !ih) return;
    const s = fit === "cover" ? Math.max(iw / w, ih / h) : Math.min(iw / w, ih / h);
    const left = (fit === "cover" || fit === "contain" ? 0 : img.offsetLeft) + (iw - w * s) / 2;
    const top = (fit === "cover" || fit === "contain" ? 0 : img.offsetTop) + (ih - h * s) / 2;
    boxes.forEach(([x0, y0, x1, y1], i) => {
      const b = element("div", (i ? "box" : "box first") + (faint ? " weak" : ""));
      Object.assign(b.style, { left: `${left + x0 * s}px`, top: `${top + y0 * s}px`,
                               width: `${(x1 - x0) * s}px`, height: `${(y1 - y0) * s}px` });
      b.title = title;
      frame.append(b);
    });
  };
  if (img.complete && img.naturalWidth) place(); else img.addEventListener("load", place, { once: true });
  frame.resized?.disconnect();  // one set of marks a frame: the query image's change with the hit
  frame.resized = new ResizeObserver(place);
  frame.resized.observe(frame);
}

let querySize = null;  // the query image's [width, height], as the last image search reported it

function markQuery(hit) {  // the region of the query that `hit` matched, over the query image
  const img = document.querySelector("#drop img");
  for (const old of document.querySelectorAll("#drop .box")) old.remove();
  if (img && querySize && hit && hit.query_box) marks($("drop"), img, [hit.query_box], querySize, `matched ${hit.path}`, weak(hit));
}

function view(el) {
  const hit = el.hit;
  returnFocus = el;
  $("full").src = `/photo/${encodeURIComponent(hit.id)}`;
  $("full").alt = `${hit.label || "unlabelled"}: ${hit.path.split("/").pop()}`;
  $("viewer-caption").textContent = `${hit.label || "unlabelled"} · ${hit.width}×${hit.height} · ${hit.path}`;
  $("viewer-file").href = $("full").src;
  $("viewer-similar").href = `?similar=${encodeURIComponent(hit.id)}`;
  $("viewer").showModal();
}
$("viewer-similar").addEventListener("click", (e) => {
  e.preventDefault();
  $("viewer").close();
  go({ similar: returnFocus.dataset.id });
});
$("viewer-close").addEventListener("click", () => $("viewer").close());
$("viewer").addEventListener("close", () => { if (returnFocus?.isConnected) returnFocus.focus(); });

// ---- keyboard: "/" finds the query box, arrows move through the hits, Enter asks for more like one --------

function rove(grid) {  // one card of a grid takes Tab; arrows move from there
  const first = grid.querySelector(".hit");
  if (first && !grid.querySelector(".hit[tabindex='0']")) first.tabIndex = 0;
}

function move(from, key) {
  const grid = from ? from.closest(".grid") : document.querySelector("#results .grid");
  const cards = grid ? [...grid.querySelectorAll(".hit")] : [];
  if (!cards.length) return;
  const columns = cards.filter((c) => c.offsetTop === cards[0].offsetTop).length;
  const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns, ArrowDown: columns }[key];
  const at = from ? cards.indexOf(from) + step : 0;
  if (at < 0 || at >= cards.length) return;  // no card that way: stay
  const to = cards[at];
  for (const c of cards) c.tabIndex = c === to ? 0 : -1;
  to.focus();
  to.scrollIntoView({ block: "nearest" });
  if (cards.indexOf(to) >= cards.length - columns) moreOfCollection();
}

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || $("viewer").open) return;
  const typing = e.target.closest?.("input, select, textarea");
  if (e.key === "/" && !typing) {
    e.preventDefault();
    $("q").focus();
    $("q").select();
    return;
  }
  if (typing && !(e.key === "ArrowDown" && e.target === $("q"))) return;
  const hit = e.target.closest?.(".hit") || null;
  if (e.key.startsWith("Arrow")) {
    e.preventDefault();
    move(hit, e.key);
  } else if (e.key === "Enter" && hit && e.target === hit) {
    e.preventDefault();
    go({ similar: hit.dataset.id });
  } else if (e.key === "o" && hit) {
    e.preventDefault();
    view(hit);
  }
});
