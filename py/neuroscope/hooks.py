"""Hook points, hook objects and the hook manager.

A ``HookPoint`` is an identity with a name, placed on every activation the
model computes (TransformerLens' ``hook_points.py`` idea). Hook functions take
``(activation, hook)`` and return a replacement or None. Hooks are objects:

* ``FunctionHook``    a TransformerLens-style ``(name or predicate, fn)`` pair;
* ``ActivationHook``  records ``last_activation`` (and may run an action);
* ``InterventionHook`` replaces the activation (an ``Intervention`` or a callable);
* ``ProbeHook``       runs a probe on the activation and keeps its outputs;
* ``CachingHook``     stores activations into an ``ActivationCache``;
* ``GradientHook``    puts the activation in the autograd graph and runs ``fn(grad, hook)``
  on its gradient in a later backward pass (TransformerLens' backward hooks).

The ``HookManager`` validates every address before it registers anything, so a
bad layer or name raises with no hook left behind; ``hooks([...])`` is a
context manager that always removes what it added.
"""

import difflib
from contextlib import contextmanager

from .args import as_indices, as_layer, is_integer
from .autograd import is_grad_enabled
from .cache import ActivationCache, DeferredActivation
from .errors import GradientError, InvalidIndexError, NeuroScopeError, ShapeError, UnknownHookError
from .interventions import Intervention, as_intervention
from .names import act_name, component_name, head_components
from .tensor import Tensor, as_tensor


class HookPoint:
    """An identity on one activation; registered functions may replace it.

    ``axes`` names the activation's axes (``("batch", "pos", "head", "d_head")``
    for ``hook_z``); ``sizes`` holds the fixed ones as ints (symbolic ones as
    strings). Each activation handed to a hook carries ``axes`` too, so
    ``activation.zero_heads([3])`` finds the head axis wherever it sits.
    """

    __slots__ = ("name", "fns", "axes", "sizes")

    def __init__(self, name, axes=None, sizes=None):
        self.name = name
        self.fns = []  # [(fn, owner)]
        self.axes = tuple(axes) if axes is not None else None
        self.sizes = tuple(sizes) if sizes is not None else None

    @property
    def layer(self):
        return int(self.name.split(".")[1]) if self.name.startswith("blocks.") else None

    def axis(self, *names):
        """The index of the first of ``names`` among this point's axes, or None."""
        for name in names:
            if self.axes is not None and name in self.axes:
                return self.axes.index(name)
        return None

    def add(self, fn, owner, prepend=False):
        if prepend:
            self.fns.insert(0, (fn, owner))
        else:
            self.fns.append((fn, owner))

    def remove(self, owner):
        self.fns = [(fn, o) for fn, o in self.fns if o is not owner]

    def __call__(self, activation):
        return self.run(activation)[0]

    def defers(self, *sources):
        """Whether the activation here may be handed over as a recipe of ``sources``:
        true when no hook is registered, or when every hook is a caching hook that keeps
        recipes (``CachingHook.keeps_recipe``) and holds the sources itself (so a recipe
        never keeps alive more than the cache holds anyway). Never under autograd."""
        return all(getattr(owner, "keeps_recipe", _no)(sources) for _, owner in self.fns)

    def defer(self, recipe, sources, constants=()):
        """Hand every hook here ``DeferredActivation`` in place of the activation (after
        ``defers(*sources)`` said yes): ``recipe(*sources, *constants)`` must compute exactly
        what the forward pass computes at this point, with the same ops. ``constants`` are
        what else the recipe reads (weights, a mask; None allowed), fixed as they are now."""
        if self.fns:
            deferred = DeferredActivation(recipe, (*sources, *constants), self.axes)
            for _, owner in self.fns:
                owner.keep(deferred, self)

    def observe(self, value, recipe, sources, constants=()):
        """``self(value)`` (the hooks run on it), or, where they keep a recipe instead
        (``defers``), ``value`` itself with the recipe handed over."""
        if self.fns and self.defers(*sources):
            self.defer(recipe, sources, constants)
            return value
        return self(value)

    def run(self, activation):
        """``(activation, edited)``: the result of every hook, and whether any changed it
        (a replacement returned, or the activation assigned into in place)."""
        if not self.fns:
            return activation, False
        original, data = activation, activation.data
        for fn, owner in tuple(self.fns):
            activation.axes = self.axes
            result = fn(activation, self)
            if result is not None and result is not activation:
                activation = self._replacement(result, activation, owner)
        return activation, activation is not original or activation.data is not data

    def _replacement(self, result, activation, owner):
        if not isinstance(result, Tensor):
            result = as_tensor(result, dtype=activation.dtype, backend=activation.backend)
        if tuple(result.shape) != tuple(activation.shape):
            raise ShapeError(f"{owner!r} at {self.name} returned shape {list(result.shape)}; the "
                             f"activation there has shape {list(activation.shape)} (a hook may replace "
                             "an activation, not reshape it)")
        return result

    def __repr__(self):
        return f"HookPoint({self.name!r}, {len(self.fns)} hooks)"


