// Probe view: a linear probe's accuracy at every layer (train and held-out test), against the
// chance level (the largest class's share), as neuroscope.lens.probes returns it.
//
// Props:
//   layers: [number]            the probed layers
//   train, test: [number|null]  accuracy per layer (test: null without a held-out split)
//   chance: number              the accuracy of always guessing the largest class
//   dataset, component: string  what was probed (the title)
//   classes: [string], nTrain, nTest: numbers (the caption)

import {check, formatNumber, h, s} from "./common.js";

export const name = "probes";

const COLORS = {train: "#8c959f", test: "#0969da", chance: "#cf222e"};

export function draw(el, props) {
  const {layers = [], train = [], test = [], chance = null, dataset = "", component = "", classes = [],
    nTrain = 0, nTest = 0} = props;
  check(Array.isArray(layers) && layers.length > 0, name, "layers must be a non-empty array");
  check(train.length === layers.length, name, `train has ${train.length} values for ${layers.length} layers`);
  const width = 460, height = 240, left = 44, right = 12, top = 24, bottom = 34;
  const x = (i) => left + (layers.length > 1 ? (i * (width - left - right)) / (layers.length - 1)
    : (width - left - right) / 2);
  const y = (v) => top + (1 - v) * (height - top - bottom);
  const chart = s("svg", {width, height, viewBox: `0 0 ${width} ${height}`, "data-role": "accuracy",
    "aria-label": `probe accuracy per layer, ${component} on ${dataset}`, style: {fontSize: "11px", overflow: "visible"}},
  s("line", {x1: left, y1: y(0), x2: width - right, y2: y(0), stroke: "#8c959f"}),
  s("line", {x1: left, y1: y(1), x2: left, y2: y(0), stroke: "#8c959f"}),
  s("text", {x: (left + width) / 2, y: height - 2, "text-anchor": "middle", fill: "#59636e", text: "layer"}));
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(s("text", {x: left - 5, y: y(tick) + 4, "text-anchor": "end", fill: "#59636e", text: `${tick * 100}%`}),
      s("line", {x1: left, y1: y(tick), x2: width - right, y2: y(tick), stroke: "#eaeef2"}));
  }
  layers.forEach((layer, i) => chart.append(s("text", {x: x(i), y: height - bottom + 14, "text-anchor": "middle",
    fill: "#3d444d", text: String(layer)})));
  if (Number.isFinite(chance)) {
    chart.append(s("line", {x1: left, y1: y(chance), x2: width - right, y2: y(chance), stroke: COLORS.chance,
      "stroke-dasharray": "4 3", "data-role": "chance"}, s("title", {text: `chance ${formatNumber(chance)}`})));
  }
  for (const [key, values] of [["train", train], ["test", test]]) {
    if (!values.some(Number.isFinite)) continue;
    const points = values.map((v, i) => (Number.isFinite(v) ? [x(i), y(v)] : null)).filter(Boolean);
    chart.append(s("polyline", {points: points.map((p) => p.join(",")).join(" "), fill: "none", stroke: COLORS[key],
      "stroke-width": key === "test" ? 2 : 1.5, "data-role": key}));
    values.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      chart.append(s("circle", {cx: x(i), cy: y(v), r: 3, fill: COLORS[key], "data-role": `${key}-point`},
        s("title", {text: `layer ${layers[i]} ${key}: ${formatNumber(v * 100)}%`})));
    });
  }
  const key = h("div", {class: "nsv-note"},
    ...[["test", `held-out test (${nTest})`], ["train", `train (${nTrain})`], ["chance", "chance"]].map(([k, label]) =>
      h("span", {style: {marginRight: "14px"}}, h("span", {text: "■ ", style: {color: COLORS[k]}}), label)));
  el.append(h("div", {class: "nsv-title", text: `Linear probe on ${component} — ${dataset} ` +
    `(${classes.length} classes: ${classes.join(", ")})`}), chart, key);
}
