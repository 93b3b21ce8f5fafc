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
  const meta = element("div", "meta");
  const when = hit.mtime !== undefined ? new Date(hit.mtime * 1000).toISOString().slice(0, 10) : hit.score.toFixed(3);
  meta.append(element("span", "label", `${hit.rank}. ${hit.label || "—"}`), element("span", "score", when));
  const similar = document.createElement("a");
  similar.className = "similar";
  similar.href = `?similar=${encodeURIComponent(hit.id)}`;
  similar.textContent = "more like this";
  similar.addEventListener("click", (e) => { e.preventDefault(); go({ similar: hit.id }); });
  el.append(frame, meta, element("div", "path", hit.path.split("/").slice(-2).join("/")), similar);
  if (hit.inliers !== undefined) el.append(element("div", "tag inliers", `${hit.inliers} inliers`));
  if (both) el.append(element("div", "tag", `in both (${both})`));
  return el;
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
