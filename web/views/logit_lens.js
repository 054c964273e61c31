// Logit lens view: a layer x position grid; each cell shows the most likely next token when the
// residual stream at that layer and position is read through the final norm and unembedding,
// shaded by its probability. Each cell's title (tooltip) lists the top-k with probabilities.
// Cells are DOM text (legible at any size); wide prompts scroll sideways.
//
// Props:
//   table:  [layer + 1][pos][{text, prob}]   top-k per cell, largest first (row 0: the embeddings,
//                                            last row: the model's own output)
//   tokens: [{text}] | [string]              the prompt, one per column
//   layers: [string]                         optional row labels; default "0_pre" ... "final_post"
//                                            as in neuroscope.analysis.logit_lens

import {check, css, formatProb, h, legend, sequentialScale, textOn, tokenText, visibleText} from "./common.js";

export const name = "logit_lens";

const CELL_WIDTH = 64;

export function draw(el, props) {
  const {table, tokens = []} = props;
  check(Array.isArray(table) && table.every(Array.isArray), name,
    `table must be [layer + 1][pos][{text, prob}], got ${Array.isArray(table) ? "rows that are not arrays" : typeof table}`);
  const positions = Math.max(tokens.length, ...table.map((row) => row.length));
  const layers = props.layers ?? table.map((_, i) => (i === table.length - 1 ? "final_post" : `${i}_pre`));
  check(layers.length === table.length, name, `layers has ${layers.length} labels for ${table.length} rows`);
  const scale = sequentialScale(0, 1);
  const grid = h("div", {"data-role": "lens-grid", role: "table",
    "aria-label": `logit lens: ${table.length} layers x ${positions} positions`,
    style: {display: "grid", gridTemplateColumns: `auto repeat(${positions}, ${CELL_WIDTH}px)`, gap: "1px",
      background: "#eaeef2", border: "1px solid #eaeef2", width: "max-content"}});
  const header = (text, extra = {}) => h("div", {role: "columnheader", class: "nsv-mono", text, ...extra,
    style: {background: "#fff", padding: "2px 4px", overflow: "hidden", textOverflow: "ellipsis", fontWeight: 600}});
  grid.append(header("layer \\ token"));
  for (let p = 0; p < positions; p++) {
    const text = visibleText(tokenText(tokens[p]) ?? `${p}`);
    grid.append(header(text, {title: `position ${p}: “${text}”`, "data-pos": p}));
  }
  table.forEach((row, layer) => {
    grid.append(h("div", {role: "rowheader", text: layers[layer], style: {background: "#fff", padding: "2px 6px",
      textAlign: "right", color: "#3d444d", whiteSpace: "nowrap"}}));
    for (let p = 0; p < positions; p++) {
      const top = row[p] ?? [];
      const color = top.length ? scale.color(top[0].prob) : [246, 248, 250];
      const title = `${layers[layer]} · position ${p} “${visibleText(tokenText(tokens[p]) ?? "")}”\n` +
        top.map((entry) => `${visibleText(entry.text)}  ${formatProb(entry.prob)}`).join("\n");
      grid.append(h("div", {role: "cell", class: "nsv-mono", "data-layer": layer, "data-pos": p, title,
        text: top.length ? visibleText(top[0].text) : "",
        style: {background: css(color), color: textOn(color), padding: "2px 4px", overflow: "hidden",
          textOverflow: "ellipsis"}}));
    }
  });
  el.append(h("div", {class: "nsv-title", text: "Logit lens: top next token by layer"}),
    h("div", {class: "nsv-row", style: {flexWrap: "nowrap"}},
      h("div", {class: "nsv-scroll"}, grid), legend(scale, {height: 100, title: "top-1 prob"})));
}
