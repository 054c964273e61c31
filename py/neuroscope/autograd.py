"""Reverse-mode automatic differentiation over the primitive op table.

Gradients are defined once, as one vector-Jacobian product (VJP) per op of
``backends/ops.py`` (the rules are in ``vjp.py``), written in the ops themselves: every
backend (numpy, torch, the browser's WebGPU / WebGL2 / wasm kernels) differentiates with
its own forward kernels. Nothing in this module imports numpy or a Tensor class: it works on the Tensors it is
handed (``tensor.py`` imports it, not the reverse).

The graph follows torch.autograd: a Tensor computed from a tracked tensor carries an
edge ``(node, output index)``; a ``Node`` records its op, the bound parameters (tensor
arguments as *detached* wrappers of the same handles, so an in-place ``__setitem__`` on
the Python object later cannot change what was saved), its outputs (detached) and the
edge of each tracked tensor argument. Leaves (``t.requires_grad_()``) carry an edge to a
``Leaf``, which accumulates into ``t.grad``. ``tensor._run`` records a node only when grad
mode is on and some tensor argument has an edge; only float outputs get edges.

References: torch.autograd (edges, AccumulateGrad leaves, tensor hooks, retain_grad).
"""

import functools

from .backends.ops import PRIMITIVE_OPS
from .errors import GradientError, ShapeError
from .vjp import VJPS

_FLOAT_DTYPES = ("float32", "float16", "float64")
_TENSOR_KINDS = ("tensor", "tensor?", "operand", "tensors")


# -- grad mode -----------------------------------------------------------------------

class GradMode:
    """``enabled``: whether ops are recorded (``no_grad`` turns it off). ``recording``, what
    ``tensor._run`` reads: enabled and some tensor was ever made a leaf. Until then no tensor
    can carry an edge, so the funnel skips even its one check per tensor argument."""

    __slots__ = ("enabled", "leaves_made", "recording")

    def __init__(self):
        self.enabled, self.leaves_made, self.recording = True, False, False

    def set(self, enabled):
        """Set ``enabled``; returns the previous value."""
        previous, self.enabled = self.enabled, enabled
        self.recording = enabled and self.leaves_made
        return previous

    def leaf_made(self):
        self.leaves_made = True
        self.recording = self.enabled


grad_mode = GradMode()


def is_grad_enabled():
    return grad_mode.enabled


class _SetGradMode:
    def __init__(self, enabled):
        self._enabled, self._previous = enabled, []

    def __enter__(self):
        self._previous.append(grad_mode.set(self._enabled))
        return self

    def __exit__(self, *exc):
        grad_mode.set(self._previous.pop())

    def __call__(self, function):
        @functools.wraps(function)
        def wrapped(*args, **kwargs):
            with type(self)():
                return function(*args, **kwargs)
        return wrapped


class no_grad(_SetGradMode):
    """Context manager (or decorator): ops inside record nothing."""

    def __init__(self):
        super().__init__(False)


class enable_grad(_SetGradMode):
    """Context manager (or decorator): ops inside are recorded, even within ``no_grad``."""

    def __init__(self):
        super().__init__(True)


# -- the graph -----------------------------------------------------------------------

class Node:
    """One recorded op: its bound parameters and outputs (detached) and its parents'
    edges, by parameter name (a list of edges, or None, for a ``tensors`` parameter)."""

    __slots__ = ("op", "params", "outputs", "parents", "hooks", "retained")

    def __init__(self, op, params, outputs, parents):
        self.op, self.params, self.outputs, self.parents = op, params, outputs, parents
        self.hooks = None  # {output index: [fn, ...]}
        self.retained = None  # {output index: the Tensor whose .grad keeps it}

    @property
    def label(self):
        return f"{self.op}:{self.params['op']}" if self.op in ("unary", "binary", "reduce") else self.op

    def parent_nodes(self):
        for edge in self.parents.values():
            if isinstance(edge, list):
                yield from (e[0] for e in edge if e is not None)
            else:
                yield edge[0]

    def __repr__(self):
        return f"<Node {self.label}>"


class Leaf:
    """Where a leaf's gradient ends: accumulated into ``tensor.grad``."""

    __slots__ = ("tensor", "hooks", "retained")
    op = label = "leaf"
    outputs = (None,)
    parents = {}

    def __init__(self, tensor):
        self.tensor, self.hooks, self.retained = tensor, None, None

    def parent_nodes(self):
        return ()

    def __repr__(self):
        return f"<Leaf shape={list(self.tensor.shape)}>"


class RemovableHandle:
    """What ``register_hook`` returns: ``remove()`` unregisters the hook."""

    def __init__(self, hooks, fn):
        self._hooks, self._fn = hooks, fn

    def remove(self):
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


def _is_tensor(value):
    return hasattr(value, "_edge")  # a neuroscope Tensor (this module names no Tensor class)


def _detached(tensor):
    return type(tensor)(tensor.data, tensor.backend)


def _is_float(tensor):
    return tensor.dtype in _FLOAT_DTYPES


