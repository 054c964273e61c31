// Attribution view: the patching view's heatmaps estimated from gradients (attribution
// patching or EAP-IG; neuroscope.lens.attribute), each beside the exact activation patching
// heatmap when that has been computed, with the rank correlation of the two, and a strip of
// the clean prompt's tokens coloured by their integrated-gradients saliency. One diverging
// scale centred on 0 for all heatmaps (1 = the whole clean-vs-corrupted logit difference).
//
// Props:
//   method:  "atp" | "eap-ig"      onMethod(method): another method chosen (buttons disabled without it)
//   resid:   [L][pos]   attribution of resid_pre at (layer, position)
//   heads:   [L][H]     attribution of each head's output at all positions
//   mlp:     [L][pos]   attribution of mlp_out at (layer, position)
//   tokens:  [{text}] | [string]   the clean prompt, one per position
//   saliency: {scores: [pos], value, baselineValue, delta, steps}   (optional)
//   exact:   {resid, heads, mlp} | null   activation patching of the same pair (the patching view's props)
//   onPatch(): compute the exact patching (a button while `exact` is null; none without it)
//   patchBusy: boolean   the exact patching is running
//   cleanLogitDiff, corruptedLogitDiff: numbers
// Any of resid / heads / mlp may be omitted; its row is then left out.

import {buttonGroup, check, css, divergingScale, formatNumber, h, textOn, tokenText, visibleText} from "./common.js";
import {headHeatmap, positionHeatmap} from "./patching.js";

export const name = "attribution";

const METHODS = ["atp", "eap-ig"];
const METHOD_TITLES = {"atp": "AtP: one backward pass on the corrupted run",
  "eap-ig": "EAP-IG: gradients averaged from the corrupted to the clean embedding"};
const ROWS = [["resid", "Residual stream"], ["heads", "Attention heads (all positions)"], ["mlp", "MLP output"]];

export function draw(el, props) {
  const {method = "atp", onMethod, tokens = [], saliency, exact = null, onPatch, patchBusy = false} = props;
  check(METHODS.includes(method), name, `method must be one of ${METHODS.join(", ")}, got ${JSON.stringify(method)}`);
  const tables = ROWS.map(([key]) => props[key]).concat(ROWS.map(([key]) => exact?.[key]));
  for (const table of tables) {
    check(table === undefined || table === null || (Array.isArray(table) && table.every(Array.isArray)), name,
      `attribution and patching tables must be [layer][pos or head] numbers, got ${typeof table}`);
  }
  const all = tables.filter(Boolean).flat(2).filter(Number.isFinite);
  const scale = divergingScale(Math.max(1, ...all.map(Math.abs)));
  el.append(h("div", {class: "nsv-title", text: "Attribution patching (share of the metric recovered, from gradients)"}),
    buttonGroup(METHODS, method, onMethod, "attribution method"),
    h("p", {class: "nsv-note", "data-role": "method", text: METHOD_TITLES[method]}), logitDiffs(props));
  if (!exact && onPatch) {
    el.append(h("p", {class: "nsv-note"}, h("button", {type: "button", "data-role": "run-patching", disabled: patchBusy,
      text: patchBusy ? "Patching…" : "Compare with exact activation patching", onclick: () => onPatch()}),
    " one forward pass per cell"));
  }
  for (const [key, title] of ROWS) {
    const table = props[key];
    if (!table) continue;
    const draw = (values, role, what, legendTitle) => (key === "heads"
      ? headHeatmap(values, {title: `${title}: ${what}`, role, scale, legendTitle})
      : positionHeatmap(values, {title: `${title}: ${what}`, role, tokens, scale, legendTitle}));
    const row = h("div", {class: "nsv-row"}, draw(table, `attr-${key}`, "attribution", "estimated"));
    if (exact?.[key]) row.append(draw(exact[key], `exact-${key}`, "patching", "recovered"));
    el.append(row);
    if (exact?.[key]) el.append(correlationNote(key, table, exact[key]));
  }
  if (saliency) el.append(saliencyStrip(saliency, tokens));
}

