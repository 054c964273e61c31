// The page side of the offline app: registers the service worker (../sw.js, written to the
// site root by `python build.py build`) and follows its updates.
//
//   registerServiceWorker({onUpdate?}) -> Promise of the ServiceWorkerRegistration, or null
//       where service workers are unavailable (not a secure context, or disabled). Rejects
//       when registration fails (e.g. the site was not built, so there is no /sw.js): the
//       app works on without offline support, so callers log the error and go on:
//         registerServiceWorker().catch((error) => console.warn(error.message));
//       onUpdate(registration) is called when a new version has installed and waits for
//       the pages of the old one to close; activateUpdate(registration) switches at once.
//   whenControlled() -> Promise of navigator.serviceWorker.controller once this page is
//       controlled (at the first visit, once the precache is complete and the worker
//       claims the page); from then on the page, its Web Worker and their fetches are
//       served by the service worker, and they work offline.
//   activateUpdate(registration) -> Promise resolved when the waiting version has activated
//       (older precaches deleted) and controls the page; reload afterwards so the page runs
//       the new files.

const SERVICE_WORKER = new URL("../sw.js", import.meta.url);
const SCOPE = new URL("../", import.meta.url);

export async function registerServiceWorker({ onUpdate = null } = {}) {
  if (!globalThis.isSecureContext || !navigator.serviceWorker) return null;
  let registration;
  try {
    registration = await navigator.serviceWorker.register(SERVICE_WORKER.href,
      { scope: SCOPE.href, updateViaCache: "none" });
  } catch (error) {
    throw new Error(`the service worker ${SERVICE_WORKER.href} could not be registered (${error.message}); ` +
      "offline use is off. Serve the site built by `python build.py build`");
  }
  if (onUpdate) {
    const notify = () => {
      if (registration.waiting && navigator.serviceWorker.controller) onUpdate(registration);
    };
    notify();
    registration.addEventListener("updatefound", () => {
      registration.installing?.addEventListener("statechange", notify);
    });
  }
  return registration;
}

export function whenControlled() {
  if (!navigator.serviceWorker) return Promise.reject(new Error("service workers are unavailable here"));
  const { controller } = navigator.serviceWorker;
  if (controller) return Promise.resolve(controller);
  return new Promise((resolve) => {
    navigator.serviceWorker.addEventListener("controllerchange",
      () => resolve(navigator.serviceWorker.controller), { once: true });
  });
}

export function activateUpdate(registration) {
  const worker = registration.waiting;
  if (!worker) return Promise.resolve(navigator.serviceWorker.controller);
  // "activated": its activate step (dropping the older precache) is done, and it controls the page.
  const activated = new Promise((resolve, reject) => {
    worker.addEventListener("statechange", () => {
      if (worker.state === "activated") resolve(navigator.serviceWorker.controller);
      if (worker.state === "redundant") reject(new Error("the new service worker was replaced before it activated"));
    });
  });
  worker.postMessage({ type: "skip-waiting" });
  return activated;
}
