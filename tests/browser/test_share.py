"""Share links (web/share.js) in a real browser page: a realistic state survives the round
trip through a link and through a .neuroscope file, and every damaged link is a
ShareLinkError that says what is wrong, never a raw exception and never a wrong state.

The page is a blank one on the built site's origin (no worker is booted): the codec is
pure JavaScript (CompressionStream, crypto.subtle).
"""

import pytest

from neuroscope.hooks import InterventionHook
from neuroscope.interventions import NoiseInjection, Patch, Scale, ZeroAblation

from .pages import site  # noqa: F401 (fixture)

BLANK = "/__share_test__.html"


def realistic_state():
    return {
        "v": 1,
        "model": {"ref": "demo", "sha256": "0123456789abcdef" * 4},
        "prompt": "When Mary and John went to the store, John gave a drink to — Ünïcödé 東京 🙂",
        "corrupted": "When Mary and John went to the store, Kate gave a drink to — Ünïcödé 東京 🙂",
        "answer": " Mary",
        "wrong": " John",
        "view": "attention",
        "selection": {"token": 7, "layer": 1, "head": 3, "ablations": [{"layer": 1, "head": 3, "kind": "zero"}]},
        "interventions": [
            InterventionHook(layer=1, component="attention", heads=[3], action=ZeroAblation()).to_spec(),
            InterventionHook(name="blocks.0.hook_resid_post",
                             action=Patch(source_tokens=[[0, 17, 99, 4]], positions=[2])).to_spec(),
            Scale(0.5, positions=[1, 2]).to_spec(),
            NoiseInjection(noise_level=0.1, seed=3).to_spec(),
        ],
        "notebook": [
            {"type": "markdown", "source": "# IOI\nName movers: **9.6**, 9.9 — ✓"},
            {"type": "code", "source": "logits, cache = model.run_with_cache(tokens)\nprint('naïve')",
             "collapsed": True},
            {"type": "view", "source": "attention", "view": "attention"},
        ],
        "theme": {"dark": True},  # keys the schema does not know are kept
    }


@pytest.fixture(scope="module")
def share(browser, site):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    page.route(f"{site.url}{BLANK}", lambda route: route.fulfill(
        body="<!doctype html><title>share links</title>", content_type="text/html"))
    page.goto(f"{site.url}{BLANK}")
    page.evaluate("async () => { window.share = await import('/web/share.js'); }")
    yield page
    context.close()


# Runs `body` (an async function of share and arg) in the page; errors come back as data.
RUN = """async ([body, arg]) => {
  const run = new Function("share", "arg", `return (async () => { ${body} })();`);
  try {
    return {ok: true, value: await run(window.share, arg)};
  } catch (error) {
    return {ok: false, name: error.name, message: error.message, reason: error.reason ?? null,
            field: error.field ?? null, isShareLinkError: error instanceof window.share.ShareLinkError};
  }
}"""


def run(page, body, arg=None):
    reply = page.evaluate(RUN, [body, arg])
    assert reply["ok"], f"{reply['name']}: {reply['message']}"
    return reply["value"]


def error(page, body, arg=None):
    reply = page.evaluate(RUN, [body, arg])
    assert not reply["ok"], f"expected a ShareLinkError, got {reply['value']!r}"
    assert reply["isShareLinkError"] and reply["name"] == "ShareLinkError", reply
    return reply


def test_a_realistic_state_round_trips_through_a_link(share):
    state = realistic_state()
    reply = run(share, """
      const link = await share.shareURL(arg, "http://localhost:8000/web/index.html?backend=cpu#old");
      const encoded = await share.encodeState(arg);
      return {link, encoded, decoded: await share.decodeState(encoded),
              fromLocation: await share.stateFromLocation(new URL(link.url)),
              fromString: await share.stateFromLocation(link.url),
              amongOthers: await share.stateFromLocation("http://x/web/index.html#view=1&s=" + encoded + "&z=2"),
              none: await share.stateFromLocation("http://x/web/index.html?backend=cpu")};
    """, state)
    assert reply["decoded"] == state
    assert reply["fromLocation"] == reply["fromString"] == reply["amongOthers"] == state
    assert reply["none"] is None
    assert reply["encoded"].startswith("ns1.")
    assert reply["link"]["url"] == "http://localhost:8000/web/index.html?backend=cpu#s=" + reply["encoded"]
    # A link of the default analysis stays short enough to paste anywhere.
    assert len(reply["link"]["url"]) < 1500


