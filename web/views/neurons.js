// Neuron view: the top-activating tokens of one MLP neuron, each in its context; the token is
// highlighted with a colour by its activation (relative to the largest shown) and the value
// is printed beside the line.
//
// Props:
//   layer, neuron: numbers                 which neuron (blocks.{layer}.mlp.hook_post[..., neuron])
//   examples: [{tokens_left: [string], token: string, tokens_right: [string], activation: number}]
//             the contexts, most activating first (`left` / `right`, as neuroscope.lens.neurons
//             names them, are read too)

import {check, css, formatNumber, h, sequentialScale, textOn, visibleText} from "./common.js";

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
  el.append(h("div", {class: "nsv-title", text: `Neuron L${layer} N${neuron}: top activations`}),
    examples.length ? list : h("p", {class: "nsv-note", text: "No examples."}));
}
