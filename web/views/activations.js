// Activations view: per-layer activation norms of one component (residual stream, attention
// output or MLP output) as a layers x positions heatmap with token labels, and buttons to
// switch component.
//
// Props:
//   norms:     {residual: [L][pos], attention: [L][pos], mlp: [L][pos]}   L2 norms (any subset)
//   tokens:    [{text}] | [string]                                          one per position
//   component: "residual" | "attention" | "mlp"                            the one drawn
//   onComponent(component)                                                 a button was clicked
//   onHover({layer, pos} | null)                                           optional: pointer over a cell

import {buttonGroup, check, formatNumber, h, heatmap, sequentialScale, tokenText, visibleText} from "./common.js";

export const name = "activations";

const TITLES = {residual: "Residual stream norm", attention: "Attention output norm", mlp: "MLP output norm"};

export function draw(el, props) {
  const {norms = {}, tokens = [], component = "residual", onComponent, onHover} = props;
  const components = Object.keys(norms);
  check(components.includes(component), name,
    `component "${component}" has no norms; norms has ${components.join(", ") || "nothing"}`);
  const values = norms[component];
  check(Array.isArray(values) && values.every(Array.isArray), name, `norms.${component} must be [layer][pos]`);
  const layers = values.length;
  const positions = Math.max(0, ...values.map((row) => row.length));
  const finite = values.flat().filter(Number.isFinite);
  const labels = Array.from({length: positions}, (_, p) => visibleText(tokenText(tokens[p]) ?? `${p}`));
  el.append(
    h("div", {class: "nsv-title", text: TITLES[component] ?? `${component} norm`}),
    buttonGroup(components, component, onComponent, "component"),
    heatmap({rows: layers, cols: positions, value: (l, p) => values[l][p],
      scale: sequentialScale(Math.min(0, ...finite), Math.max(1e-9, ...finite)),
      rowLabels: Array.from({length: layers}, (_, l) => `${l}`), colLabels: labels,
      rowTitle: "layer", colTitle: "position", legendTitle: "norm", maxWidth: 720, maxHeight: 320, maxCell: 28,
      label: `${component} norms: ${layers} layers x ${positions} positions`,
      describe: (l, p) => `layer ${l}, position ${p} “${labels[p]}”: ${formatNumber(values[l][p])}`,
      onHover: onHover && ((l, p) => onHover(l === null ? null : {layer: l, pos: p}))}));
}
