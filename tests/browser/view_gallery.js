// The view gallery's scripting interface, used by tests/browser/test_views.py through page.evaluate:
//   await gallery.ready
//   gallery.show(viewName, props, callbackNames)  renders web/views/<viewName>.js into #stage; each
//       name in callbackNames becomes a prop that records its calls in gallery.calls; objects
//       {"$float32": base64} in props become Float32Arrays. Returns the render time in ms.
//   gallery.calls                                 [{name, args}], oldest first
//   gallery.canvasInk(selector)                   per canvas under #stage matching selector:
//       {rows, cols, width, height, ink} where ink counts pixels that are not transparent or white
//   gallery.pixel(selector, x, y)                 [r, g, b, a] of a canvas at CSS pixel (x, y)
//   gallery.pngInk(base64)                        non-white pixels of a PNG (a Playwright screenshot)

import {render} from "/web/render.js";

const VIEWS = ["tokens", "attention", "logit_lens", "activations", "ablation", "patching", "attribution", "circuit",
  "neurons", "probes", "progress", "tensor"];
const modules = Object.fromEntries(await Promise.all(
  VIEWS.map(async (name) => [name, await import(`/web/views/${name}.js`)])));

const stage = document.getElementById("stage");
const calls = [];

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

function countInk(data) {
  let ink = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 16 && (data[i] < 245 || data[i + 1] < 245 || data[i + 2] < 245)) ink++;
  }
  return ink;
}

window.gallery = {
  ready: Promise.resolve(VIEWS),
  calls,
  show(viewName, props, callbackNames = []) {
    const View = modules[viewName];
    if (!View) throw new Error(`no view named ${viewName}; expected one of ${VIEWS.join(", ")}`);
    const full = revive(props);
    for (const name of callbackNames) full[name] = (...args) => calls.push({name, args});
    const start = performance.now();
    render(stage, View, full);
    return performance.now() - start;
  },
  canvasInk(selector = "canvas") {
    return [...stage.querySelectorAll(selector)].map((canvas) => ({
      rows: Number(canvas.dataset.rows), cols: Number(canvas.dataset.cols), width: canvas.width, height: canvas.height,
      label: canvas.getAttribute("aria-label"),
      ink: countInk(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data),
    }));
  },
  pixel(selector, x, y) {
    const canvas = stage.querySelector(selector);
    const ratio = canvas.width / canvas.getBoundingClientRect().width;
    return [...canvas.getContext("2d").getImageData(Math.floor(x * ratio), Math.floor(y * ratio), 1, 1).data];
  },
  async pngInk(base64) {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], {type: "image/png"}));
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext("2d");
    context.drawImage(bitmap, 0, 0);
    return countInk(context.getImageData(0, 0, bitmap.width, bitmap.height).data);
  },
};
