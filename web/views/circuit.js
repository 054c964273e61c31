// Circuit view: the circuit neuroscope.lens.find_circuit returns (the graph Circuit.visualize()
// draws, its components ranked by score, faithfulness), the metric with the clicked nodes
// ablated, and a hypothesis test's result.
//
// Props:
//   svg: string            the graph (only svg/title/line/circle/rect/text elements and their
//                          drawing attributes are taken from it; anything else is dropped)
//   components: [{label, kind, layer, head, score}]   most important first
//   method, threshold, task, nExamples, nHeldout, nComponents
//   faithfulness, edgeFaithfulness: numbers (edgeFaithfulness may be null)
//   metric: {full, corrupted}
//   ablated: [label]       the nodes clicked (ablated from the corrupted run)
//   ablation: {full, corrupted, ablated, removed, components} | null   their effect
//   onNode(label): a node was clicked (no clicks without it)
//   hypothesis: {hypothesis, effect, ci, p_value, supported, summary, null, exact} | null
//   busy: string | null    what is running ("circuit", "ablation", "hypothesis")

import {check, formatNumber, h, s} from "./common.js";

export const name = "circuit";

const SVG_ELEMENTS = new Set(["svg", "title", "line", "circle", "rect", "text"]);
const SVG_ATTRIBUTES = new Set(["width", "height", "viewBox", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r",
  "fill", "stroke", "stroke-width", "stroke-linecap", "font-size", "font-family", "text-anchor", "data-node",
  "data-member"]);

export function draw(el, props) {
  const {svg = "", components = [], ablated = [], ablation = null, onNode, hypothesis = null, busy = null} = props;
  check(typeof svg === "string", name, `svg must be a string, got ${typeof svg}`);
  check(Array.isArray(components), name, "components must be an array of {label, score}");
  el.append(h("div", {class: "nsv-title", text: `Circuit of ${props.task ?? "the task"} (${props.method ?? ""}, ` +
    `threshold ${formatNumber(props.threshold ?? 0)})`}), summary(props));
  const graph = h("div", {"data-role": "circuit-graph", style: {overflowX: "auto"}});
  const picture = svg ? safeSvg(svg) : null;
  if (picture) {
    for (const node of picture.querySelectorAll("circle[data-node]")) {
      const label = node.getAttribute("data-node");
      const chosen = ablated.includes(label);
      if (chosen) {
        node.setAttribute("stroke", "#cf222e");
        node.setAttribute("stroke-width", "3");
      }
      node.setAttribute("role", "button");
      node.setAttribute("aria-pressed", String(chosen));
      node.setAttribute("aria-label", `${label}: ${chosen ? "ablated; click to restore" : "click to ablate"}`);
      if (onNode && !busy) {
        node.style.cursor = "pointer";
        node.addEventListener("click", () => onNode(label));
      }
    }
    graph.append(picture);
  }
  el.append(graph, h("p", {class: "nsv-note", text: onNode
    ? "Click a node to ablate it (its output patched from the corrupted run at every position); click again to restore."
    : ""}), ablationNote(ablated, ablation, busy));
  el.append(componentTable(components));
  if (hypothesis) el.append(hypothesisBox(hypothesis));
}

function summary({faithfulness, edgeFaithfulness, nExamples, nHeldout, components = [], nComponents, metric}) {
  const p = h("p", {class: "nsv-note", "data-role": "circuit-summary"});
  p.append(`${components.length} of ${nComponents ?? "?"} heads and MLPs, found on ${nExamples ?? "?"} pairs. `,
    "Faithfulness ", h("b", {"data-role": "faithfulness", text: formatNumber(faithfulness ?? NaN)}),
    nHeldout ? ` on ${nHeldout} held-out pairs` : " on the same pairs");
  if (Number.isFinite(edgeFaithfulness)) p.append(` (edges only: ${formatNumber(edgeFaithfulness)})`);
  if (metric) p.append(`; logit difference ${formatNumber(metric.full)} clean, ${formatNumber(metric.corrupted)} corrupted.`);
  return p;
}