def test_damaged_links_are_share_link_errors_that_say_why(share):
    encoded = run(share, "return share.encodeState(arg);", realistic_state())
    payload = encoded[len("ns1."):]
    cases = {
        "truncated": encoded[: len(encoded) * 2 // 3],
        "cut inside the header": encoded[:12],
        "empty": "",
        "newer version": "ns2." + payload,
        "unknown version": "ns0." + payload,
        "not a link": "hello world",
        "garbage base64": "ns1.@@not*base64!!",
        "base64 of nothing sensible": "ns1.AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        # random bytes after "ns1.": their first 4 bytes declare 572,662,306 bytes of data
        "base64 of random bytes": "ns1.IiIiIh" + payload[10:40],
    }
    mid = len(encoded) // 2
    cases["one character changed"] = encoded[:mid] + ("A" if encoded[mid] != "A" else "B") + encoded[mid + 1:]
    expected = {  # case -> (reason, words the message must contain)
        "truncated": ("truncated", "cut off"),
        "cut inside the header": ("truncated", "truncated"),
        "empty": ("truncated", "empty"),
        "newer version": ("version", "newer NeuroScope"),
        "unknown version": ("version", "unknown share link format ns0"),
        "not a link": ("format", 'should start with "ns1."'),
        "garbage base64": ("base64", 'character "@" at position 0'),
        "base64 of nothing sensible": ("checksum", "more than the 0 it declares"),
        "base64 of random bytes": ("format", "this is not a NeuroScope link: its header declares 572,662,306 bytes"),
        "one character changed": ("checksum", "checksum does not match"),
    }
    for case, text in cases.items():
        reply = error(share, "return share.decodeState(arg);", text)
        reason, words = expected[case]
        assert reply["reason"] == reason and words in reply["message"], (case, reply)

    # Every single-character change anywhere in the link is detected.
    accepted = run(share, """
      const accepted = [];
      for (let i = 0; i < arg.length; i++) {
        for (const c of ["A", "g", "_", "0"]) {
          if (arg[i] === c) continue;
          try {
            await share.decodeState(arg.slice(0, i) + c + arg.slice(i + 1));
            accepted.push([i, c]);
          } catch (error) {
            if (!(error instanceof share.ShareLinkError)) accepted.push([i, c, String(error)]);
          }
        }
      }
      return accepted;
    """, encoded)
    assert accepted == []


def test_intact_links_with_bad_content_are_share_link_errors(share):
    cases = {  # text inside a well-formed link -> (reason, field, words)
        "not json {": ("json", None, "not JSON"),
        '{"v": 1}': ("schema", "model", 'field "model" is missing'),
        '{"v": 2}': ("version", "v", "version 2 was made by a newer NeuroScope"),
        "[1, 2]": ("schema", "(root)", "expected an object"),
    }
    for text, (reason, field, words) in cases.items():
        reply = error(share, "return share.decodeState(await share.encodeText(arg));", text)
        assert (reply["reason"], reply["field"]) == (reason, field) and words in reply["message"], (text, reply)


@pytest.mark.parametrize("change, field, words", [
    ({"model": "demo"}, "model", 'field "model" is the string "demo", expected an object'),
    ({"model": {"ref": ""}}, "model.ref", "non-empty string"),
    ({"model": {"ref": "demo", "sha256": "abc"}}, "model.sha256", "64 hexadecimal digits"),
    ({"prompt": 42}, "prompt", 'field "prompt" is the number 42, expected a string'),
    ({"view": None}, "view", "is null, expected a string"),
    ({"answer": ["Mary"]}, "answer", "is an array, expected a string or nothing"),
    ({"selection": []}, "selection", "expected an object"),
    ({"interventions": {}}, "interventions", "expected an array of intervention specs"),
    ({"interventions": [{"layer": 0, "intervention": {}}]}, "interventions[0].intervention.type", "is missing"),
    ({"interventions": [{"factor": 2}]}, "interventions[0].type", "naming the intervention"),
    ({"notebook": [{"type": "python", "source": "1"}]}, "notebook[0].type",
     'expected one of "markdown", "code", "view"'),
    ({"notebook": [{"type": "code"}]}, "notebook[0].source", "is missing, expected a string"),
])
def test_validate_state_names_the_field_and_what_was_expected(share, change, field, words):
    state = {**realistic_state(), **change}
    reply = error(share, "return share.validateState(arg);", state)
    assert reply["field"] == field and words in reply["message"], reply
    reply = error(share, "return share.encodeState(arg);", state)  # never encoded either
    assert reply["field"] == field


def test_optional_fields_may_be_left_out(share):
    state = realistic_state()
    for key in ("corrupted", "answer", "wrong", "theme"):
        del state[key]
    del state["model"]["sha256"]
    state["wrong"] = None
    assert run(share, "return share.decodeState(await share.encodeState(arg));", state) == state


def test_an_oversized_state_becomes_a_file_that_reads_back_equal(share):
    state = realistic_state()
    # 30,000 random hex digits do not compress below the 8,000-character link limit.
    reply = run(share, """
      const digits = Array.from(crypto.getRandomValues(new Uint8Array(15000)),
                                (b) => b.toString(16).padStart(2, "0")).join("");
      const state = {...arg, notebook: [...arg.notebook, {type: "code", source: `# ${digits}`}]};
      const result = await share.shareURL(state, "http://localhost:8000/web/index.html");
      const short = await share.shareURL(state, "http://localhost:8000/web/index.html", {maxLength: 1e6});
      const text = await result.file.text();
      return {state, keys: Object.keys(result), name: result.name, type: result.file.type,
              content: JSON.parse(text), fromFile: await share.readStateFile(result.file),
              fromText: await share.readStateFile(text), shortLength: short.url.length};
    """, state)
    assert reply["keys"] == ["file", "name"]
    assert reply["name"] == "neuroscope-When-Mary-and-John-went.neuroscope"
    assert reply["content"]["format"] == "neuroscope-share" and reply["content"]["version"] == 1
    assert reply["content"]["state"].startswith("ns1.")
    assert reply["fromFile"] == reply["fromText"] == reply["state"]
    assert reply["shortLength"] > 8000  # the same state as a link only with a larger limit


def test_bad_share_files_are_share_link_errors(share):
    cases = {
        "not json": ("file", "not JSON"),
        '{"state": "ns1.AAAA"}': ("file", '"format": "neuroscope-share"'),
        '{"format": "neuroscope-share", "version": 7, "state": "ns1."}': ("version", "version 7"),
        '{"format": "neuroscope-share", "version": 1, "state": 5}': ("file", "expected a string"),
        '{"format": "neuroscope-share", "version": 1, "state": "ns1.AAAAAA"}': ("truncated", "header"),
    }
    for text, (reason, words) in cases.items():
        reply = error(share, "return share.readStateFile(new Blob([arg]));", text)
        assert reply["reason"] == reason and words in reply["message"], (text, reply)


def test_a_bad_fragment_in_the_location_is_a_share_link_error(share):
    reply = error(share, "return share.stateFromLocation('http://x/web/index.html#s=ns1.AAAA%zz');")
    assert reply["reason"] == "base64" and "%-escape" in reply["message"]
    reply = error(share, "return share.stateFromLocation('http://x/web/index.html#s=');")
    assert reply["reason"] == "truncated" and "empty" in reply["message"]
