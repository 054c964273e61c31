"""``ActivationCache``: a plain mapping from hook name to Tensor.

It holds no reference to the model. Keys are full TransformerLens names;
lookups also accept TransformerLens' short form (``cache["pattern", 3]``) and
the friendly address (``cache.at(3, "pattern")``). Analyses are separate
functions in ``neuroscope.analysis``. Persistence (``save`` / ``load``) and the
byte ``budget`` that spills tensors off the device live in ``spill.py``.

Some entries of a ``run_with_cache`` cache are kept as recipes (``DeferredActivation``)
until first read: an activation that is an exact function of others the cache holds
(a norm's output and scale of the residual it normalises, the MLP's ``hook_post`` of its
``hook_pre``, attention scores and pattern of ``q`` and ``k``, ``z`` of ``q``, ``k`` and ``v``).
Reading one recomputes it with the ops the forward pass ran on the values it ran them on,
so it is the forward's value, and keeps it. (The residual stream is held as computed: the
norms' recipes read it.) A forward pass that caches everything then holds far less memory,
and skips the attention scores and norm scales it would otherwise spell out only to store.
"""

import difflib

from .errors import UnknownHookError
from .names import act_name, component_name


class DeferredActivation:
    """A cached activation not yet computed: ``recipe(*sources)`` gives it.

    ``sources`` are Tensors on the values the forward pass used (new Tensor objects over the
    same device handles, which ops never change), so an edit made to the original objects
    afterwards (``activation[...] = ...`` in a later hook) cannot change the result.
    """

    __slots__ = ("recipe", "sources", "axes")

    def __init__(self, recipe, sources, axes=None):
        self.recipe = recipe
        self.sources = tuple(source if source is None else type(source)(source.data, source.backend)
                             for source in sources)
        self.axes = axes

    def materialize(self):
        value = self.recipe(*self.sources)
        value.axes = self.axes
        return value


class ActivationCache:
    """Activations recorded during a forward pass, by hook name."""

    def __init__(self, activations=None, tokens=None, attention_mask=None, budget=None, storage=None):
        # budget (bytes): keep at most that much on the device, spilling the least recently
        # used tensors to ``storage`` (default: IndexedDB / a temporary folder).
        if budget is None:
            self._store = dict(activations or {})
        else:
            from .spill import SpillingStore
            self._store = SpillingStore(budget, storage)
            self._store.update(activations or {})
        # The input the activations came from: lets a patching spec re-create
        # the cache elsewhere (e.g. from a share link).
        self.tokens = tokens
        self.attention_mask = attention_mask

    # -- mapping -------------------------------------------------------------
    def _resolve(self, key):
        if isinstance(key, tuple):
            try:
                return act_name(*key)
            except KeyError:
                raise self._unknown(repr(key)) from None
        if key in self._store:
            return key
        try:
            return act_name(key)
        except KeyError:
            raise self._unknown(key) from None

    def _unknown(self, key):
        return UnknownHookError(key, difflib.get_close_matches(str(key), list(self._store), n=3, cutoff=0.4))

    def __getitem__(self, key):
        name = self._resolve(key)
        if name not in self._store:
            raise self._unknown(name)
        value = self._store[name]
        if value.__class__ is DeferredActivation:
            value = self._store[name] = value.materialize()
        return value

    def __setitem__(self, name, value):
        self._store[name] = value

    def __delitem__(self, key):
        del self._store[self._resolve(key)]

    def __contains__(self, key):
        try:
            return self._resolve(key) in self._store
        except UnknownHookError:
            return False

    def __iter__(self):
        return iter(self._store)

    def __len__(self):
        return len(self._store)

    def keys(self):
        return self._store.keys()

    def values(self):
        return [self[name] for name in list(self._store)]

    def items(self):
        return [(name, self[name]) for name in list(self._store)]

    @property
    def deferred(self):
        """Names of the entries not computed yet (see ``DeferredActivation``)."""
        return [name for name, value in self._store.items() if value.__class__ is DeferredActivation]

    def _computed(self):
        """The store with every deferred entry computed (what persistence writes)."""
        for name in self.deferred:
            self[name]
        return self._store

    def get(self, key, default=None):
        return self[key] if key in self else default

    def at(self, layer, component):
        """The activation at a friendly address, e.g. ``at(5, "residual")``."""
        return self[component_name(layer, component)]

    @property
    def nbytes(self):
        if hasattr(self._store, "nbytes"):  # a SpillingStore counts without reading back
            return self._store.nbytes
        return sum(t.nbytes for t in self._store.values() if t.__class__ is not DeferredActivation)

    @property
    def spill_stats(self):
        """Budget, resident/spilled/restored bytes and counts; None without a budget."""
        return self._store.stats() if hasattr(self._store, "stats") else None

    # -- persistence (spill.py) ----------------------------------------------
    def save(self, key, storage=None):
        """Store every activation (and the tokens) under ``key``: IndexedDB in the browser,
        ``$NEUROSCOPE_CACHE_DIR/activations`` in CPython. Returns the bytes written."""
        from .spill import save_activations
        return save_activations(self._computed(), key, storage, self.tokens, self.attention_mask)

    @classmethod
    def load(cls, key, storage=None, budget=None):
        """The cache saved under ``key`` (on the active backend; ``budget`` as in __init__)."""
        from .spill import load_activations
        cache = cls(budget=budget)
        extras = load_activations(key, storage, into=cache._store)
        cache.tokens, cache.attention_mask = extras["tokens"], extras["attention_mask"]
        return cache

    async def save_async(self, key, storage=None):
        """``save`` for browsers without JSPI (``await cache.save_async(key)``)."""
        from .spill import save_activations_async
        return await save_activations_async(self._computed(), key, storage, self.tokens, self.attention_mask)

    @classmethod
    async def load_async(cls, key, storage=None):
        """``load`` for browsers without JSPI (``await ActivationCache.load_async(key)``)."""
        from .spill import load_activations_async
        cache = cls()
        extras = await load_activations_async(key, storage, into=cache._store)
        cache.tokens, cache.attention_mask = extras["tokens"], extras["attention_mask"]
        return cache

    def _repr_html_(self):
        from .display_hooks import html_of  # display imports this module: see display_hooks

        return html_of(self)

    def inspect(self):
        """Fields, shapes and views of this object (``neuroscope.inspect``)."""
        from .display_hooks import inspect

        return inspect(self)

    def __repr__(self):
        deferred = len(self.deferred)
        later = f", {deferred} computed when first read" if deferred else ""
        return f"ActivationCache({len(self)} activations, {self.nbytes / 2**20:.1f} MiB{later})"
