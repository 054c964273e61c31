// Attention view: a layer x head grid of pattern thumbnails (one Canvas; click selects a head),
// the selected head's pattern large with query/key token labels, and a layer x head heatmap of
// the chosen head score with the selected head outlined (click selects too).
//
// Props:
//   patterns:  {shape: [L, H, Q, K], data: Float32Array}   attention probabilities, row-major
//   tokens:    [{text}] | [string]                          the Q (= K) prompt tokens
//   scores:    {previous_token: [L][H], duplicate_token: [L][H], induction: [L][H],
//               entropy: [L][H]}                            per-head scores (any subset of kinds)
//   selected:  {layer, head} | null                         the head shown large (null, or a
//                                                           null layer / head: none)
//   scoreKind: "previous_token" | "duplicate_token" | "induction" | "entropy"
//   onSelect({layer, head})                                 a thumbnail or score cell was clicked
//   onScoreKind(kind)                                       optional: shows buttons to switch kinds

import {
  buttonGroup, check, columnAxis, formatNumber, gridPointer, h, heatmap, makeCanvas, paintImage,
  rowAxis, sequentialScale, tokenText, visibleText,
} from "./common.js";

export const name = "attention";

export function draw(el, props) {
  const {patterns, tokens = [], scores = {}, scoreKind, onSelect, onScoreKind} = props;
  const selected = Number.isInteger(props.selected?.layer) && Number.isInteger(props.selected?.head)
    ? props.selected : null;
  check(patterns && Array.isArray(patterns.shape) && patterns.shape.length === 4, name,
    `patterns.shape must be [layers, heads, queries, keys], got ${JSON.stringify(patterns?.shape)}`);
  const [L, H, Q, K] = patterns.shape;
  check(patterns.data?.length === L * H * Q * K, name,
    `patterns.data has ${patterns.data?.length} values; shape [${patterns.shape}] needs ${L * H * Q * K}`);
  check(!selected || (selected.layer >= 0 && selected.layer < L && selected.head >= 0 && selected.head < H), name,
    `selected ${JSON.stringify(selected)} is outside ${L} layers x ${H} heads`);
  const select = (layer, head) => onSelect?.({layer, head});
  const labels = Array.from({length: Math.max(Q, K)}, (_, i) => visibleText(tokenText(tokens[i]) ?? `${i}`));

  const row = h("div", {class: "nsv-row"});
  row.append(section("Heads (click to select)", thumbnails(patterns, selected, select, scores, scoreKind), "thumbnails"));
  if (selected) {
    const offset = (selected.layer * H + selected.head) * Q * K;
    const at = (q, k) => patterns.data[offset + q * K + k];
    row.append(section(`Layer ${selected.layer}, head ${selected.head}`, heatmap({
      rows: Q, cols: K, value: at, scale: sequentialScale(0, 1), square: true, maxWidth: 440, maxHeight: 440,
      rowLabels: labels.slice(0, Q), colLabels: labels.slice(0, K), rowTitle: "query", colTitle: "key",
      legendTitle: "attention", label: `attention pattern of layer ${selected.layer} head ${selected.head}`,
      describe: (q, k) => `query ${q} “${labels[q]}” → key ${k} “${labels[k]}”: ${formatNumber(at(q, k))}`,
    }), "pattern"));
  }
  const kinds = Object.keys(scores);
  if (kinds.length) {
    const kind = kinds.includes(scoreKind) ? scoreKind : kinds[0];
    const table = scores[kind];
    check(Array.isArray(table) && table.length === L, name, `scores.${kind} must be [${L}][${H}]`);
    const values = table.flat().filter(Number.isFinite);
    const body = h("div", {},
      onScoreKind ? buttonGroup(kinds, kind, onScoreKind, "head score") : null,
      heatmap({rows: L, cols: H, value: (l, hd) => table[l][hd],
        scale: sequentialScale(Math.min(0, ...values), Math.max(1e-9, ...values)),
        rowLabels: range(L).map((l) => `L${l}`), colLabels: range(H).map((hd) => `H${hd}`),
        rowTitle: "layer", colTitle: "head", legendTitle: kind, maxWidth: 300, maxHeight: 300, minCell: 8,
        label: `${kind} score per head`, highlight: selected ? [{row: selected.layer, col: selected.head}] : [],
        describe: (l, hd) => `L${l} H${hd} ${kind}: ${formatNumber(table[l][hd])}`, onClick: select}));
    row.append(section(`Head scores: ${kind.replace(/_/g, " ")}`, body, "scores"));
  }
  el.append(row);
}

