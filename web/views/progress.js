// Progress view: a labelled bar for downloads and sweeps, with "done / total" and the percentage;
// without a total the bar is indeterminate (striped) and only `done` is shown.
//
// Props:
//   label: string             what is in progress ("Downloading gpt2 weights")
//   done:  number             units finished
//   total: number | null      units in all (null or 0 when unknown)
//   unit:  "bytes" | string   optional: "bytes" shows kB / MB / GB; another string is appended
//   bytes: boolean            optional: the same as unit: "bytes"

import {h} from "./common.js";

export const name = "progress";

function amount(value, unit) {
  if (unit !== "bytes") return `${Math.round(value).toLocaleString("en-US")}${unit ? ` ${unit}` : ""}`;
  const steps = ["B", "kB", "MB", "GB"];
  let i = 0;
  while (value >= 1000 && i < steps.length - 1) { value /= 1000; i++; }
  return `${value.toFixed(i === 0 ? 0 : 1)} ${steps[i]}`;
}

export function draw(el, props) {
  const {label = "", done = 0, total = null} = props;
  const unit = props.unit ?? (props.bytes ? "bytes" : undefined);
  const known = Number.isFinite(total) && total > 0;
  const fraction = known ? Math.min(1, Math.max(0, done / total)) : null;
  const bar = h("div", {role: "progressbar", "aria-label": label, "aria-valuemin": 0,
    "aria-valuemax": known ? total : undefined, "aria-valuenow": known ? done : undefined,
    style: {height: "10px", background: "#eaeef2", borderRadius: "5px", overflow: "hidden", width: "100%"}},
  h("div", {"data-role": "fill", style: {height: "100%", borderRadius: "5px",
    width: known ? `${fraction * 100}%` : "100%", background: known ? "#0969da"
      : "repeating-linear-gradient(45deg, #0969da 0 8px, #54aeff 8px 16px)"}}));
  const text = known ? `${amount(done, unit)} / ${amount(total, unit)} (${Math.floor(fraction * 100)}%)`
    : amount(done, unit);
  el.append(h("div", {style: {display: "flex", justifyContent: "space-between", gap: "12px", marginBottom: "3px",
    minWidth: "240px"}}, h("span", {text: label, "data-role": "label"}), h("span", {text, "data-role": "count"})), bar);
}