def _no(sources):
    return False


class Hook:
    """Base class of hook objects: where (``targets``) and what (``__call__``)."""

    def targets(self):
        """Addresses this hook attaches to: names, predicates or (layer, component)."""
        raise NotImplementedError

    def __call__(self, activation, hook):
        raise NotImplementedError


class _Addressed(Hook):
    """A hook at ``name=`` or at ``layer=`` + ``component=``."""

    def __init__(self, layer=None, component=None, name=None):
        if name is None and (layer is None or component is None):
            raise ValueError("give either name=... or both layer=... and component=...")
        if is_integer(layer):
            layer = int(layer)  # numpy integers too; the range is checked when the hook is added
        self.layer, self.component, self.name = layer, component, name

    def targets(self):
        return [self.name if self.name is not None else (self.layer, self.component)]

    def _where(self):
        return self.name if self.name is not None else f"layer={self.layer}, component={self.component!r}"


class FunctionHook(Hook):
    """``fn(activation, hook)`` at a name, a list of names, or a name predicate."""

    def __init__(self, name, fn):
        self.name, self.fn = name, fn

    def targets(self):
        return self.name if isinstance(self.name, list) else [self.name]

    def __call__(self, activation, hook):
        return self.fn(activation, hook)

    def __repr__(self):
        return f"FunctionHook({self.name!r}, {getattr(self.fn, '__name__', self.fn)!r})"


class ActivationHook(_Addressed):
    """Records the activation; an optional ``action(activation)`` runs on it too.

    An observer: the forward is never changed. What the action returns is kept
    in ``last_result`` (use an ``InterventionHook`` to replace the activation).
    """

    def __init__(self, layer=None, component=None, action=None, name=None):
        super().__init__(layer, component, name)
        self.action = action
        self.last_activation = None
        self.last_result = None

    def __call__(self, activation, hook):
        self.last_activation = activation
        if self.action is not None:
            self.last_result = self.action(activation)
        return None

    def __repr__(self):
        return f"ActivationHook({self._where()})"


class InterventionHook(_Addressed):
    """Replaces the activation with ``action(activation)``.

    ``action`` is an ``Intervention`` (which serialises) or any callable. With
    ``heads=[...]`` the action runs on those heads only (the slice along the
    hook's head axis, which it must return in the same shape) and the other
    heads keep their values; ``heads`` on a hook without a head axis is refused
    when the hook is added. A callable without ``heads`` gets the whole
    activation, as in ``lambda a: a.zero_heads([3, 7])``.
    """

    def __init__(self, layer=None, component=None, action=None, heads=None, name=None):
        super().__init__(layer, component, name)
        if action is None:
            raise ValueError("InterventionHook needs an action (an Intervention or a callable)")
        self.action = action
        self._intervention = as_intervention(action)
        self.heads = as_indices(heads, "heads", None)  # the range is checked when added

    def __call__(self, activation, hook):
        return self._intervention.intervene(activation, hook, heads=self.heads)

    def to_spec(self):
        if not isinstance(self.action, Intervention):
            raise TypeError("only an InterventionHook whose action is an Intervention serialises")
        where = {"name": self.name} if self.name is not None else {
            "layer": self.layer, "component": self.component}
        return {**where, "heads": self.heads, "intervention": self.action.to_spec()}

    @classmethod
    def from_spec(cls, spec):
        if not isinstance(spec, dict) or "intervention" not in spec:
            raise ValueError(f"an InterventionHook spec is a dict with an 'intervention', got {spec!r}")
        unknown = sorted(set(spec) - set(_SPEC_KEYS), key=str)
        if unknown:  # a misspelled "heads" would otherwise edit every head
            keys = ", ".join(map(repr, unknown))
            raise ValueError(f"unknown key{'s' if len(unknown) > 1 else ''} {keys} in an InterventionHook "
                             f"spec; expected {', '.join(_SPEC_KEYS)}")
        return cls(layer=spec.get("layer"), component=spec.get("component"), name=spec.get("name"),
                   heads=spec.get("heads"), action=Intervention.from_spec(spec["intervention"]))

    def __repr__(self):
        return f"InterventionHook({self._where()}, heads={self.heads}, action={self.action!r})"


