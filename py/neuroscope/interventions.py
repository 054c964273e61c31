"""Interventions: code that edits an activation, and data that describes it.

Each built-in intervention serialises to a JSON spec (``to_spec``) and back
(``Intervention.from_spec``), so the same edit runs in CPython and in the
browser and travels in share links. A user subclass only needs ``apply``::

    class Clamp(Intervention):
        def apply(self, activation):
            return activation.minimum(3.0)

``heads`` and ``positions`` select along the axes the hook point declares
(``HookPoint.axes``): the head axis of per-head activations (``"head"``, or
``"kv_head"`` on the keys and values of grouped-query models) and the ``"pos"``
axis (the query positions of ``hook_pattern``). A hook without such an axis
refuses the selection.
"""

import numbers
import random

from .args import as_indices, is_integer
from .errors import NeuroScopeError, ShapeError
from .tensor import Tensor, as_tensor, full


class Intervention:
    """Base class. Subclasses implement ``apply(activation) -> Tensor``."""

    kind = None  # the spec's "type"; set on built-ins so from_spec finds them
    _registry = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("kind"):
            Intervention._registry[cls.kind] = cls

    def __init__(self, positions=None):
        self.positions = positions

    def apply(self, activation):
        raise NotImplementedError(f"{type(self).__name__} must implement apply(activation)")

    def apply_at(self, activation, hook):
        """Like ``apply``, for interventions that need the hook point (its name)."""
        return self.apply(activation)

    def prepare(self, model):
        """Called once when registered on a model (e.g. to run a source prompt)."""

    def intervene(self, activation, hook=None, heads=None):
        """Apply to the selected heads / positions only, leaving the rest intact.

        The head and position axes are the hook point's (``hook.axes``; a hook's
        activation carries them as ``activation.axes``): ``positions`` select query
        positions on ``hook_pattern`` and sequence positions elsewhere."""
        if heads is None and self.positions is None:
            return _like(self.apply_at(activation, hook), activation, hook, "the activation")
        axes = getattr(hook, "axes", None) or activation.axes
        where = getattr(hook, "name", "this activation")
        key = [slice(None)] * activation.ndim
        if self.positions is not None:
            axis = _axis_of(axes, ("pos",), where, "positions=")
            key[axis] = as_indices(self.positions, "positions", activation.shape[axis], allow_all=False,
                                   negative=True)
        if heads is not None:
            axis = _axis_of(axes, ("head", "kv_head"), where, "heads=")
            key[axis] = as_indices(heads, "heads", activation.shape[axis])
        key = tuple(key)
        selected = activation[key]
        out = activation.clone()
        out[key] = _like(self._apply_selected(activation, key, hook), selected, hook, "the selection")
        return out

    def _apply_selected(self, activation, key, hook):
        part = activation[key]
        part.axes = getattr(hook, "axes", None) or activation.axes  # same axes, fewer entries
        return self.apply_at(part, hook)

    def __call__(self, activation, hook=None):
        return self.intervene(activation, hook)

    # -- specs ---------------------------------------------------------------
    def params(self):
        """JSON-able constructor arguments; built-ins override."""
        raise TypeError(f"{type(self).__name__} does not serialise: it defines no params()")

    def to_spec(self):
        if not self.kind:
            raise TypeError(f"{type(self).__name__} has no kind, so it cannot serialise")
        spec = {"type": self.kind, **self.params()}
        if self.positions is not None:
            spec["positions"] = _as_list(self.positions)
        return spec

    @staticmethod
    def from_spec(spec):
        if not isinstance(spec, dict) or "type" not in spec:
            raise ValueError(f"an intervention spec is a dict with a 'type', got {spec!r}")
        kind = spec["type"]
        if kind not in Intervention._registry:
            raise ValueError(f"unknown intervention type {kind!r}; expected one of "
                             f"{sorted(Intervention._registry)}")
        args = {k: v for k, v in spec.items() if k != "type"}
        return Intervention._registry[kind](**args)

    def __repr__(self):
        try:
            return f"{type(self).__name__}({self.params()})"
        except TypeError:
            return f"{type(self).__name__}()"


class ZeroAblation(Intervention):
    kind = "zero_ablation"

    def apply(self, activation):
        return full(activation.shape, 0.0, activation.dtype, activation.backend)

    def params(self):
        return {}


