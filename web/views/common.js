// Helpers shared by the views: DOM/SVG builders, colour scales, a labelled heatmap
// (Canvas cells, DOM axis labels, a colour legend, a tooltip), bar lists and button groups.
// Nothing here keeps state between calls except a cached canvas for measuring text and one
// <style> element (same content every time) so the views stay pure functions of their props.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "style" && typeof value === "object") Object.assign(node.style, value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** An HTML element: h("div", {class: "x", onclick: f}, child, "text"). */
export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
/** An SVG element, same calling convention as h. */
export const s = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

/** A TypeError naming the view, the bad value and what was expected. */
export function check(condition, view, message) {
  if (!condition) throw new TypeError(`${view} view: ${message}`);
}

const STYLES = `
.nsv { font: 12px/1.35 system-ui, sans-serif; color: #1f2328; }
.nsv-row { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
.nsv-title { font-weight: 600; margin: 0 0 6px; }
.nsv-note { color: #59636e; margin: 4px 0; }
.nsv-mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre; }
.nsv-scroll { overflow: auto; max-width: 100%; }
.nsv-heatmap { display: grid; grid-template-columns: auto auto auto; align-items: start; position: relative; }
.nsv-axis { position: relative; font-size: 10px; color: #3d444d; }
.nsv-axis > span { position: absolute; white-space: pre; overflow: hidden; text-overflow: ellipsis; }
.nsv-axis-title { font-size: 10px; color: #59636e; }
.nsv-legend { margin-left: 10px; font-size: 10px; }
.nsv-legend > div:last-child { display: flex; gap: 4px; padding-top: 6px; }
.nsv-legend-ticks { position: relative; width: 44px; }
.nsv-legend-ticks > span { position: absolute; transform: translateY(-50%); }
.nsv-tooltip { position: fixed; z-index: 10; pointer-events: none; display: none; background: #1f2328;
  color: #fff; padding: 3px 7px; border-radius: 4px; font-size: 11px; white-space: pre; }
.nsv-bars { display: grid; grid-template-columns: auto 120px auto; gap: 2px 6px; align-items: center; }
.nsv-bar { height: 10px; background: #0969da; border-radius: 2px; min-width: 1px; }
.nsv-buttons { display: inline-flex; margin: 0 0 6px; }
.nsv-buttons button { font: inherit; padding: 2px 9px; border: 1px solid #d1d9e0; background: #f6f8fa; cursor: pointer; }
.nsv-buttons button + button { border-left: none; }
.nsv-buttons button[aria-pressed="true"] { background: #0969da; border-color: #0969da; color: #fff; }
`;

/** Adds the views' stylesheet to the document once (identical content every call). */
export function ensureStyles(doc = document) {
  if (doc.getElementById("neuroscope-view-styles")) return;
  doc.head.append(build(doc.createElement("style"), {id: "neuroscope-view-styles", text: STYLES}, []));
}

/** The text of a token given as {text} or as a plain string (the lens returns both shapes). */
export const tokenText = (token) => (typeof token === "string" ? token : token?.text);

/** A token's text with whitespace made visible: spaces "·", newlines "⏎", tabs "⇥". */
export function visibleText(text) {
  if (text === "") return "∅";
  return String(text).replace(/ /g, "·").replace(/\r?\n/g, "⏎").replace(/\t/g, "⇥");
}

export const formatProb = (p) => (p >= 0.995 ? "100%" : p >= 0.0995 ? `${(p * 100).toFixed(0)}%`
  : p >= 0.001 ? `${(p * 100).toFixed(1)}%` : `${(p * 100).toPrecision(1)}%`);
export function formatNumber(v) {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return "0";
  return a < 0.01 || a >= 1e5 ? v.toExponential(1) : String(Number(v.toPrecision(3)));
}

const hex = (c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
const BLUES = ["#ffffff", "#deebf7", "#9ecae1", "#4292c6", "#08519c", "#08306b"].map(hex);
const RED_WHITE_BLUE = ["#67001f", "#d6604d", "#fddbc7", "#ffffff", "#d1e5f0", "#4393c3", "#053061"].map(hex);
const MISSING = [224, 224, 224];

function interpolate(stops, t) {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  return stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * f));
}

