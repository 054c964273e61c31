"""Visualizers: ``AttentionVisualizer.show(value, ...)`` and the other Lens views from Python.

Each ``show`` builds the view's props from a NeuroScope object (or a ``neuroscope.lens`` result)
and hands them to ``neuroscope.display.show``: drawn in Jupyter, returned as a display value in
the Lens notebook. ``props(value, ...)`` returns the props alone. A value the view cannot draw
is refused with a TypeError naming what it takes.
"""

from .convert import attention_props, circuit_props, lens_parts, logit_lens_props, sweep_props
from .core import Display, part
from .tensors import tensor_part


class Visualizer:
    view = None
    takes = ""

    @classmethod
    def props(cls, value, **options):
        raise NotImplementedError

    @classmethod
    def show(cls, value, title=None, **options):
        from . import show

        return show(Display([part(cls.view, cls.props(value, **options))], title=title))

    @classmethod
    def _refuse(cls, value):
        raise TypeError(f"{cls.__name__}.show takes {cls.takes}; got a {type(value).__name__}")

    @classmethod
    def _lens(cls, value):
        parts = lens_parts(value) if isinstance(value, dict) else None
        found = [p for p in parts or () if p["view"] == cls.view]
        if not found:
            cls._refuse(value)
        return found[0]["props"]


class AttentionVisualizer(Visualizer):
    view = "attention"
    takes = (
        "an AttentionAnalysis, an ActivationCache holding attention patterns (hook_pattern), "
        "a [layers, heads, q, k] or [heads, q, k] pattern Tensor, or lens.analyze's result"
    )

    @classmethod
    def props(cls, value, tokens=None, layer=0, head=0, score="induction"):
        from ..analysis.attention import AttentionAnalysis
        from ..cache import ActivationCache
        from ..tensor import Tensor, stack

        if isinstance(value, AttentionAnalysis):
            props = attention_props(value, score if score in value.scores else None)
        elif isinstance(value, ActivationCache):
            names = sorted(
                (name for name in value.keys() if name.endswith("attn.hook_pattern")),
                key=lambda name: int(name.split(".")[1]),
            )
            if not names:
                raise ValueError(
                    f"the cache holds no attention patterns (blocks.<l>.attn.hook_pattern); "
                    f"it holds {list(value.keys())[:8]}"
                )
            props = {"patterns": stack([value[name][0] for name in names]), "scores": {}}
        elif isinstance(value, Tensor):
            if value.ndim == 3:
                value = value.reshape((1, *value.shape))
            if value.ndim != 4:
                raise ValueError(
                    f"a pattern Tensor must be [layers, heads, q, k] or [heads, q, k]; "
                    f"got shape {list(value.shape)}"
                )
            props = {"patterns": value.astype("float32"), "scores": {}}
        else:
            props = dict(cls._lens(value))
        if tokens is not None:
            props["tokens"] = list(tokens)
        props.setdefault("tokens", [])
        props["selected"] = {"layer": layer, "head": head}
        if score in props["scores"]:
            props["scoreKind"] = score
        return props


class LogitLensVisualizer(Visualizer):
    view = "logit_lens"
    takes = "a LogitLensTable or lens.analyze's result"

    @classmethod
    def props(cls, value):
        from ..analysis.logit_lens import LogitLensTable

        return logit_lens_props(value) if isinstance(value, LogitLensTable) else cls._lens(value)


class PatchingVisualizer(Visualizer):
    view = "patching"
    takes = (
        "lens.patch's result, a dict with any of resid / heads / mlp ([layers][pos] or [layers][heads] "
        "Tensors or lists, as the get_act_patch_* sweeps return)"
    )

    @classmethod
    def props(cls, value, tokens=None):
        if isinstance(value, dict) and "clean_logit_diff" in value:
            props = dict(cls._lens(value))
        elif isinstance(value, dict) and value and set(value) <= {"resid", "heads", "mlp"}:
            props = {key: _lists(item) for key, item in value.items()}
        else:
            cls._refuse(value)
        if tokens is not None:
            props["tokens"] = list(tokens)
        return props


class AttributionVisualizer(Visualizer):
    view = "attribution"
    takes = "lens.attribute's result"

    @classmethod
    def props(cls, value):
        return cls._lens(value)


class NeuronVisualizer(Visualizer):
    view = "neurons"
    takes = "a NeuronSummary (with neuron=) or lens.neurons' result"

    @classmethod
    def props(cls, value, neuron=None):
        from ..analysis.neurons import NeuronSummary

        if isinstance(value, NeuronSummary):
            from .convert import neuron_summary_parts

            return neuron_summary_parts(value, neuron)[0][0]["props"]
        return cls._lens(value)


class ProbeVisualizer(Visualizer):
    view = "probes"
    takes = "a ProbeSweep or lens.probes' result"

    @classmethod
    def props(cls, value):
        from ..analysis.probes import ProbeSweep

        return sweep_props(value) if isinstance(value, ProbeSweep) else cls._lens(value)


class CircuitVisualizer(Visualizer):
    view = "circuit"
    takes = "a Circuit or lens.find_circuit's result"

    @classmethod
    def props(cls, value):
        from ..analysis.circuits import Circuit

        return circuit_props(value) if isinstance(value, Circuit) else cls._lens(value)


class ActivationsVisualizer(Visualizer):
    view = "activations"
    takes = (
        "an ActivationCache (norms of resid_post / attn_out / mlp_out per layer and position), "
        "or lens.analyze's result"
    )

    @classmethod
    def props(cls, value, tokens=None, component=None):
        from ..cache import ActivationCache

        if isinstance(value, ActivationCache):
            props = {"norms": _cache_norms(value), "tokens": list(tokens or [])}
        else:
            props = dict(cls._lens(value))
        props["component"] = component or next(iter(props["norms"]))
        return props


class TensorVisualizer(Visualizer):
    view = "tensor"
    takes = "a Tensor"

    @classmethod
    def props(cls, value):
        from ..tensor import Tensor

        if not isinstance(value, Tensor):
            cls._refuse(value)
        return tensor_part(value)["props"]


def _lists(value):
    return value.tolist() if hasattr(value, "tolist") else value


def _cache_norms(cache):
    out = {}
    for key, short in (
        ("residual", "hook_resid_post"),
        ("attention", "hook_attn_out"),
        ("mlp", "hook_mlp_out"),
    ):
        names = sorted(
            (name for name in cache.keys() if name.startswith("blocks.") and name.endswith(short)),
            key=lambda name: int(name.split(".")[1]),
        )
        if names:
            out[key] = [cache[name][0].norm(-1).tolist() for name in names]  # [layers][pos]
    if not out:
        raise ValueError(
            f"the cache holds no resid_post, attn_out or mlp_out; it holds {list(cache.keys())[:8]}"
        )
    return out


__all__ = [
    "ActivationsVisualizer",
    "AttentionVisualizer",
    "AttributionVisualizer",
    "CircuitVisualizer",
    "LogitLensVisualizer",
    "NeuronVisualizer",
    "PatchingVisualizer",
    "ProbeVisualizer",
    "TensorVisualizer",
]