_SPEC_KEYS = ("layer", "component", "name", "heads", "intervention")


class ProbeHook(_Addressed):
    """Runs ``probe(activation)`` on each pass and keeps the outputs; never edits."""

    def __init__(self, layer=None, component=None, probe=None, name=None):
        super().__init__(layer, component, name)
        if probe is None:
            raise ValueError("ProbeHook needs a probe: a callable or an object with predict()")
        self.probe = probe
        self.outputs = []

    @property
    def last_output(self):
        return self.outputs[-1] if self.outputs else None

    def __call__(self, activation, hook):
        run = self.probe.predict if hasattr(self.probe, "predict") else self.probe
        self.outputs.append(run(activation))
        return None


class CachingHook(Hook):
    """Stores activations into ``self.cache`` (an ``ActivationCache``)."""

    def __init__(self, names=None, cache=None):
        # names: a list of names / (layer, component) addresses, a predicate, or None for all.
        self.names = names
        self.cache = cache if cache is not None else ActivationCache()
        # What keeps_recipe asks: the id of the activation last stored at each hook point, and
        # how many points hold each id (one object can sit at two points: resid_post of a layer
        # is resid_pre of the next). Bounded by the number of points, however many runs.
        self._stored_id, self._stored = {}, {}

    def targets(self):
        if self.names is None:
            return [lambda name: True]
        return self.names if isinstance(self.names, (list, tuple)) else [self.names]

    def __call__(self, activation, hook):
        # Values, not graph: a tracked activation is stored detached, so that a cache never
        # keeps a forward pass's autograd graph (and everything it saved) alive.
        stored = self.cache[hook.name] = activation if activation._edge is None else activation.detach()
        previous = self._stored_id.get(hook.name)
        if previous is not None:
            if self._stored[previous] == 1:
                del self._stored[previous]
            else:
                self._stored[previous] -= 1
        self._stored_id[hook.name] = id(stored)
        self._stored[id(stored)] = self._stored.get(id(stored), 0) + 1
        return None

    def keeps_recipe(self, sources):
        """Recipes only into a plain cache (a byte budget counts what it holds), of untracked
        values this hook stored (by identity; see ``HookPoint.defers``)."""
        if self.cache._store.__class__ is not dict:
            return False
        return all(source._edge is None and id(source) in self._stored for source in sources)

    def keep(self, deferred, hook):
        self.cache[hook.name] = deferred


class GradientHook(Hook):
    """A backward hook: ``fn(grad, hook)`` runs on d(whatever ``backward`` is called on) /
    d(activation) at each of its points, and a Tensor it returns replaces that gradient.

    In the forward pass the activation is put into the autograd graph: made a leaf when
    nothing upstream is tracked (so only what lies downstream of a gradient hook is ever
    recorded), or passed on through a new identity node when it is. Either way the hook
    point counts as edited, so the explicit attention scores / pattern and norm scale are
    what the rest of the forward uses, and their gradients are the true ones (the fused
    attention and norm ops would otherwise bypass them). Registered last at a point, it
    sees the gradient of the value that flows on, after every forward hook."""

    def __init__(self, names, fn):
        # names: a name, a list of names / (layer, component) addresses, a predicate, or None for all.
        if not callable(fn):
            raise TypeError(f"a backward hook must be a function (grad, hook) -> Tensor or None, got "
                            f"{type(fn).__name__}")
        self.names, self.fn = names, fn

    def targets(self):
        if self.names is None:
            return [lambda name: True]
        return list(self.names) if isinstance(self.names, (list, tuple)) else [self.names]

    def __call__(self, activation, hook):
        if not is_grad_enabled():
            raise GradientError(f"a backward hook at {hook.name} needs the forward pass to record a graph, "
                                "but it runs under no_grad(); run it outside no_grad() (or in enable_grad())")
        if activation._edge is None:
            tracked = Tensor(activation.data, activation.backend).requires_grad_()
        else:
            tracked = activation.reshape(activation.shape)
        tracked.axes = activation.axes
        tracked.register_hook(lambda grad: self.fn(grad, hook))
        return tracked


