// Tokens view: the prompt's tokens as chips (whitespace shown as "·", "⏎", "⇥"); for the
// hovered token a panel shows its position and id, the top next-token predictions as bars,
// and its residual-stream norm at each layer as a small SVG chart.
//
// Props:
//   tokens:        [{id: number, text: string}]   the prompt, one entry per position
//   predictions:   [pos][{id, text, prob}]         top next-token predictions after each position
//                                                  (optional; largest first)
//   residualNorms: [layer + 1][pos] numbers        residual norm before each layer and after the
//                                                  last (optional)
//   hovered:       number | null                   the position whose panel is shown
//   onHover(index | null)                          the pointer entered (or focus moved to) chip
//                                                  `index`; null on Escape. Not called again for
//                                                  the chip already hovered.

import {check, formatNumber, h, predictionBars, s, visibleText} from "./common.js";

export const name = "tokens";

const CHIP = "display:inline-block;margin:2px 1px;padding:1px 4px;border:1px solid #d1d9e0;" +
  "border-radius:4px;background:#f6f8fa;cursor:default;";
const CHIP_ON = "background:#fff8c5;border-color:#d4a72c;box-shadow:0 0 0 1px #d4a72c;";

export function draw(el, props) {
  const {tokens, predictions, residualNorms, hovered = null, onHover} = props;
  check(Array.isArray(tokens), name, `tokens must be an array of {id, text}, got ${typeof tokens}`);
  check(hovered === null || (Number.isInteger(hovered) && hovered >= 0 && hovered < tokens.length), name,
    `hovered ${hovered} is not a position of the ${tokens.length} tokens`);
  const hover = (index) => { if (index !== hovered) onHover?.(index); };

  const chips = h("div", {class: "nsv-mono", "data-role": "chips", role: "list",
    style: {whiteSpace: "normal", lineHeight: "1.9", maxWidth: "100%"},
    onkeydown: (event) => { if (event.key === "Escape") hover(null); }});
  tokens.forEach((token, index) => {
    chips.append(h("span", {role: "listitem", tabindex: 0, "data-index": index, "data-id": token.id,
      title: `position ${index} · id ${token.id}`, text: visibleText(token.text),
      style: CHIP + (index === hovered ? CHIP_ON : "") + "white-space:pre;",
      onmouseenter: () => hover(index), onfocus: () => hover(index)}));
  });
  el.append(h("div", {class: "nsv-title", text: `Tokens (${tokens.length})`}), chips);
  el.append(hovered === null
    ? h("p", {class: "nsv-note", "data-role": "token-panel", text: "Hover a token to see its predictions and residual norms."})
    : panel(tokens, predictions, residualNorms, hovered));
}

function panel(tokens, predictions, residualNorms, index) {
  const token = tokens[index];
  const header = h("div", {class: "nsv-title"}, `Position ${index}: `,
    h("span", {class: "nsv-mono", text: `“${visibleText(token.text)}”`}), ` · id ${token.id}`);
  const row = h("div", {class: "nsv-row"});
  if (predictions?.[index]) row.append(predictionBars(predictions[index], {title: "Next-token predictions"}));
  if (residualNorms?.length) row.append(normChart(residualNorms.map((layer) => layer[index]), index));
  return h("div", {"data-role": "token-panel", "data-index": index,
    style: {marginTop: "8px", padding: "8px", border: "1px solid #d1d9e0", borderRadius: "6px"}}, header, row);
}

// Residual norm against layer: a line with dots, layer numbers on the x axis, min/max on the y axis.
function normChart(values, index) {
  const width = 260, height = 130, left = 40, right = 8, top = 18, bottom = 30;
  const finite = values.filter(Number.isFinite);
  const max = Math.max(...finite, 0) || 1;
  const x = (i) => left + (values.length > 1 ? (i * (width - left - right)) / (values.length - 1) : (width - left - right) / 2);
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  const stride = Math.ceil(values.length / 13);
  const chart = s("svg", {width, height, viewBox: `0 0 ${width} ${height}`, "data-role": "residual-norms",
    "aria-label": `residual norm per layer at position ${index}`, style: {fontSize: "10px", overflow: "visible"}},
    s("text", {x: 0, y: 10, fill: "#1f2328", "font-weight": 600, text: "Residual norm per layer"}),
    s("line", {x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, stroke: "#8c959f"}),
    s("line", {x1: left, y1: top, x2: left, y2: height - bottom, stroke: "#8c959f"}),
    s("text", {x: left - 4, y: top + 4, "text-anchor": "end", fill: "#59636e", text: formatNumber(max)}),
    s("text", {x: left - 4, y: height - bottom, "text-anchor": "end", fill: "#59636e", text: "0"}),
    s("text", {x: (left + width) / 2, y: height - 2, "text-anchor": "middle", fill: "#59636e", text: "layer"}));
  const points = values.map((v, i) => [x(i), y(Number.isFinite(v) ? v : 0)]);
  chart.append(s("polyline", {points: points.map((p) => p.join(",")).join(" "), fill: "none",
    stroke: "#0969da", "stroke-width": 1.5}));
  values.forEach((v, i) => {
    chart.append(s("circle", {cx: points[i][0], cy: points[i][1], r: 2.5, fill: "#0969da"},
      s("title", {text: `layer ${i}: ${formatNumber(v)}`})));
    if (i % stride === 0) {
      chart.append(s("text", {x: points[i][0], y: height - bottom + 12, "text-anchor": "middle",
        fill: "#3d444d", text: String(i)}));
    }
  });
  return chart;
}
