// The entry of views_bundle.js (bundled by neuroscope/display/bundle.py with esbuild): the Lens
// views (web/views/*.js) and render(), exposed as one global so a notebook output's classic
// <script> can draw without loading anything:
//   NeuroScopeDisplay.mount(id, spec)   draws spec {title, text, parts: [{view, props, title}]}
//                                       into the element with that id (objects {"$float32": base64}
//                                       in props become Float32Arrays)
//   NeuroScopeDisplay.drawParts(el, parts)   the same for decoded parts (the Lens notebook)

import {render} from "../../../web/render.js";
import * as ablation from "../../../web/views/ablation.js";
import * as activations from "../../../web/views/activations.js";
import * as attention from "../../../web/views/attention.js";
import * as attribution from "../../../web/views/attribution.js";
import * as circuit from "../../../web/views/circuit.js";
import * as logit_lens from "../../../web/views/logit_lens.js";
import * as neurons from "../../../web/views/neurons.js";
import * as patching from "../../../web/views/patching.js";
import * as probes from "../../../web/views/probes.js";
import * as tensor from "../../../web/views/tensor.js";
import * as tokens from "../../../web/views/tokens.js";
import {drawParts} from "../../../web/display.js";

const VIEWS = {ablation, activations, attention, attribution, circuit, logit_lens, neurons, patching, probes,
  tensor, tokens};

function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === "object") {
    if (typeof value.$float32 === "string") {
      const bytes = Uint8Array.from(atob(value.$float32), (c) => c.charCodeAt(0));
      return new Float32Array(bytes.buffer);
    }
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, revive(item)]));
  }
  return value;
}

function mount(id, spec) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`NeuroScope display: no element with id ${id}`);
  const parts = revive(spec.parts ?? []);
  el.replaceChildren();
  drawParts(el, parts, VIEWS, render);
  el.dataset.drawn = String(parts.length);
}

globalThis.NeuroScopeDisplay = {mount, drawParts: (el, parts) => drawParts(el, parts, VIEWS, render), VIEWS};
