// Activation patching view: how much of the clean-vs-corrupted metric each patched activation
// recovers, as layer x position heatmaps (residual stream, MLP output) and a layer x head
// heatmap, on one diverging scale centred on 0 (blue: recovered, red: pushed the other way;
// 1 = fully restored the clean value when the metric is normalised).
//
// Props:
//   resid:  [L][pos]   patching resid_pre at (layer, position)
//   mlp:    [L][pos]   patching mlp_out at (layer, position)
//   heads:  [L][H]     patching each head's output at all positions
//   tokens: [{text}] | [string]   the (clean) prompt, one per position
//   cleanLogitDiff, corruptedLogitDiff: numbers   the metric on the clean and corrupted runs
//   average: {heads: [L][H], nPairs, dataset, workers} | null   head patching averaged over a
//            dataset's pairs (lens.patch_dataset), drawn under the prompt's heatmaps
//   onAverage(): compute it (a button while `average` is null; none without it)
//   averageBusy: boolean   the average is running
// Any of resid / mlp / heads may be omitted; its heatmap is then left out.

import {check, divergingScale, formatNumber, h, heatmap, tokenText, visibleText} from "./common.js";

export const name = "patching";

export function draw(el, props) {
  const {resid, mlp, heads, tokens = [], cleanLogitDiff, corruptedLogitDiff, average = null, onAverage,
    averageBusy = false} = props;
  const tables = {resid, mlp, heads};
  for (const [key, table] of Object.entries(tables)) {
    check(table === undefined || table === null || (Array.isArray(table) && table.every(Array.isArray)), name,
      `${key} must be [layer][${key === "heads" ? "head" : "pos"}] numbers, got ${typeof table}`);
  }
  const all = Object.values(tables).filter(Boolean).flat(2).filter(Number.isFinite);
  const scale = divergingScale(Math.max(1, ...all.map(Math.abs)));
  const summary = h("p", {class: "nsv-note", "data-role": "logit-diffs"});
  if (Number.isFinite(cleanLogitDiff)) summary.append("Clean logit difference ", h("b", {text: formatNumber(cleanLogitDiff)}));
  if (Number.isFinite(corruptedLogitDiff)) {
    summary.append(summary.childNodes.length ? " · corrupted " : "Corrupted logit difference ",
      h("b", {text: formatNumber(corruptedLogitDiff)}));
  }
  el.append(h("div", {class: "nsv-title", text: "Activation patching (share of the metric recovered)"}), summary);
  const row = h("div", {class: "nsv-row"});
  if (resid) row.append(positionHeatmap(resid, {title: "Residual stream", role: "resid", tokens, scale}));
  if (mlp) row.append(positionHeatmap(mlp, {title: "MLP output", role: "mlp", tokens, scale}));
  if (heads) row.append(headHeatmap(heads, {title: "Attention heads (all positions)", role: "heads", scale}));
  el.append(row);
  if (average) {
    check(Array.isArray(average.heads) && average.heads.every(Array.isArray), name,
      `average.heads must be [layer][head] numbers, got ${typeof average.heads}`);
    const workers = average.workers > 1 ? ` on ${average.workers} workers` : "";
    const values = average.heads.flat().filter(Number.isFinite);
    el.append(headHeatmap(average.heads, {title: `Attention heads, mean over ${average.nPairs} pairs of ` +
      `${average.dataset}${workers}`, role: "average", scale: divergingScale(Math.max(1, ...values.map(Math.abs)))}));
  } else if (onAverage) {
    el.append(h("p", {class: "nsv-note"}, h("button", {type: "button", "data-role": "run-average",
      disabled: averageBusy, text: averageBusy ? "Averaging…" : "Average the head patching over the demo's IOI pairs",
      onclick: () => onAverage()})));
  }
}

// A [layer][pos] table as a labelled heatmap section (data-role=role); also drawn by the attribution view.
export function positionHeatmap(table, {title, role, tokens = [], scale, legendTitle = "recovered"}) {
  const positions = Math.max(0, ...table.map((r) => r.length));
  const labels = Array.from({length: positions}, (_, p) => visibleText(tokenText(tokens[p]) ?? `${p}`));
  return section(title, role, heatmap({rows: table.length, cols: positions, value: (l, p) => table[l][p], scale,
    rowLabels: table.map((_, l) => `${l}`), colLabels: labels, rowTitle: "layer", colTitle: "position",
    legendTitle, maxWidth: 520, maxHeight: 300, label: `${title}: ${table.length} layers x ${positions} positions`,
    describe: (l, p) => `${title}, layer ${l}, position ${p} “${labels[p]}”: ${formatNumber(table[l][p])}`}));
}

// A [layer][head] table as a labelled heatmap section (data-role=role).
export function headHeatmap(heads, {title, role, scale, legendTitle = "recovered"}) {
  const count = Math.max(0, ...heads.map((r) => r.length));
  return section(title, role, heatmap({rows: heads.length, cols: count,
    value: (l, hd) => heads[l][hd], scale, rowLabels: heads.map((_, l) => `L${l}`),
    colLabels: Array.from({length: count}, (_, hd) => `H${hd}`), rowTitle: "layer", colTitle: "head",
    legendTitle, maxWidth: 320, maxHeight: 320, minCell: 8,
    label: `${title}: ${heads.length} layers x ${count} heads`,
    describe: (l, hd) => `L${l} H${hd}: ${formatNumber(heads[l][hd])}`}));
}

const section = (title, role, body) => h("section", {"data-role": role}, h("div", {class: "nsv-title", text: title}), body);