class MeanAblation(Intervention):
    """Replace with a mean: a given one, or the batch (and position) mean of the activation.

    The positions averaged over are the hook's ``"pos"`` axis (the query positions of
    ``hook_pattern``, whose axis 1 is the head)."""

    kind = "mean_ablation"

    def __init__(self, mean=None, over="batch", positions=None):
        super().__init__(positions)
        if over not in ("batch", "batch_and_positions"):
            raise ValueError(f"over={over!r}; expected 'batch' or 'batch_and_positions'")
        self.mean, self.over = mean, over

    def _apply_selected(self, activation, key, hook):
        # The mean is taken over the whole batch, then the selection is cut from it.
        return self.apply(activation)[key]

    def apply(self, activation):
        if self.mean is not None:
            mean = as_tensor(self.mean, dtype=activation.dtype, backend=activation.backend)
        else:
            axes = (0,) if self.over == "batch" else (
                0, _axis_of(activation.axes, ("pos",), "this activation", f"over={self.over!r}"))
            mean = activation.mean(axes, keepdims=True)
        return mean.broadcast_to(activation.shape) + 0.0

    def params(self):
        mean = self.mean.tolist() if isinstance(self.mean, Tensor) else self.mean
        return {"mean": mean, "over": self.over}


class Patch(Intervention):
    """Replace with the same hook's activation from another run (``source``).

    ``source`` is an ``ActivationCache`` (or mapping of hook name -> Tensor);
    ``source_tokens`` instead re-runs the model on those tokens when the hook is
    registered, which is how a spec from a share link becomes runnable.
    """

    kind = "patch"

    def __init__(self, source=None, source_tokens=None, positions=None, source_attention_mask=None):
        super().__init__(positions)
        if source is None and source_tokens is None:
            raise ValueError("Patch needs source= (a cache) or source_tokens=")
        self.source = source
        self.source_tokens = source_tokens if source_tokens is not None else getattr(source, "tokens", None)
        self.source_attention_mask = (source_attention_mask if source_attention_mask is not None
                                      else getattr(source, "attention_mask", None))

    def prepare(self, model):
        if self.source is None:  # the source is a clean run: hooks already registered stay out
            with model.hook_manager.suspended():
                _, self.source = model.run_with_cache(self.source_tokens,
                                                      attention_mask=self.source_attention_mask)

    def _source_for(self, activation, hook):
        if self.source is None:
            raise RuntimeError("Patch from tokens must be registered on a model before it runs")
        return self.source[hook.name]

    def _matching_source(self, activation, hook):
        # Whole or in part (heads, positions), a patch takes the source's entries at the same
        # indices, so the two runs must have the same shape.
        source = self._source_for(activation, hook)
        if source.shape != activation.shape:
            raise ValueError(f"cannot patch {hook.name}: source shape {list(source.shape)} "
                             f"differs from activation shape {list(activation.shape)}")
        return source

    def _apply_selected(self, activation, key, hook):
        return self._matching_source(activation, hook)[key]

    def apply_at(self, activation, hook):
        return self._matching_source(activation, hook)

    def params(self):
        if self.source_tokens is None:
            raise TypeError("a Patch serialises only when it knows its source tokens")
        params = {"source_tokens": _plain(self.source_tokens)}
        if self.source_attention_mask is not None:
            params["source_attention_mask"] = _plain(self.source_attention_mask)
        return params


class ResampleAblation(Patch):
    """Replace with another prompt's activation: the source batch, shuffled by ``seed``."""

    kind = "resample_ablation"

    def __init__(self, source=None, source_tokens=None, seed=0, positions=None, source_attention_mask=None):
        super().__init__(source, source_tokens, positions, source_attention_mask)
        self.seed = _seed(seed)

    def _source_for(self, activation, hook):
        source = super()._source_for(activation, hook)
        order = list(range(source.shape[0]))
        random.Random(self.seed).shuffle(order)
        # Resample to the activation's batch size, cycling through the donors.
        order = [order[i % len(order)] for i in range(activation.shape[0])]
        return source[order]

    def params(self):
        return {**super().params(), "seed": self.seed}


