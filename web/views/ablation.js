// Ablation view: a clickable layer x head grid plus one MLP cell per layer (ablated cells are
// filled and marked "×"), the ablation kind, and the top predictions before and after side by
// side with the change in the chosen logit difference.
//
// Props:
//   nLayers, nHeads: numbers
//   ablations: [{layer, head} | {layer, mlp: true}]    the ablated components (an entry may carry
//                                                     its own `kind`, shown in its tooltip)
//   kind:      "zero" | "mean" | "resample"           how components are ablated
//   baseline:  [{text, prob}]                         top predictions without ablation
//   ablated:   [{text, prob}] | null                  top predictions with the ablations (null:
//                                                     not run yet)
//   logitDiff: {baseline: number, ablated: number | null} | null   the chosen logit difference
//   onToggle({layer, head} | {layer, mlp: true})      a grid cell was clicked
//   onKind(kind)                                      a kind button was clicked
//   busy:      boolean                                a re-run is in progress

import {buttonGroup, check, formatNumber, h, predictionBars} from "./common.js";

export const name = "ablation";

const KINDS = ["zero", "mean", "resample"];
const CELL = "width:22px;height:22px;padding:0;border:1px solid #d1d9e0;border-radius:3px;font:11px system-ui;" +
  "cursor:pointer;";
const OFF = "background:#f6f8fa;color:#8c959f;";
const ON = "background:#cf222e;border-color:#a40e26;color:#fff;font-weight:700;";

export function draw(el, props) {
  const {nLayers, nHeads, ablations = [], kind = "zero", onToggle, onKind, busy = false} = props;
  check(Number.isInteger(nLayers) && nLayers > 0 && Number.isInteger(nHeads) && nHeads > 0, name,
    `nLayers and nHeads must be positive integers, got ${nLayers} and ${nHeads}`);
  const chosen = new Map();
  for (const entry of ablations) {
    check(Number.isInteger(entry?.layer) && (entry.mlp === true || Number.isInteger(entry.head)), name,
      `ablation ${JSON.stringify(entry)} is neither {layer, head} nor {layer, mlp: true}`);
    chosen.set(entry.mlp ? `${entry.layer}:mlp` : `${entry.layer}:${entry.head}`, entry);
  }
  el.setAttribute("aria-busy", String(Boolean(busy)));
  el.append(h("div", {class: "nsv-title", text: "Ablations"}), buttonGroup(KINDS, kind, onKind, "ablation kind"),
    h("div", {class: "nsv-row"}, grid(nLayers, nHeads, chosen, kind, onToggle), results(props, busy, chosen.size)));
}

function grid(nLayers, nHeads, chosen, kind, onToggle) {
  const table = h("div", {"data-role": "ablation-grid", role: "grid",
    style: {display: "grid", gridTemplateColumns: `auto repeat(${nHeads}, 22px) 10px 36px`, gap: "2px",
      alignItems: "center", fontSize: "10px"}});
  table.append(h("span"), ...Array.from({length: nHeads}, (_, hd) => h("span", {text: `H${hd}`,
    style: {textAlign: "center", color: "#3d444d"}})), h("span"), h("span", {text: "MLP", style: {color: "#3d444d"}}));
  const cell = (target, key, label, width) => {
    const entry = chosen.get(key);
    return h("button", {type: "button", "aria-label": label, "aria-pressed": String(Boolean(entry)),
      "data-layer": target.layer, "data-head": target.head, "data-mlp": target.mlp ? "true" : undefined,
      title: entry ? `${label}: ablated (${entry.kind ?? kind})` : `${label}: click to ablate`,
      text: entry ? "×" : "", style: CELL + (entry ? ON : OFF) + (width ? `width:${width}px;` : ""),
      onclick: () => onToggle?.(target)});
  };
  for (let layer = 0; layer < nLayers; layer++) {
    table.append(h("span", {text: `L${layer}`, style: {color: "#3d444d", paddingRight: "4px"}}));
    for (let head = 0; head < nHeads; head++) table.append(cell({layer, head}, `${layer}:${head}`, `L${layer} H${head}`));
    table.append(h("span"), cell({layer, mlp: true}, `${layer}:mlp`, `L${layer} MLP`, 36));
  }
  return h("div", {class: "nsv-scroll"}, table);
}

function results({baseline = [], ablated = null, logitDiff = null, kind = "zero"}, busy, count) {
  const box = h("div", {"data-role": "ablation-results", style: {minWidth: "260px"}});
  box.append(h("p", {class: "nsv-note", text: count ? `${count} component${count > 1 ? "s" : ""} ${kind}-ablated`
    : "Click heads or MLPs to ablate them."}));
  const side = h("div", {class: "nsv-row"}, predictionBars(baseline, {title: "Baseline", role: "baseline"}));
  side.append(ablated ? predictionBars(ablated, {title: "Ablated", role: "ablated", baseline})
    : h("div", {"data-role": "ablated"}, h("div", {class: "nsv-title", text: "Ablated"}),
      h("p", {class: "nsv-note", text: busy ? "" : "Not run yet."})));
  box.append(side);
  if (busy) box.append(h("p", {class: "nsv-note", "data-role": "busy", text: "Running…", role: "status"}));
  if (logitDiff && Number.isFinite(logitDiff.baseline)) {
    const after = logitDiff.ablated;
    const line = h("p", {"data-role": "logit-diff"}, "Logit difference: ",
      h("b", {text: formatNumber(logitDiff.baseline)}), " baseline");
    if (Number.isFinite(after)) {
      const change = after - logitDiff.baseline;
      line.append(" → ", h("b", {text: formatNumber(after)}), " ablated (",
        h("span", {text: `Δ ${change >= 0 ? "+" : "−"}${formatNumber(Math.abs(change))}`,
          style: {color: change >= 0 ? "#1a7f37" : "#cf222e", fontWeight: 600}}), ")");
    }
    box.append(line);
  }
  return box;
}