function logitDiffs({cleanLogitDiff, corruptedLogitDiff}) {
  const summary = h("p", {class: "nsv-note", "data-role": "logit-diffs"});
  if (Number.isFinite(cleanLogitDiff)) summary.append("Clean logit difference ", h("b", {text: formatNumber(cleanLogitDiff)}));
  if (Number.isFinite(corruptedLogitDiff)) {
    summary.append(summary.childNodes.length ? " · corrupted " : "Corrupted logit difference ",
      h("b", {text: formatNumber(corruptedLogitDiff)}));
  }
  return summary;
}

function correlationNote(key, estimated, measured) {
  const a = estimated.flat(), b = measured.flat();
  const n = Math.min(a.length, b.length);
  const rho = spearman(a.slice(0, n), b.slice(0, n));
  return h("p", {class: "nsv-note", "data-role": `corr-${key}`, "data-rho": Number.isFinite(rho) ? rho : "",
    text: `Rank correlation with exact patching: ${Number.isFinite(rho) ? rho.toFixed(3) : "undefined (constant)"}` +
      ` (Spearman, ${n} cells)`});
}

// Spearman's rho: Pearson's correlation of the ranks (ties get their average rank).
export function spearman(a, b) {
  const ra = ranks(a), rb = ranks(b);
  const mean = (v) => v.reduce((x, y) => x + y, 0) / v.length;
  const ma = mean(ra), mb = mean(rb);
  let num = 0, da = 0, db = 0;
  for (let i = 0; i < ra.length; i++) {
    num += (ra[i] - ma) * (rb[i] - mb);
    da += (ra[i] - ma) ** 2;
    db += (rb[i] - mb) ** 2;
  }
  return num / Math.sqrt(da * db);
}

function ranks(values) {
  const order = values.map((v, i) => [v, i]).sort((x, y) => x[0] - y[0]);
  const out = new Array(values.length);
  for (let start = 0; start < order.length;) {
    let end = start;
    while (end + 1 < order.length && order[end + 1][0] === order[start][0]) end++;
    for (let k = start; k <= end; k++) out[order[k][1]] = (start + end) / 2;
    start = end + 1;
  }
  return out;
}

// The clean prompt's tokens, each coloured by its saliency (logits) on a diverging scale.
function saliencyStrip({scores, value, baselineValue, delta, steps}, tokens) {
  check(Array.isArray(scores), name, `saliency.scores must be [pos] numbers, got ${typeof scores}`);
  const scale = divergingScale(Math.max(...scores.map(Math.abs).filter(Number.isFinite), 1e-9));
  const chips = h("div", {class: "nsv-mono", role: "list", style: {whiteSpace: "normal", lineHeight: "1.9"}});
  scores.forEach((score, p) => {
    const color = scale.color(score);
    const text = visibleText(tokenText(tokens[p]) ?? `${p}`);
    chips.append(h("span", {role: "listitem", "data-index": p, "data-score": score,
      title: `position ${p} “${text}”: ${formatNumber(score)}`, text,
      style: {display: "inline-block", margin: "2px 1px", padding: "1px 4px", borderRadius: "4px",
        border: "1px solid #d1d9e0", whiteSpace: "pre", background: css(color), color: textOn(color)}}));
  });
  const sum = scores.reduce((x, y) => x + y, 0);
  const note = Number.isFinite(value) && Number.isFinite(baselineValue)
    ? `Integrated gradients of the clean logit difference from the zero embedding (${steps} steps): the tokens ` +
      `sum to ${formatNumber(sum)}, the metric moves ${formatNumber(baselineValue)} → ${formatNumber(value)}` +
      (Number.isFinite(delta) ? ` (completeness error ${formatNumber(delta)})` : "")
    : "Integrated gradients of the clean logit difference";
  return h("section", {"data-role": "saliency"}, h("div", {class: "nsv-title", text: "Token saliency"}), chips,
    h("p", {class: "nsv-note", text: note}));
}