class HookManager:
    """Registers hook objects on a model's hook points."""

    def __init__(self, hook_points, n_layers, context=None):
        self.hook_points = hook_points  # {name: HookPoint}
        self.n_layers = n_layers
        self.context = context  # the model, handed to Intervention.prepare
        self._hooks = {}  # hook -> [names]

    @property
    def hooks(self):
        return list(self._hooks)

    def resolve(self, target):
        """Hook names for one address: a name, a short name, a predicate or (layer, component)."""
        if callable(target) and not isinstance(target, str):
            return [name for name in self.hook_points if target(name)]
        if isinstance(target, tuple):
            layer, component = target
            layer = self._check_layer(layer)
            return [self._check_name(component_name(layer, component), target)]
        if target in self.hook_points:
            return [target]
        layer = _layer_in(target)
        if layer is not None:
            self._check_layer(layer)
        try:
            name = act_name(target)
        except KeyError:
            name = target
        return [self._check_name(name, target)]

    def _check_layer(self, layer):
        return as_layer(layer, self.n_layers)

    def _check_name(self, name, asked):
        if name not in self.hook_points:
            close = difflib.get_close_matches(str(name), list(self.hook_points), n=3, cutoff=0.5)
            raise UnknownHookError(asked if isinstance(asked, str) else f"{asked} -> {name}", close)
        return name

    def _check_selection(self, hook, intervention, point):
        """Refuse heads / positions the hook point cannot have, before anything runs."""
        heads = getattr(hook, "heads", None)
        if heads is not None:
            axis = point.axis("head", "kv_head")
            if axis is None:
                raise NeuroScopeError(
                    f"heads={heads} given for {point.name}, whose activation {list(point.axes or ())} has no "
                    f"head axis; components with heads: {', '.join(head_components())}")
            _at(point, as_indices, heads, "heads", point.sizes[axis])
        positions = intervention.positions
        if positions is not None:
            n_ctx = getattr(getattr(self.context, "cfg", None), "n_ctx", None)
            if point.axis("pos") is None:
                raise NeuroScopeError(f"positions={positions} given for {point.name}, which has no "
                                      "position axis")
            _at(point, as_indices, positions, "positions", n_ctx, allow_all=False, negative=True)

    def add_hook(self, hook, fn=None, prepend=False):
        """Register a hook object, or a TransformerLens-style ``(name, fn)``; returns the hook."""
        if not isinstance(hook, Hook):
            if fn is None:
                raise TypeError(f"add_hook expects a Hook object or (name, fn), got {hook!r}")
            hook = FunctionHook(hook, fn)
        if hook in self._hooks:
            return hook
        names = [name for target in hook.targets() for name in self.resolve(target)]
        action = getattr(hook, "action", None)
        if isinstance(action, Intervention):
            for name in names:
                self._check_selection(hook, action, self.hook_points[name])
            if self.context is not None:
                action.prepare(self.context)
        elif isinstance(hook, InterventionHook):
            for name in names:
                self._check_selection(hook, hook._intervention, self.hook_points[name])
        for name in names:
            self.hook_points[name].add(hook, hook, prepend)
        self._hooks[hook] = names
        return hook

    def remove_hook(self, hook):
        for name in self._hooks.pop(hook, ()):
            self.hook_points[name].remove(hook)

    def clear(self):
        for hook in list(self._hooks):
            self.remove_hook(hook)

    @contextmanager
    def suspended(self):
        """Run the ``with`` body on a clean model: every registered hook is detached from its
        hook points for the body, then put back in its place (order kept)."""
        saved = {name: point.fns for name, point in self.hook_points.items()}
        for point in self.hook_points.values():
            point.fns = []
        try:
            yield
        finally:
            for name, fns in saved.items():
                self.hook_points[name].fns = fns

    @contextmanager
    def hooks_context(self, hooks):
        """Add ``hooks`` (Hook objects or ``(name, fn)`` pairs) for the ``with`` body; a hook
        registered before the body stays registered after it."""
        added, before = [], set(self._hooks)
        try:
            for hook in hooks:
                added.append(self.add_hook(*hook) if isinstance(hook, tuple) else self.add_hook(hook))
            yield added
        finally:
            for hook in added:
                if hook not in before:
                    self.remove_hook(hook)

    def __repr__(self):
        return f"HookManager({len(self._hooks)} hooks on {len(self.hook_points)} hook points)"


def _at(point, check, *args, **kwargs):
    """Run an index check, naming the hook point in its error."""
    try:
        return check(*args, **kwargs)
    except InvalidIndexError as error:
        raise InvalidIndexError(f"{error} (at {point.name})") from None


def _layer_in(name):
    if isinstance(name, str) and name.startswith("blocks."):
        part = name.split(".")[1]
        return int(part) if part.lstrip("-").isdigit() else None
    return None
