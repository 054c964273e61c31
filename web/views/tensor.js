// Tensor view: one tensor's values as numpy-style text (truncated like numpy's repr), with a
// heatmap of a 2-D tensor or a histogram of any other, as neuroscope.display builds them.
//
// Props:
//   shape:     [number]        the tensor's shape
//   dtype:     string          its dtype ("float32", ...)
//   backend:   string          optional: where it lives ("numpy", "torch", "js", ...)
//   text:      string          the values as numpy prints them (already truncated)
//   heatmap:   {rows, cols, data: {shape, data: Float32Array} | Float32Array, rowStep, colStep} | null
//              a 2-D tensor's values, every rowStep-th row and colStep-th column when it was large
//   histogram: {edges: [number], counts: [number]} | null   the values of any other tensor
//   stats:     {min, max, mean, std, count}   optional summary line

import {check, divergingScale, formatNumber, h, heatmap, s, sequentialScale} from "./common.js";

export const name = "tensor";

export function draw(el, props) {
  const {shape, dtype = "float32", backend = null, text = "", stats = null} = props;
  check(Array.isArray(shape), name, `shape must be an array of sizes, got ${JSON.stringify(shape)}`);
  const head = `Tensor [${shape.join(", ")}] ${dtype}` + (backend ? ` · ${backend}` : "");
  const row = h("div", {class: "nsv-row"});
  if (props.heatmap) row.append(grid(props.heatmap));
  if (props.histogram) row.append(histogramChart(props.histogram));
  el.append(h("div", {class: "nsv-title", text: head}),
    stats ? h("div", {class: "nsv-note", "data-role": "stats", text: `min ${formatNumber(stats.min)} · max ` +
      `${formatNumber(stats.max)} · mean ${formatNumber(stats.mean)} · std ${formatNumber(stats.std)}`}) : null,
    h("pre", {class: "nsv-mono", "data-role": "values", style: {margin: "4px 0 8px"}, text}), row);
}

function grid({rows, cols, data: given, rowStep = 1, colStep = 1}) {
  const data = given?.data ?? given; // a Tensor arrives as {shape, dtype, data}
  check(data?.length === rows * cols, name, `heatmap.data has ${data?.length} values; ${rows} x ${cols} needs ${rows * cols}`);
  const finite = Array.from(data).filter(Number.isFinite);
  const min = Math.min(0, ...finite), max = Math.max(0, ...finite);
  const scale = min < 0 && max > 0 ? divergingScale(Math.max(-min, max)) : sequentialScale(min, max > min ? max : min + 1);
  const at = (r, c) => data[r * cols + c];
  const labels = (n, step) => Array.from({length: n}, (_, i) => `${i * step}`);
  return heatmap({rows, cols, value: at, scale, rowLabels: labels(rows, rowStep), colLabels: labels(cols, colStep),
    rowTitle: rowStep > 1 ? `dim 0 (every ${rowStep})` : "dim 0", colTitle: colStep > 1 ? `dim 1 (every ${colStep})` : "dim 1",
    legendTitle: "value", maxWidth: 520, maxHeight: 360, label: `tensor heatmap ${rows} x ${cols}`,
    describe: (r, c) => `[${r * rowStep}, ${c * colStep}]: ${formatNumber(at(r, c))}`});
}

function histogramChart({edges, counts}) {
  check(Array.isArray(counts) && edges?.length === counts.length + 1, name,
    `histogram has ${edges?.length} edges for ${counts?.length} bins; expected one more edge than bins`);
  const width = 320, height = 130, left = 8, bottom = 18, top = 16;
  const peak = Math.max(1, ...counts);
  const bar = (width - 2 * left) / counts.length;
  const chart = s("svg", {width, height, viewBox: `0 0 ${width} ${height}`, "data-role": "histogram",
    "aria-label": "histogram of the values", style: {fontSize: "10px", overflow: "visible"}},
  s("text", {x: 0, y: 10, fill: "#1f2328", "font-weight": 600, text: "Histogram of the values"}),
  s("text", {x: left, y: height - 4, fill: "#59636e", text: formatNumber(edges[0])}),
  s("text", {x: width - left, y: height - 4, "text-anchor": "end", fill: "#59636e",
    text: formatNumber(edges[edges.length - 1])}));
  counts.forEach((count, i) => {
    const size = (count / peak) * (height - top - bottom);
    chart.append(s("rect", {x: left + i * bar, y: height - bottom - size, width: Math.max(1, bar - 1), height: size,
      fill: "#0969da", "data-role": "bin"},
    s("title", {text: `${formatNumber(edges[i])} to ${formatNumber(edges[i + 1])}: ${count}`})));
  });
  return chart;
}