/** White -> dark blue over [min, max]; NaN is grey. */
export function sequentialScale(min, max) {
  const span = max > min ? max - min : 1;
  return {kind: "sequential", min, max,
    color: (v) => (Number.isFinite(v) ? interpolate(BLUES, (v - min) / span) : MISSING)};
}

/** Red (negative) -> white (0) -> blue (positive), symmetric over [-limit, limit]. */
export function divergingScale(limit) {
  const l = limit > 0 ? limit : 1;
  return {kind: "diverging", min: -l, max: l,
    color: (v) => (Number.isFinite(v) ? interpolate(RED_WHITE_BLUE, (v + l) / (2 * l)) : MISSING)};
}

export const css = ([r, g, b]) => `rgb(${r},${g},${b})`;
/** Dark or light text, whichever reads on the given background. */
export const textOn = ([r, g, b]) => (0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#1f2328" : "#ffffff");

let measureContext = null;
/** Width in CSS pixels of text in the given font (default: the axis labels' font). */
export function textWidth(text, font = "10px system-ui, sans-serif") {
  measureContext ??= document.createElement("canvas").getContext("2d");
  measureContext.font = font;
  return measureContext.measureText(text).width;
}

const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
const LABEL_SPACING = 11;  // px between shown axis labels; denser axes show every n-th label

/** Row labels (right-aligned, one per cellHeight) as absolutely placed DOM text. */
export function rowAxis(labels, cellHeight, {maxWidth = 110} = {}) {
  const stride = Math.ceil(LABEL_SPACING / cellHeight);
  const width = Math.min(maxWidth, Math.max(0, ...labels.map((t) => textWidth(t)))) + 8;
  const axis = h("div", {class: "nsv-axis", style: {width: `${width}px`, height: `${labels.length * cellHeight}px`}});
  labels.forEach((label, i) => {
    if (i % stride) return;
    axis.append(h("span", {text: label, title: label, style: {right: "4px", maxWidth: `${width - 6}px`,
      top: `${(i + 0.5) * cellHeight}px`, transform: "translateY(-50%)"}}));
  });
  return axis;
}

/** Column labels, one per cellWidth: horizontal when they all fit, else vertical text reading down. */
export function columnAxis(labels, cellWidth, {maxHeight = 80} = {}) {
  const stride = Math.ceil(LABEL_SPACING / cellWidth);
  const widest = Math.max(0, ...labels.map((t) => textWidth(t)));
  const vertical = widest + 2 > cellWidth;
  const height = vertical ? Math.min(maxHeight, widest) + 6 : 15;
  const axis = h("div", {class: "nsv-axis", style: {height: `${height}px`, width: `${labels.length * cellWidth}px`}});
  labels.forEach((label, j) => {
    if (j % stride) return;
    axis.append(h("span", {text: label, title: label, style: {top: "2px", writingMode: vertical ? "vertical-rl" : "",
      left: `${(j + 0.5) * cellWidth}px`, transform: "translateX(-50%)", maxHeight: `${height - 3}px`}}));
  });
  return axis;
}

/** A canvas of the given CSS size with a devicePixelRatio backing store. */
export function makeCanvas(width, height, label) {
  const ratio = window.devicePixelRatio || 1;
  const canvas = h("canvas", {width: Math.max(1, Math.round(width * ratio)),
    height: Math.max(1, Math.round(height * ratio)), "aria-label": label, role: "img",
    style: {width: `${width}px`, height: `${height}px`, display: "block", cursor: "crosshair"}});
  return canvas;
}

/** Draws an RGBA ImageData (one pixel per cell or per CSS pixel) scaled to fill the canvas, unsmoothed. */
export function paintImage(canvas, image) {
  const source = document.createElement("canvas");
  source.width = image.width;
  source.height = image.height;
  source.getContext("2d").putImageData(image, 0, 0);
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false;
  context.drawImage(source, 0, 0, canvas.width, canvas.height);
}

/** A tooltip element appended to `host`, placed by viewport coordinates (position: fixed, so
 * scrolling containers do not clip it) and flipped to stay inside the window. */
export function tooltip(host) {
  const tip = h("div", {class: "nsv-tooltip", role: "tooltip"});
  host.append(tip);
  return {
    element: tip,
    show(text, clientX, clientY) {
      tip.textContent = text;
      tip.style.display = "block";
      const flipX = clientX + 14 + tip.offsetWidth > window.innerWidth;
      const flipY = clientY + 14 + tip.offsetHeight > window.innerHeight;
      tip.style.left = `${flipX ? clientX - 8 - tip.offsetWidth : clientX + 14}px`;
      tip.style.top = `${flipY ? clientY - 8 - tip.offsetHeight : clientY + 14}px`;
    },
    hide() { tip.style.display = "none"; },
  };
}

/** Maps pointer events on a grid canvas to (row, col): hover shows describe(row, col) in a tooltip,
 * click calls onClick(row, col), moves call onHover(row, col) (and onHover(null) on leave). */
export function gridPointer(canvas, host, {rows, cols, pitchX, pitchY, describe, onClick, onHover}) {
  const tip = tooltip(host);
  const cellAt = (event) => {
    const box = canvas.getBoundingClientRect();
    const col = Math.floor((event.clientX - box.left) / pitchX);
    const row = Math.floor((event.clientY - box.top) / pitchY);
    return row >= 0 && row < rows && col >= 0 && col < cols ? {row, col} : null;
  };
  let last = null;  // the cell last reported, so onHover fires on change, not on every move
  const report = (cell) => {
    const key = cell && `${cell.row},${cell.col}`;
    if (key === last) return;
    last = key;
    if (onHover && cell) onHover(cell.row, cell.col);
    else if (onHover) onHover(null);
  };
  canvas.addEventListener("mousemove", (event) => {
    const cell = cellAt(event);
    report(cell);
    if (!cell) return tip.hide();
    if (describe) tip.show(describe(cell.row, cell.col), event.clientX, event.clientY);
  });
  canvas.addEventListener("mouseleave", () => { tip.hide(); report(null); });
  if (onClick) {
    canvas.style.cursor = "pointer";
    canvas.addEventListener("click", (event) => { const cell = cellAt(event); if (cell) onClick(cell.row, cell.col); });
  }
  return tip;
}

/** A vertical colour bar with min / mid / max ticks as DOM text. */
export function legend(scale, {height = 120, title = ""} = {}) {
  const bar = makeCanvas(12, height, `colour scale ${formatNumber(scale.min)} to ${formatNumber(scale.max)}`);
  bar.style.cursor = "default";
  const image = new ImageData(1, height);
  for (let y = 0; y < height; y++) {
    const [r, g, b] = scale.color(scale.max - ((scale.max - scale.min) * y) / (height - 1));
    image.data.set([r, g, b, 255], y * 4);
  }
  paintImage(bar, image);
  const mid = (scale.min + scale.max) / 2;
  const ticks = h("div", {class: "nsv-legend-ticks", style: {height: `${height}px`}},
    [[scale.max, 0], [mid, 0.5], [scale.min, 1]].map(([v, f]) =>
      h("span", {text: formatNumber(v), style: {top: `${f * height}px`}})));
  return h("div", {class: "nsv-legend", "data-role": "legend"},
    h("div", {class: "nsv-axis-title", text: title}), h("div", {}, bar, ticks));
}

/**
 * A labelled heatmap: Canvas cells, DOM row/column labels, a legend and a tooltip.
 * options: {rows, cols, value(r, c), scale, rowLabels, colLabels, rowTitle, colTitle, legendTitle,
 *   label (aria-label), maxWidth, maxHeight, minCell, maxCell, square, highlight: [{row, col}],
 *   describe(r, c) -> tooltip text, onClick(r, c), onHover(r, c)}
 * Returns the element; its canvas carries data-rows / data-cols and the aria-label.
 */
export function heatmap(options) {
  const {rows, cols, value, scale, minCell = 3, maxCell = 24} = options;
  let cellW = clamp(Math.floor((options.maxWidth ?? 560) / Math.max(1, cols)), minCell, maxCell);
  let cellH = clamp(Math.floor((options.maxHeight ?? 400) / Math.max(1, rows)), minCell, maxCell);
  if (options.square) cellW = cellH = Math.min(cellW, cellH);
  const canvas = makeCanvas(cols * cellW, rows * cellH, options.label ?? "heatmap");
  canvas.dataset.rows = rows;
  canvas.dataset.cols = cols;
  const image = new ImageData(Math.max(1, cols), Math.max(1, rows));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) image.data.set([...scale.color(value(r, c)), 255], (r * cols + c) * 4);
  }
  paintImage(canvas, image);
  const context = canvas.getContext("2d");
  const ratio = canvas.width / (cols * cellW);
  context.lineWidth = 2 * ratio;
  context.strokeStyle = "#f0a000";
  for (const {row, col} of options.highlight ?? []) {
    context.strokeRect((col * cellW + 1) * ratio, (row * cellH + 1) * ratio, (cellW - 2) * ratio, (cellH - 2) * ratio);
  }
  canvas.style.outline = "1px solid #d1d9e0";
  const grid = h("div", {class: "nsv-heatmap"},
    h("div", {class: "nsv-axis-title", text: options.rowTitle ? `${options.rowTitle} ↓` : "",
      style: {alignSelf: "end", textAlign: "right", paddingRight: "6px"}}),
    h("div", {class: "nsv-axis-title", text: options.colTitle ? `${options.colTitle} →` : ""}), h("div"),
    options.rowLabels ? rowAxis(options.rowLabels, cellH) : h("div"), canvas,
    legend(scale, {height: clamp(rows * cellH, 60, 160), title: options.legendTitle}),
    h("div"), options.colLabels ? columnAxis(options.colLabels, cellW) : h("div"), h("div"));
  gridPointer(canvas, grid, {rows, cols, pitchX: cellW, pitchY: cellH, describe: options.describe,
    onClick: options.onClick, onHover: options.onHover});
  return h("div", {class: "nsv-scroll"}, grid);
}