class Scale(Intervention):
    kind = "scale"

    def __init__(self, factor, positions=None):
        super().__init__(positions)
        self.factor = _number(factor, "factor")

    def apply(self, activation):
        return activation * self.factor

    def params(self):
        return {"factor": self.factor}


class AddVector(Intervention):
    """Add ``coefficient * vector`` along the last axis (activation steering)."""

    kind = "add_vector"

    def __init__(self, vector, coefficient=1.0, positions=None):
        super().__init__(positions)
        self.vector, self.coefficient = vector, _number(coefficient, "coefficient")

    def apply(self, activation):
        vector = as_tensor(self.vector, dtype=activation.dtype, backend=activation.backend)
        if vector.shape[-1] != activation.shape[-1]:
            raise ValueError(f"vector of length {vector.shape[-1]} cannot be added to an activation "
                             f"whose last axis has {activation.shape[-1]} entries")
        return activation + vector * self.coefficient

    def params(self):
        vector = self.vector.tolist() if isinstance(self.vector, Tensor) else list(self.vector)
        return {"vector": vector, "coefficient": self.coefficient}


class NoiseInjection(Intervention):
    """Add Gaussian noise of std ``noise_level``, reproducible from ``seed``.

    The noise comes from Python's own ``random`` so that CPython and the browser
    draw the same numbers.
    """

    kind = "noise"

    def __init__(self, noise_level, seed=0, positions=None):
        super().__init__(positions)
        self.noise_level, self.seed = _number(noise_level, "noise_level"), _seed(seed)

    def apply(self, activation):
        rng = random.Random(self.seed)
        noise = [rng.gauss(0.0, self.noise_level) for _ in range(activation.size)]
        noise = as_tensor(noise, dtype=activation.dtype, backend=activation.backend)
        return activation + noise.reshape(activation.shape)

    def params(self):
        return {"noise_level": self.noise_level, "seed": self.seed}


def _number(value, what):
    """A real number as a float; bools and strings (a spec's "2") are refused, not coerced."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what}={value!r} (a {type(value).__name__}); expected a number")
    return float(value)


def _seed(value):
    if not is_integer(value):
        raise TypeError(f"seed={value!r} (a {type(value).__name__}); expected an integer")
    return int(value)


def _plain(value):
    """JSON-able nested lists from a Tensor, an array or lists."""
    return value.tolist() if hasattr(value, "tolist") else value


def _as_list(value):
    if isinstance(value, Tensor) or hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__index__") and not isinstance(value, bool):
        return [int(value)]
    return [int(v) if hasattr(v, "__index__") else v for v in value]


def _axis_of(axes, names, where, what):
    for name in names:
        if axes and name in axes:
            return axes.index(name)
    if not axes:
        raise NeuroScopeError(f"{what} needs to know the activation's axes: apply the intervention at a "
                              "hook (InterventionHook, or intervene(activation, hook))")
    raise NeuroScopeError(f"{what} given for {where}, whose activation {list(axes)} has no "
                          f"{' or '.join(names)} axis")


def _like(result, reference, hook, what):
    """An intervention's result as a Tensor shaped like ``reference`` (numpy arrays and lists
    are accepted); a different shape raises ``ShapeError`` naming the hook."""
    if not isinstance(result, Tensor):
        result = as_tensor(result, dtype=reference.dtype, backend=reference.backend)
    if tuple(result.shape) != tuple(reference.shape):
        where = getattr(hook, "name", "an activation")
        raise ShapeError(f"the intervention at {where} returned shape {list(result.shape)}; "
                         f"{what} has shape {list(reference.shape)}")
    return result


class FunctionIntervention(Intervention):
    """A plain callable ``fn(activation) -> replacement`` as an intervention (it does not serialise)."""

    def __init__(self, fn, positions=None):
        super().__init__(positions)
        self.fn = fn

    def apply(self, activation):
        return self.fn(activation)

    def __repr__(self):
        return f"FunctionIntervention({getattr(self.fn, '__name__', self.fn)!r})"


def as_intervention(action):
    """An ``Intervention`` as is; a callable wrapped in ``FunctionIntervention``."""
    if isinstance(action, Intervention):
        return action
    if callable(action):
        return FunctionIntervention(action)
    raise TypeError(f"an intervention action is an Intervention or a callable, got {action!r}")
