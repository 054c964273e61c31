"""The Lens's dataset choices: built-in sets, uploads kept in storage, and files.

A choice is a string: a built-in name (``"demo/ioi-order"``), ``"stored:<name>"`` for a
file uploaded in the Lens (``neuroscope.datasets.store_dataset``: IndexedDB in the browser,
so it is there after a reload), or a path or URL. ``open_dataset`` gives the ``Dataset``
and the Python that opens it, for the view's code box.
"""

from ..datasets import BUILTIN, Dataset, store_dataset, stored_datasets
from .common import literal

STORED = "stored:"


def open_dataset(choice):
    """``(Dataset, source)`` for a Lens dataset choice; ``source`` is the Python expression."""
    if not isinstance(choice, str) or not choice:
        raise ValueError(f"dataset {choice!r}; expected a built-in name, 'stored:<name>' or a file")
    if choice in BUILTIN:
        return Dataset.builtin(choice), f"Dataset.builtin({literal(choice)})"
    if choice.startswith(STORED):
        name = choice[len(STORED):]
        return Dataset.stored(name), f"Dataset.stored({literal(name)})"
    return Dataset.from_file(choice), f"Dataset.from_file({literal(choice)})"


def upload_dataset(name, data):
    """Check and keep an uploaded file; returns its entry of ``datasets()``."""
    dataset = store_dataset(name, data)
    return {"choice": STORED + name, "name": name, "examples": len(dataset), "bytes": len(data),
            "fields": sorted(dataset[0]), "code": f"from neuroscope import Dataset\n"
                                                    f"dataset = Dataset.stored({literal(name)})"}


def datasets():
    """The stored (uploaded) datasets: ``[{"choice", "name", "examples", "bytes", "fields"}]``."""
    return [{"choice": STORED + item["name"], **item} for item in stored_datasets()]


__all__ = ["STORED", "datasets", "open_dataset", "upload_dataset"]