def record(op, args, attrs, result):
    """Record ``op`` (called by ``tensor._run`` when some argument is tracked): give each
    float output of ``result`` an edge to a new Node."""
    outputs = result if isinstance(result, tuple) else (result,)
    tracked = [i for i, out in enumerate(outputs) if out is not None and _is_float(out)]
    if not tracked:
        return  # integer and bool results (argmax, comparisons, indices) carry no gradient
    spec = PRIMITIVE_OPS[op]
    params = spec.bind(args, attrs)
    parents = {}
    for param in spec.params:
        if param.kind not in _TENSOR_KINDS:
            continue
        value = params[param.name]
        if param.kind == "tensors":
            params[param.name] = [_detached(v) if _is_tensor(v) else v for v in value]
            edges = [v._edge if _is_tensor(v) else None for v in value]
            if any(e is not None for e in edges):
                parents[param.name] = edges
        elif _is_tensor(value):
            params[param.name] = _detached(value)
            if value._edge is not None:
                parents[param.name] = value._edge
    if not parents:
        return
    node = Node(op, params, tuple(None if out is None else _detached(out) for out in outputs), parents)
    for i in tracked:
        outputs[i]._edge = (node, i)


def requires_grad_(tensor, flag=True):
    edge = tensor._edge
    if edge is not None and not isinstance(edge[0], Leaf):
        raise GradientError(f"requires_grad_({flag}) on a tensor computed by {edge[0].label}: only leaves "
                            "(tensors not computed from tracked ones) can change it; use .detach() first")
    if not flag:
        tensor._edge = None
    elif edge is None:
        if not _is_float(tensor):
            raise GradientError(f"only floating-point tensors can require gradients; this one is "
                                f"{tensor.dtype}")
        tensor._edge = (Leaf(tensor), 0)
        grad_mode.leaf_made()
    return tensor


def _tracked_edge(tensor, what):
    if tensor._edge is None:
        raise GradientError(f"{what} on a tensor that does not require grad: it was not computed from a "
                            "tensor with requires_grad_(), or it was computed under no_grad()")
    return tensor._edge


def register_hook(tensor, fn):
    """``fn(grad)`` runs when ``tensor``'s gradient is complete; a non-None return replaces it."""
    node, index = _tracked_edge(tensor, "register_hook")
    if node.hooks is None:
        node.hooks = {}
    hooks = node.hooks.setdefault(index, [])
    hooks.append(fn)
    return RemovableHandle(hooks, fn)


def retain_grad(tensor):
    """Keep a non-leaf's gradient in ``tensor.grad`` at the next ``backward`` (leaves always do)."""
    node, index = _tracked_edge(tensor, "retain_grad")
    if isinstance(node, Leaf):
        return
    if node.retained is None:
        node.retained = {}
    node.retained[index] = tensor


def check_inplace(tensor, value_tracked):
    """Raise unless an in-place ``__setitem__`` on ``tensor`` keeps every gradient right.
    Returns whether the edit is to be recorded (as a new node for ``tensor``)."""
    edge = tensor._edge
    if not grad_mode.enabled:
        if edge is not None and not isinstance(edge[0], Leaf):
            raise GradientError(f"in-place edit under no_grad() of a tensor computed by {edge[0].label}: "
                                "the recorded graph would give it a wrong gradient; edit a .detach()'d "
                                "copy, or edit it with grad enabled")
        return False
    if edge is not None and isinstance(edge[0], Leaf):
        raise GradientError("in-place edit of a leaf that requires grad; edit it under no_grad() (as an "
                            "optimizer step does) or edit a .clone()")
    return edge is not None or value_tracked


# -- backward ------------------------------------------------------------------------

def _as_list(tensors):
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]


def _roots(tensors, grads, what):
    tensors = _as_list(tensors)
    grads = [None] * len(tensors) if grads is None else _as_list(grads)
    if len(grads) != len(tensors):
        raise GradientError(f"{what}: {len(tensors)} tensors but {len(grads)} gradients")
    edges, seeds = [], []
    for i, (tensor, grad) in enumerate(zip(tensors, grads)):
        if not _is_tensor(tensor) or tensor._edge is None:
            raise GradientError(f"{what}: tensor {i} does not require grad (it was not computed from a "
                                "tensor with requires_grad_(), or it was computed under no_grad())")
        if grad is None:
            if tensor.size != 1:
                raise GradientError(f"{what}: a gradient can be implied only for a one-element output; "
                                    f"tensor {i} has shape {list(tensor.shape)}, so pass its gradient")
            grad = type(tensor)(tensor.backend.full(tuple(tensor.shape), 1.0, tensor.dtype), tensor.backend)
        elif not _is_tensor(grad) or tuple(grad.shape) != tuple(tensor.shape):
            shape = list(grad.shape) if _is_tensor(grad) else type(grad).__name__
            raise ShapeError(f"{what}: gradient {i} is {shape}, expected a Tensor of shape "
                             f"{list(tensor.shape)}")
        edges.append(tensor._edge)
        seeds.append(_detached(grad))
    return edges, seeds


