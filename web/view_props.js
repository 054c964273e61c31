// The props each Lens view is drawn with, from the app's latest results and its selection
// (./app.js calls viewProps(app, view, results); null: nothing to draw yet). Callbacks in
// the props act on the app; results other than the app's own (a notebook view cell's value)
// get none.

export function viewProps(app, view, results = app.results) {
  const analysis = results.analysis;
  const selection = app.state.selection;
  if (!analysis) return null;
  const tokens = analysis.tokens;
  switch (view) {
    case "tokens":
      return { tokens, predictions: analysis.predictions, residualNorms: analysis.residual_norms,
        hovered: selection.token, onHover: (index) => { selection.token = index; app.draw(); } };
    case "attention":
      return { patterns: analysis.attention.patterns, tokens, scores: analysis.attention.scores,
        selected: { layer: selection.layer, head: selection.head }, scoreKind: selection.scoreKind,
        onSelect: ({ layer, head }) => { Object.assign(selection, { layer, head }); app.draw(); },
        onScoreKind: (kind) => { selection.scoreKind = kind; app.draw(); } };
    case "logit_lens":
      return { table: analysis.logit_lens, tokens };
    case "activations":
      return { norms: analysis.activation_norms, tokens, component: selection.component,
        onComponent: (component) => { selection.component = component; app.draw(); } };
    case "ablation": {
      const result = results.ablation;
      return { nLayers: analysis.model.n_layers, nHeads: analysis.model.n_heads,
        ablations: selection.ablations, kind: selection.ablationKind,
        baseline: result?.baseline ?? analysis.predictions.at(-1), ablated: result?.ablated ?? null,
        logitDiff: result?.logit_diff ?? null, busy: app.busy.has("ablation"),
        onToggle: (unit) => { app.toggleAblation(unit).catch((error) => app.shown(error)); },
        onKind: (kind) => {
          selection.ablationKind = kind;
          for (const item of selection.ablations) item.kind = kind;
          app.ablate().catch((error) => app.shown(error));
        } };
    }
    case "patching": {
      const result = results.patching;
      if (!result) return { label: "Patching every layer, position and head…", done: 0, total: 1 };
      const live = results === app.results;
      const average = live ? results.patchingAverage : null;
      return { resid: result.resid, mlp: result.mlp, heads: result.heads, tokens: result.tokens,
        cleanLogitDiff: result.clean_logit_diff, corruptedLogitDiff: result.corrupted_logit_diff,
        average: average && { heads: average.heads, nPairs: average.n_pairs, dataset: average.dataset,
          workers: average.workers },
        averageBusy: app.busy.has("patching average"),
        onAverage: live ? () => { app.patchAverage().catch((error) => app.shown(error)); } : undefined };
    }
    case "attribution": {
      const result = results.attribution;
      if (!result) return { label: "Attribution patching and integrated gradients…", done: 0, total: 1 };
      const patched = results.patching;
      const exact = patched && patched.tokens.length === result.tokens.length
        ? { resid: patched.resid, heads: patched.heads, mlp: patched.mlp } : null;
      return { method: result.method, resid: result.resid, heads: result.heads, mlp: result.mlp, tokens: result.tokens,
        saliency: result.saliency && { scores: result.saliency.scores, value: result.saliency.value,
          baselineValue: result.saliency.baseline_value, delta: result.saliency.delta, steps: result.saliency.steps },
        cleanLogitDiff: result.clean_logit_diff, corruptedLogitDiff: result.corrupted_logit_diff, exact,
        patchBusy: app.busy.has("patching"),
        onPatch: results === app.results ? () => { app.patch().catch((error) => app.shown(error)); } : undefined,
        onMethod: results === app.results ? (method) => {
          selection.attributionMethod = method;
          app.attribute().catch((error) => app.shown(error));
        } : undefined };
    }
    case "circuit": {
      const result = results.circuit;
      if (!result) return { label: "Finding the circuit…", done: 0, total: 1 };
      const live = results === app.results;
      const busy = ["circuit ablation", "hypothesis"].find((what) => app.busy.has(what)) ?? null;
      return { svg: result.svg, components: result.components, method: result.method, threshold: result.threshold,
        task: result.task, nExamples: result.n_examples, nHeldout: result.n_heldout, nComponents: result.n_components,
        faithfulness: result.faithfulness, edgeFaithfulness: result.edge_faithfulness, metric: result.metric,
        ablated: live ? selection.circuitAblated : [], ablation: live ? results.circuitAblation : null,
        hypothesis: live ? results.hypothesis : null, busy: busy === "circuit ablation" ? "ablation" : busy,
        onNode: live ? (label) => { app.toggleCircuitNode(label).catch((error) => app.shown(error)); } : undefined };
    }
    case "probes": {
      const result = results.probes;
      return result ? { layers: result.layers, train: result.train, test: result.test, chance: result.chance,
        dataset: result.dataset, component: result.component, classes: result.classes, nTrain: result.n_train,
        nTest: result.n_test } : null;
    }
    case "neurons": {
      const result = results.neurons;
      return result ? { layer: result.layer ?? selection.neuronLayer, neuron: result.neuron ?? selection.neuron,
        examples: result.examples ?? result, dataset: result.dataset ?? null, nTokens: result.n_tokens ?? null,
        histogram: result.histogram ?? null, logitEffect: result.logit_effect ?? null } : null;
    }
    default:
      return null;
  }
}
