"""The Lens never shows a stale or silent view, and its busy indicator tells the truth.

* A failed action replaces its view's picture with the error (an oversized prompt in every
  analysis view; a corrupted prompt of another length in the patching view, whose code box
  shows the call that failed), and the next good request draws again.
* Twenty quick prompt submissions: the busy indicator counts the requests in flight and stays
  on until the last has finished; only the latest result is drawn (older ones are dropped).
* A view that throws while drawing shows the error in the view.
"""

import os

import pytest

from .pages import BOOT_TIMEOUT_MS, site  # noqa: F401 (fixture)
from .test_app import ANALYSED, DEMO, open_app, show

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(DEMO, "model.safetensors")),
                                reason="the demo model is not trained yet (python build.py train-demo)")

CLEAN = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(scope="module")
def lens(browser, site):  # noqa: F811
    page = open_app(browser, site)
    yield page
    page.context.close()


def view_error(page, view):
    return page.evaluate(f"""() => document.querySelector('.panel[data-view="{view}"] .view .view-error')
        ?.textContent ?? null""")


def submit(page, **fields):
    for name, value in fields.items():
        page.fill(f"#{name}", value)
    page.click("#prompt-form button[type=submit]")


def test_an_oversized_prompt_replaces_every_analysis_view_with_the_error(lens):
    show(lens, "attention")
    assert view_error(lens, "attention") is None
    submit(lens, prompt=" the" * 5000)
    lens.wait_for_function("() => window.neuroscope.app.failures.analysis && window.neuroscope.app.busy.size === 0",
                           timeout=BOOT_TIMEOUT_MS)
    for view in ("attention", "tokens", "logit_lens", "activations"):
        show(lens, view)
        error = view_error(lens, view)
        assert error and "analysis" in error, (view, error)
        assert not lens.locator(f'.panel[data-view="{view}"] .view canvas').count(), f"{view}: an old picture"
    assert "the" in lens.inner_text('.panel[data-view="activations"] .code code')  # the call that failed
    submit(lens, prompt=CLEAN)
    lens.wait_for_function(ANALYSED, timeout=BOOT_TIMEOUT_MS)
    show(lens, "attention")
    assert view_error(lens, "attention") is None
    assert lens.locator('.panel[data-view="attention"] .view canvas').count()


def test_a_failed_patching_run_shows_its_error_and_its_call(lens):
    show(lens, "patching")
    lens.wait_for_function("() => !!window.neuroscope.app.results.patching", timeout=BOOT_TIMEOUT_MS)
    lens.evaluate("() => { const a = window.neuroscope.app; a.state.corrupted = 'Mary'; a.patch().catch(() => {}); }")
    lens.wait_for_function("() => window.neuroscope.app.failures.patching && window.neuroscope.app.busy.size === 0",
                           timeout=BOOT_TIMEOUT_MS)
    error = view_error(lens, "patching")
    assert error and "patching" in error
    assert "0 / 1" not in lens.inner_text('.panel[data-view="patching"] .view')
    assert '"Mary"' in lens.inner_text('.panel[data-view="patching"] .code code')
    lens.evaluate("() => { const a = window.neuroscope.app; "
                  "a.state.corrupted = 'When Mary and John went to the store, Kate gave a drink to'; }")
    lens.evaluate("() => window.neuroscope.app.patch()")
    assert view_error(lens, "patching") is None


def test_quick_submissions_count_busy_and_only_the_latest_result_is_drawn(lens):
    show(lens, "tokens")
    prompts = [f"The number {i} is" for i in range(20)]
    trace = lens.evaluate("""async (prompts) => {
      const app = window.neuroscope.app;
      const seen = [];
      const done = Promise.allSettled(prompts.map((prompt) => { app.state.prompt = prompt; return app.analyze(); }));
      const started = performance.now();
      const poll = setInterval(() => seen.push({t: performance.now() - started, busy: app.busy.get('analysis') ?? 0,
        label: document.querySelector('#busy').textContent}), 5);
      const settled = await done;
      clearInterval(poll);
      return {seen, settled: settled.map((r) => r.status === 'fulfilled' ? 'ok' : r.reason.name),
              busy: app.busy.size, label: document.querySelector('#busy').textContent,
              last: app.results.analysis.tokens.map((t) => t.text).join('')};
    }""", prompts)
    assert trace["settled"][-1] == "ok"
    assert set(trace["settled"][:-1]) <= {"Superseded", "ok"}
    assert "Superseded" in trace["settled"], trace["settled"]  # the older results were dropped
    assert trace["busy"] == 0 and trace["label"] == ""
    assert "19" in trace["last"] and all(f" {i} " not in trace["last"] for i in range(19))
    # Busy from the first request to the last: the label never clears while any is in flight.
    in_flight = [sample for sample in trace["seen"] if sample["busy"] > 0]
    assert in_flight and all("analysis" in sample["label"] for sample in in_flight)
    assert max(sample["busy"] for sample in trace["seen"]) > 1


def test_a_view_that_throws_while_drawing_shows_the_error(lens):
    show(lens, "tokens")
    text = lens.evaluate("""() => {
      const app = window.neuroscope.app;
      const el = document.querySelector('.panel[data-view="tokens"] .view');
      app.render(el, 'tokens', {draw() { throw new RangeError('no room'); }}, {});
      return el.querySelector('.view-error').textContent;
    }""")
    assert "RangeError: no room" in text
