// Neuron view: the top-activating tokens of one MLP neuron, each in its context; the token is
// highlighted with a colour by its activation (relative to the largest shown) and the value
// is printed beside the line.
//
// Props:
//   layer, neuron: numbers                 which neuron (blocks.{layer}.mlp.hook_post[..., neuron])
//   examples: [{tokens_left: [string], token: string, tokens_right: [string], activation: number}]
//             the contexts, most activating first (`left` / `right`, as neuroscope.lens.neurons
//             names them, are read too)
//   dataset, nTokens: string, number (optional)     the dataset searched, and its token count
//   histogram: {edges: [number], counts: [number]}  (optional) the activation over every token
//   logitEffect: {top: [[token, value]], bottom: [[token, value]]}  (optional) W_out[n] @ W_U

import {check, css, formatNumber, h, s, sequentialScale, textOn, visibleText} from "./common.js";

export const name = "neurons";

const newlines = (text) => String(text).replace(/\r?\n/g, "⏎");

export function draw(el, props) {
  const {layer, neuron, examples = []} = props;
  check(Array.isArray(examples), name, `examples must be an array, got ${typeof examples}`);
  const largest = Math.max(1e-9, ...examples.map((example) => Math.abs(example.activation)).filter(Number.isFinite));
  const scale = sequentialScale(0, largest);
  const list = h("ol", {"data-role": "examples", style: {listStyle: "none", padding: 0, margin: 0}});
  examples.forEach((example, index) => {
    check(typeof example.token === "string", name, `examples[${index}].token must be a string, got ${typeof example.token}`);
    const color = scale.color(Math.abs(example.activation));
    list.append(h("li", {"data-index": index, style: {display: "flex", gap: "10px", alignItems: "baseline",
      padding: "2px 0", borderBottom: "1px solid #eaeef2"}},
    h("span", {text: formatNumber(example.activation), "data-role": "activation",
      style: {width: "56px", flex: "none", textAlign: "right", fontVariantNumeric: "tabular-nums"}}),
    h("span", {class: "nsv-mono", style: {overflow: "hidden", textOverflow: "ellipsis"}},
      h("span", {text: newlines((example.tokens_left ?? example.left ?? []).join("")), style: {color: "#59636e"}}),
      h("mark", {text: visibleText(example.token), "data-role": "token",
        title: `activation ${formatNumber(example.activation)}`,
        style: {background: css(color), color: textOn(color), padding: "0 2px", borderRadius: "3px",
          outline: "1px solid #d4a72c"}}),
      h("span", {text: newlines((example.tokens_right ?? example.right ?? []).join("")), style: {color: "#59636e"}}))));
  });
  const {dataset = null, nTokens = null, histogram = null, logitEffect = null} = props;
  const over = dataset ? ` over ${dataset}${nTokens ? ` (${nTokens.toLocaleString("en")} tokens)` : ""}` : "";
  el.append(h("div", {class: "nsv-title", text: `Neuron L${layer} N${neuron}: top activations${over}`}),
    examples.length ? list : h("p", {class: "nsv-note", text: "No examples."}));
  if (histogram || logitEffect) {
    el.append(h("div", {class: "nsv-row", style: {gap: "28px", marginTop: "10px", flexWrap: "wrap"}},
      ...(histogram ? [histogramChart(histogram)] : []), ...(logitEffect ? [effectLists(logitEffect)] : [])));
  }
}

// The activation over every token of the dataset: one bar per bin (log-scaled height, so
// the rare large activations stay visible next to the many near zero).
function histogramChart({edges, counts}) {
  check(Array.isArray(counts) && edges.length === counts.length + 1, name,
    `histogram has ${edges?.length} edges for ${counts?.length} bins; expected one more edge than bins`);
  const width = 300, height = 120, left = 8, bottom = 18, top = 16;
  const peak = Math.log1p(Math.max(1, ...counts));
  const bar = (width - 2 * left) / counts.length;
  const chart = s("svg", {width, height, viewBox: `0 0 ${width} ${height}`, "data-role": "histogram",
    "aria-label": "activation histogram over the dataset", style: {fontSize: "10px", overflow: "visible"}},
  s("text", {x: 0, y: 10, fill: "#1f2328", "font-weight": 600, text: "Activation over every token (log count)"}),
  s("text", {x: left, y: height - 4, fill: "#59636e", text: formatNumber(edges[0])}),
  s("text", {x: width - left, y: height - 4, "text-anchor": "end", fill: "#59636e",
    text: formatNumber(edges[edges.length - 1])}));
  counts.forEach((count, i) => {
    const size = (Math.log1p(count) / peak) * (height - top - bottom);
    chart.append(s("rect", {x: left + i * bar, y: height - bottom - size, width: Math.max(1, bar - 1), height: size,
      fill: "#0969da", "data-role": "bin"},
    s("title", {text: `${formatNumber(edges[i])} to ${formatNumber(edges[i + 1])}: ${count} tokens`})));
  });
  return chart;
}

function effectLists({top = [], bottom = []}) {
  const column = (title, items) => h("div", {},
    h("div", {class: "nsv-note", text: title}),
    h("ol", {style: {margin: 0, paddingLeft: "18px"}, "data-role": title.startsWith("Promotes") ? "promotes" : "suppresses"},
      ...items.map(([token, value]) => h("li", {class: "nsv-mono", text: `${visibleText(token)}  ${formatNumber(value)}`}))));
  return h("div", {class: "nsv-row", style: {gap: "18px"}, "data-role": "logit-effect"},
    column("Promotes (direct logit effect)", top), column("Suppresses", bottom));
}