const range = (n) => Array.from({length: n}, (_, i) => i);
const section = (title, body, role) => h("section", {"data-role": role}, h("div", {class: "nsv-title", text: title}), body);

// Every head's pattern max-pooled to a size x size tile, so sparse attention stays visible, and
// coloured by the square root of the probability so diffuse heads still show their shape.
function thumbnails(patterns, selected, select, scores, scoreKind) {
  const [L, H, Q, K] = patterns.shape;
  const size = Math.max(12, Math.min(48, Math.floor(456 / H) - 2));
  const pitch = size + 2;
  const width = H * pitch, height = L * pitch;
  const image = new ImageData(width, height);
  image.data.fill(255);
  const color = sequentialScale(0, 1).color;
  const qStart = range(size + 1).map((p) => Math.floor((p * Q) / size));
  const kStart = range(size + 1).map((p) => Math.floor((p * K) / size));
  for (let l = 0; l < L; l++) {
    for (let hd = 0; hd < H; hd++) {
      const base = (l * H + hd) * Q * K;
      for (let py = 0; py < size; py++) {
        const q0 = qStart[py], q1 = Math.max(qStart[py + 1], q0 + 1);
        for (let px = 0; px < size; px++) {
          const k0 = kStart[px], k1 = Math.max(kStart[px + 1], k0 + 1);
          let max = 0;
          for (let q = q0; q < q1; q++) {
            for (let k = k0; k < k1; k++) max = Math.max(max, patterns.data[base + q * K + k]);
          }
          const [r, g, b] = color(Math.sqrt(max));
          image.data.set([r, g, b, 255], ((l * pitch + 1 + py) * width + hd * pitch + 1 + px) * 4);
        }
      }
    }
  }
  const canvas = makeCanvas(width, height, `attention patterns of ${L} layers x ${H} heads`);
  canvas.dataset.rows = L;
  canvas.dataset.cols = H;
  paintImage(canvas, image);
  const context = canvas.getContext("2d");
  const ratio = canvas.width / width;
  context.scale(ratio, ratio);
  context.strokeStyle = "#d1d9e0";
  for (let l = 0; l < L; l++) for (let hd = 0; hd < H; hd++) context.strokeRect(hd * pitch + 0.5, l * pitch + 0.5, size + 1, size + 1);
  if (selected) {
    context.strokeStyle = "#f0a000";
    context.lineWidth = 2;
    context.strokeRect(selected.head * pitch + 1, selected.layer * pitch + 1, pitch - 2, pitch - 2);
  }
  const grid = h("div", {class: "nsv-heatmap", style: {gridTemplateColumns: "auto auto"}},
    h("div"), columnAxis(range(H).map((hd) => `H${hd}`), pitch, {maxHeight: 30}),
    rowAxis(range(L).map((l) => `L${l}`), pitch), canvas);
  const score = scores[scoreKind];
  gridPointer(canvas, grid, {rows: L, cols: H, pitchX: pitch, pitchY: pitch, onClick: select,
    describe: (l, hd) => `L${l} H${hd}` + (score ? ` · ${scoreKind}: ${formatNumber(score[l][hd])}` : "")});
  return h("div", {class: "nsv-scroll"}, grid);
}