def backward(tensors, grad_tensors=None):
    """Accumulate d(tensors)/d(leaf) (weighted by ``grad_tensors``) into every leaf's ``.grad``."""
    edges, seeds = _roots(tensors, grad_tensors, "backward")
    _execute(edges, seeds, None)


def grad(outputs, inputs, grad_outputs=None, allow_unused=False):
    """The gradients of ``outputs`` with respect to ``inputs`` (a tuple), touching no ``.grad``."""
    edges, seeds = _roots(outputs, grad_outputs, "grad")
    inputs = _as_list(inputs)
    wanted = [_tracked_edge(t, f"grad with respect to input {i}") for i, t in enumerate(inputs)]
    captured = _execute(edges, seeds, set(wanted))
    result = tuple(captured.get(edge) for edge in wanted)
    unused = [i for i, g in enumerate(result) if g is None]
    if unused and not allow_unused:
        raise GradientError(f"grad: inputs {unused} were not used to compute the outputs; pass "
                            "allow_unused=True to get None for them")
    return result


def _topological(roots):
    """Nodes reachable from ``roots``, each after every node that consumes it."""
    consumers, seen, stack = {}, set(roots), list(roots)
    while stack:
        for parent in stack.pop().parent_nodes():
            consumers[parent] = consumers.get(parent, 0) + 1
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    ready, order = [n for n in dict.fromkeys(roots) if n not in consumers], []
    while ready:
        node = ready.pop()
        order.append(node)
        for parent in node.parent_nodes():
            consumers[parent] -= 1
            if not consumers[parent]:
                ready.append(parent)
    return order


def _add(buffers, edge, grad):
    node, index = edge
    slots = buffers.get(node)
    if slots is None:
        slots = buffers[node] = [None] * len(node.outputs)
    slots[index] = grad if slots[index] is None else slots[index] + grad


def _execute(edges, seeds, capture):
    """Run the VJPs from ``edges`` (seeded with ``seeds``) back to the leaves. With
    ``capture`` (a set of edges), return {edge: gradient} for those and skip every node
    that leads to none of them; without, accumulate into leaves and retained tensors."""
    order = _topological([node for node, _ in edges])
    needed = None
    if capture is not None:
        targets, needed = {node for node, _ in capture}, set()
        for node in reversed(order):
            if node in targets or any(p in needed for p in node.parent_nodes()):
                needed.add(node)
    buffers, captured = {}, {}
    for edge, seed in zip(edges, seeds):
        _add(buffers, edge, seed)
    previous = grad_mode.set(False)
    try:
        for node in order:
            slots = buffers.pop(node, None)
            if slots is None:
                continue
            _run_hooks(node, slots, capture is None)
            if capture is not None:
                captured.update(((node, i), g) for i, g in enumerate(slots) if (node, i) in capture)
            if isinstance(node, Leaf):
                if capture is None and slots[0] is not None:
                    leaf = node.tensor
                    leaf.grad = _detached(slots[0]) if leaf.grad is None else leaf.grad + slots[0]
                continue
            wants = {name for name, edge in node.parents.items() if needed is None or any(
                p in needed for p in (e[0] for e in (edge if isinstance(edge, list) else [edge]) if e))}
            if not wants:
                continue
            for name, parent_grad in _vjp(node, slots, wants).items():
                edge = node.parents[name]
                if isinstance(edge, list):
                    for e, g in zip(edge, parent_grad):
                        if e is not None and g is not None:
                            _add(buffers, e, g)
                elif parent_grad is not None:
                    _add(buffers, edge, parent_grad)
    finally:
        grad_mode.set(previous)
    return captured


def _run_hooks(node, slots, retain):
    for index, hooks in (node.hooks or {}).items():
        for fn in list(hooks):
            if slots[index] is None:
                break
            replaced = fn(_detached(slots[index]))
            if replaced is not None:
                if not _is_tensor(replaced) or tuple(replaced.shape) != tuple(slots[index].shape):
                    raise ShapeError(f"a backward hook on {node.label} returned "
                                     f"{getattr(replaced, 'shape', type(replaced).__name__)}, expected a "
                                     f"Tensor of shape {list(slots[index].shape)} (or None)")
                slots[index] = replaced
    if retain and node.retained:
        for index, tensor in node.retained.items():
            if slots[index] is not None:
                g = slots[index]
                tensor.grad = _detached(g) if tensor.grad is None else tensor.grad + g


def _vjp(node, slots, wants):
    grads = VJPS[node.op](node.params, node.outputs, slots, wants)
    out = {}
    for name in wants:
        value, g = node.params[name], grads.get(name)
        if g is None:
            continue
        pairs = zip(value, g) if isinstance(value, list) else [(value, g)]
        for x, gx in pairs:
            if gx is not None and tuple(gx.shape) != tuple(x.shape):
                raise ShapeError(f"the VJP of {node.label} gave {name} a gradient of shape {list(gx.shape)}, "
                                 f"expected {list(x.shape)}")
        out[name] = g
    return out