function ablationNote(ablated, ablation, busy) {
  const p = h("p", {class: "nsv-note", "data-role": "ablation-result"});
  if (busy === "ablation") p.append("Ablating…");
  else if (ablation && ablated.length) {
    p.append(`With ${ablation.components.join(", ")} ablated the logit difference is `,
      h("b", {text: formatNumber(ablation.ablated)}), ` (full model ${formatNumber(ablation.full)}, corrupted ` +
        `${formatNumber(ablation.corrupted)}): `, h("b", {"data-role": "removed",
        text: `${formatNumber(100 * (ablation.removed ?? NaN))}%`}), " of the effect removed.");
  }
  return p;
}

function componentTable(components) {
  const largest = Math.max(1e-9, ...components.map((c) => Math.abs(c.score)));
  const rows = components.map((c) => h("tr", {"data-label": c.label},
    h("td", {text: c.label}), h("td", {class: "nsv-mono", text: formatNumber(c.score)}),
    h("td", {}, h("div", {style: {width: `${Math.round(120 * Math.abs(c.score) / largest)}px`, height: "8px",
      background: c.score >= 0 ? "#0969da" : "#cf222e"}}))));
  return h("table", {class: "nsv-table", "data-role": "components"},
    h("thead", {}, h("tr", {}, h("th", {text: "component"}), h("th", {text: "score"}), h("th", {text: ""}))),
    h("tbody", {}, ...rows));
}

function hypothesisBox(result) {
  const verdict = result.supported ? "supported" : "not supported";
  const box = h("section", {"data-role": "hypothesis", "data-supported": String(Boolean(result.supported))},
    h("div", {class: "nsv-title", text: `Hypothesis: ${result.hypothesis}`}),
    h("p", {class: "nsv-note"}, "Effect ", h("b", {text: formatNumber(result.effect)}),
      ` (95% CI ${formatNumber(result.ci?.[0])} to ${formatNumber(result.ci?.[1])}), p = `,
      h("b", {"data-role": "p-value", text: formatNumber(result.p_value)}), ` — ${verdict}`),
    h("p", {class: "nsv-note", text: result.summary ?? ""}));
  if (Array.isArray(result.null) && result.null.length) box.append(nullHistogram(result.null, result.effect));
  return box;
}

// The permutation null: a histogram of the effects of random components, the claim's effect in red.
function nullHistogram(values, effect) {
  const width = 360, height = 90, bins = 24;
  const lo = Math.min(effect, ...values), hi = Math.max(effect, ...values);
  const span = hi - lo || 1;
  const counts = new Array(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor(((v - lo) / span) * bins))] += 1;
  const top = Math.max(...counts, 1);
  const bar = (width - 20) / bins;
  const x = (v) => 10 + ((v - lo) / span) * (width - 20);
  return s("svg", {width, height, "data-role": "null-histogram", "aria-label": "effects of random components"},
    ...counts.map((count, i) => s("rect", {x: 10 + i * bar, y: height - 16 - (count / top) * (height - 26),
      width: Math.max(1, bar - 1), height: (count / top) * (height - 26), fill: "#8c959f"})),
    s("line", {x1: x(effect), x2: x(effect), y1: 4, y2: height - 16, stroke: "#cf222e", "stroke-width": 2}),
    s("text", {x: 10, y: height - 2, "font-size": 10, fill: "#59636e", text: formatNumber(lo)}),
    s("text", {x: width - 10, y: height - 2, "font-size": 10, fill: "#59636e", "text-anchor": "end",
      text: formatNumber(hi)}));
}

// The SVG from Python, rebuilt element by element from an allow-list (no scripts, no
// handlers, no links, no styles): the graph's text comes from the task's name and labels.
export function safeSvg(text) {
  const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
  const root = parsed.documentElement;
  const svgNamespace = s("svg").namespaceURI; // as views/common.js creates SVG elements
  if (!root || root.nodeName !== "svg" || root.namespaceURI !== svgNamespace || parsed.querySelector("parsererror")) {
    return null;
  }
  const copy = (node) => {
    if (node.nodeType === 3) return document.createTextNode(node.nodeValue);
    if (node.nodeType !== 1 || !SVG_ELEMENTS.has(node.localName)) return null;
    const out = document.createElementNS(svgNamespace, node.localName);
    for (const attribute of node.attributes) {
      if (SVG_ATTRIBUTES.has(attribute.name)) out.setAttribute(attribute.name, attribute.value);
    }
    for (const child of node.childNodes) {
      const kept = copy(child);
      if (kept) out.append(kept);
    }
    return out;
  };
  return copy(root);
}
