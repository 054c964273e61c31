"""What the result classes' ``_repr_html_`` and ``inspect()`` call.

``neuroscope.display`` draws those classes, so they cannot import it (not even inside a method:
every module must stay importable first and alone). It registers its ``html_of`` and ``inspect``
here when imported, which ``import neuroscope`` always does first.
"""

_registered = {}


def register(html_of, inspect):
    _registered.update(html_of=html_of, inspect=inspect)


def _get(name):
    if name not in _registered:
        raise RuntimeError(f"neuroscope.display has not registered {name}: import neuroscope (or "
                           "neuroscope.display) before displaying an object")
    return _registered[name]


def html_of(obj):
    """The self-contained HTML of ``obj`` (``neuroscope.display.html_of``)."""
    return _get("html_of")(obj)


def inspect(obj):
    """An inspector of ``obj`` (``neuroscope.display.inspect``)."""
    return _get("inspect")(obj)