/** Top predictions as rows of token text, a bar (width by probability) and the percentage; with
 * `baseline` (another list) a fourth column gives the change in percentage points against it. */
export function predictionBars(items, {title, role = "predictions", baseline} = {}) {
  const list = h("div", {class: "nsv-bars", "data-role": role,
    style: baseline ? {gridTemplateColumns: "auto 120px auto auto"} : {}});
  const key = (item) => item.id ?? item.text;
  const before = new Map((baseline ?? []).map((item) => [key(item), item.prob]));
  for (const item of items ?? []) {
    list.append(h("span", {class: "nsv-mono", text: visibleText(item.text), title: `id ${item.id ?? "?"}`}),
      h("div", {}, h("div", {class: "nsv-bar", style: {width: `${clamp(item.prob, 0, 1) * 100}%`}})),
      h("span", {text: formatProb(item.prob)}));
    if (baseline) {
      const change = before.has(key(item)) ? (item.prob - before.get(key(item))) * 100 : null;
      list.append(h("span", {text: change === null ? "new" : `${change >= 0 ? "+" : "−"}${Math.abs(change).toFixed(1)} pp`,
        style: {color: change === null ? "#59636e" : change >= 0 ? "#1a7f37" : "#cf222e"}}));
    }
  }
  return h("div", {}, title ? h("div", {class: "nsv-title", text: title}) : null, list);
}

/** A row of toggle buttons, one per choice; onChoose(choice) on click (buttons disabled without it). */
export function buttonGroup(choices, chosen, onChoose, label) {
  return h("div", {class: "nsv-buttons", role: "group", "aria-label": label},
    choices.map((choice) => h("button", {type: "button", text: choice, "data-choice": choice,
      "aria-pressed": String(choice === chosen), disabled: !onChoose,
      onclick: () => { if (choice !== chosen) onChoose(choice); }})));
}
